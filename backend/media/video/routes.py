"""Video playback routes: the owner's signed URLs, and the playlists players fetch with them."""
from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint

from backend.common.access import current_principal, public, require
from backend.common.openapi import answers
from backend.extensions import db
from backend.media.video import playback
from backend.media.video.schemas import PlaybackGrantQueryArgsSchema, PlaybackReadSchema

blp = Blueprint("media_video", __name__, url_prefix="/v1/media",
                description="Video playback: signed HLS playlists, MP4 fallback, poster and storyboard")

PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
F = TypeVar("F", bound=Callable[..., Any])


def _text_doc(content_type: str, description: str) -> dict:
    return {"200": {"description": description, "content": {content_type: {"schema": {"type": "string"}}}}}


def _text(body: str, content_type: str) -> Response:
    # Each fetch signs afresh; a cached copy would hand out URLs that have run out.
    return Response(body, content_type=content_type, headers={"Cache-Control": "private, no-store"})


def granted(content_type: str, description: str) -> Callable[[F], F]:
    """A public view reached by a signed playback URL: the grant in the query, a text answer."""

    def decorate(view: F) -> F:
        view = answers(403)(view)  # playback_expired; a wrong token is a 404 like an unknown item
        view = blp.doc(responses=_text_doc(content_type, description))(view)
        view = blp.arguments(PlaybackGrantQueryArgsSchema, location="query")(view)
        return public(view)

    return decorate


def _grant(args: dict, media_id: uuid.UUID) -> playback.PlaybackGrant:
    return playback.check_grant(media_id=media_id, expires=args["expires"], token=args["token"])


@blp.route("/<uuid:media_id>/playback")
class Playback(MethodView):
    @require()
    @blp.response(200, PlaybackReadSchema)
    @answers(409)  # media_not_servable: processing, failed, or held by moderation
    def get(self, media_id):
        """Signed, short-lived URLs to play a video (mine, or one shared with me)"""
        viewer_id = uuid.UUID(str(current_principal().user_id))
        return playback.playback_links(db.session, viewer_id=viewer_id, media_id=media_id)


@blp.route("/<uuid:media_id>/hls/master.m3u8")
class MasterPlaylist(MethodView):
    @granted(PLAYLIST_TYPE, "HLS master playlist; its variants carry the same grant")
    def get(self, args, media_id):
        """HLS master playlist of a video (URL from /playback)"""
        return _text(playback.master_playlist(db.session, grant=_grant(args, media_id)), PLAYLIST_TYPE)


@blp.route("/<uuid:media_id>/hls/<string:rendition>/index.m3u8")
class VariantPlaylist(MethodView):
    @granted(PLAYLIST_TYPE, "HLS variant playlist; every segment is a signed URL")
    def get(self, args, media_id, rendition):
        """HLS variant playlist of one rendition (URL from the master playlist)"""
        grant = _grant(args, media_id)
        return _text(playback.variant_playlist(db.session, grant=grant, rendition=rendition), PLAYLIST_TYPE)


@blp.route("/<uuid:media_id>/storyboard.vtt")
class StoryboardTrack(MethodView):
    @granted("text/vtt", "WebVTT thumbnails track; the sprite is a signed URL")
    def get(self, args, media_id):
        """Storyboard WebVTT of a video for scrubbing previews (URL from /playback)"""
        return _text(playback.storyboard_vtt(db.session, grant=_grant(args, media_id)), "text/vtt; charset=utf-8")


blueprints = [blp]
