"""Media: direct uploads, validation by content, image variants and video, signed delivery.

The pipeline's seam (for processors such as ``backend.media.video``):

- ``jobs.media.process_media(media_id=...)`` runs ``processing.run_processing``: the
  item goes pending → processing, its original is downloaded to a local file, and the
  family's processor runs: ``backend.media.images.process(ctx)`` for avatar/photo,
  ``backend.media.video.process(ctx)`` for video.
- A processor takes a ``processing.ProcessingContext`` (``source_path``, ``work_dir``,
  ``policy``, ``store(name, path, content_type=...) -> key``, ``report_progress(percent)``)
  and returns a ``processing.ProcessingResult`` (variants by name, each a dict with at
  least ``key`` and ``content_type``; width/height/duration/placeholder). It raises
  ``processing.MediaRejected(reason)`` for bad input (failed, not retried).
- ``status.report_progress``, ``status.mark_ready`` and ``status.mark_failed`` record the
  outcome in PostgreSQL and publish it on Redis ``groundwork:media:<owner_id>``;
  ``status.on_finished(hook)`` lets webhooks ride the same transaction.

Every object of an item lives under its ``key_prefix`` (``media/<id>/``), so deleting
the item deletes them all. Storage (``storage.get_storage()``) is local or S3; backups
copy it with ``iter_keys()`` and ``open(key)``.
"""
from __future__ import annotations

import logging

from flask import Flask
from flask.typing import ResponseReturnValue

log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    """Erase a user's media with the account; webhooks on ready/failed; the local store's signed
    URLs; a store that cannot be reached answers 503."""
    from backend.auth.deletion import register_eraser, register_exporter
    from backend.media.library import erase_user_media, export_user_media
    from backend.media.status import emit_webhook, on_finished
    from backend.media.storage import StorageError
    from backend.media.storage.local_routes import bp

    register_eraser("media", erase_user_media)
    register_exporter("media", export_user_media)
    on_finished(emit_webhook)
    app.register_error_handler(StorageError, _storage_unavailable)
    if app.config["STORAGE_BACKEND"] == "local":
        app.register_blueprint(bp)
        app.extensions["groundwork.limiter"].exempt(bp)


def _storage_unavailable(exc: Exception) -> ResponseReturnValue:
    """The store did not answer: nothing was changed (the transaction rolls back); retry later."""
    from backend.common.errors import error_response
    from backend.extensions import db

    log.warning("object storage unavailable: %s", exc)
    db.session.rollback()
    return error_response(503, "storage_unavailable", "File storage is unavailable; retry shortly.",
                          headers={"Retry-After": "5"})
