"""Video playback schemas: the signed URLs an app plays with, and the proof a URL carries."""
from __future__ import annotations

from marshmallow import Schema, fields
from marshmallow.validate import Range


class PlaybackReadSchema(Schema):
    """Signed, short-lived URLs to play one ready video."""

    hls_url = fields.String(metadata={"description": "master playlist; every URL inside is signed too"})
    mp4_url = fields.String(metadata={"description": "MP4 fallback (largest rendition up to 720p)"})
    poster_url = fields.String()
    storyboard_url = fields.String(metadata={"description": "thumbnail sprite for scrubbing"})
    storyboard_vtt_url = fields.String(metadata={"description": "WebVTT mapping times to sprite tiles (#xywh)"})
    expires_at = fields.DateTime(metadata={"description": "every URL above stops working after this"})


class PlaybackGrantQueryArgsSchema(Schema):
    """The grant carried in the query of an API-served playlist URL (as handed out, never built)."""

    expires = fields.Integer(load_default=None, validate=Range(min=1, max=2**63 - 1),
                             metadata={"description": "Unix time the grant ends"})
    token = fields.String(load_default=None, validate=lambda v: len(v) <= 128)
