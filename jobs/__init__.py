"""RQ job functions (IDs in, idempotent) and the worker and scheduler entry points."""
