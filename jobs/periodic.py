"""The table of periodic jobs: one scheduler enqueues each once per interval."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class Periodic:
    name: str
    func: str
    every: timedelta
    queue: str = "periodic"


PERIODIC: tuple[Periodic, ...] = (
    Periodic("purge-idempotency-keys", "jobs.maintenance.purge_idempotency_keys", timedelta(hours=1)),
    Periodic("erase-due-accounts", "jobs.accounts.erase_due_accounts", timedelta(hours=1)),
    Periodic("purge-expired-secrets", "jobs.accounts.purge_expired_secrets", timedelta(hours=6)),
    # Every 15 s: with the 45 s lease, a crashed batch is sent again within about a minute.
    Periodic("reconcile-deliveries", "jobs.delivery.reconcile_deliveries", timedelta(seconds=15)),
    Periodic("maintain-event-partitions", "jobs.analytics.maintain_event_partitions", timedelta(hours=6)),
    Periodic("prune-analytics-event-ids", "jobs.analytics.prune_event_ids", timedelta(hours=1)),
    Periodic("refresh-recent-active-counts", "jobs.analytics.refresh_recent_active_counts", timedelta(minutes=10)),
    Periodic("refresh-late-active-counts", "jobs.analytics.refresh_late_active_counts", timedelta(hours=6)),
    Periodic("prune-stale-tokens", "jobs.push.prune_stale_tokens", timedelta(hours=1)),
    Periodic("clean-up-media", "jobs.media.clean_up_media", timedelta(minutes=10)),
    Periodic("sweep-orphaned-media-objects", "jobs.media.sweep_orphaned_media_objects", timedelta(days=1)),
    Periodic("resend-lost-webhooks", "jobs.webhooks.resend_lost_webhooks", timedelta(minutes=1)),
    Periodic("purge-webhook-log", "jobs.webhooks.purge_webhook_log", timedelta(hours=6)),
)
