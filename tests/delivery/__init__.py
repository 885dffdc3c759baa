"""Campaign delivery engine: policy, outcomes, reconciler (service level, real PostgreSQL/Redis/fake FCM)."""
