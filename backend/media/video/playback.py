"""Private HLS that plays: every URL an app's player meets is signed and short-lived.

A player cannot add an Authorization header to the requests HLS makes on its own, so
a viewer (the owner, or any signed-in user when the owner shared it: the media domain's
``delivery.viewable_media``) asks once (``GET /v1/media/{id}/playback``) and receives URLs that
carry their own proof: an HMAC over the item and an expiry. The master playlist, each
variant playlist and the storyboard WebVTT are served by the API and rewritten on every
fetch, so the variants they name carry the same token and every segment, poster and
sprite URL is a fresh signed storage URL (S3 presigned GET, or the local store's signed
route). The expiry covers the download TTL plus the video's length, so a player that
switches renditions near the end still can. Each playlist fetch checks again that the
item may be served (``delivery.servable``: ready, not quarantined or removed), so a removed
item stops playing at the next fetch; segment URLs already handed out run to their expiry.
"""
from __future__ import annotations

import hashlib
import hmac
import math
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.common.errors import Forbidden
from backend.media.delivery import servable, viewable_media
from backend.media.errors import MediaNotFound, WrongState
from backend.media.models import Media
from backend.media.storage import Storage, get_storage


class PlaybackExpired(Forbidden):
    code = "playback_expired"


@dataclass(frozen=True)
class PlaybackGrant:
    """One signed permission to play one item until ``expires`` (Unix seconds)."""

    media_id: uuid.UUID
    expires: int

    @property
    def query(self) -> str:
        """The query string every API-served playback URL carries."""
        return f"expires={self.expires}&token={sign(self.media_id, self.expires)}"


def _key() -> bytes:
    return hashlib.sha256(b"groundwork.video-playback\0" + current_app.config["SECRET_KEY"].encode()).digest()


def sign(media_id: uuid.UUID, expires: int) -> str:
    """The token of (item, expiry)."""
    return hmac.new(_key(), f"{media_id}.{expires}".encode(), hashlib.sha256).hexdigest()


def check_grant(*, media_id: uuid.UUID, expires: int | None, token: str | None) -> PlaybackGrant:
    """The grant a URL carries; a wrong token is not found (no oracle), an old one expired."""
    if expires is None or not token or not hmac.compare_digest(sign(media_id, expires).encode(), token.encode()):
        raise MediaNotFound("No such media.")
    if expires < time.time():
        raise PlaybackExpired("This playback link has expired; ask for a new one.")
    return PlaybackGrant(media_id, expires)


def _ready(session: Session, media_id: uuid.UUID) -> Media:
    """The granted item, if it may still be served."""
    media = session.scalar(select(Media).where(Media.id == media_id))
    if media is None or not servable(media) or "hls" not in (media.variants or {}):
        raise MediaNotFound("No such media.")
    return media


def _api_url(path: str, grant: PlaybackGrant) -> str:
    return f"{current_app.config['PUBLIC_BASE_URL'].rstrip('/')}/v1/media/{grant.media_id}/{path}?{grant.query}"


def _signed(store: Storage, media: Media, grant: PlaybackGrant, name: str) -> str:
    variant = media.variants[name]
    return store.presign_get(variant["key"], expires_s=_remaining(grant), content_type=variant["content_type"])


def _remaining(grant: PlaybackGrant) -> int:
    return max(1, grant.expires - int(time.time()))


def playback_links(session: Session, *, viewer_id: uuid.UUID, media_id: uuid.UUID) -> dict[str, Any]:
    """Signed URLs to play a video the viewer may see: HLS, MP4 fallback, poster, storyboard."""
    media = viewable_media(session, viewer_id=viewer_id, media_id=media_id)
    if media.kind != "video":
        raise MediaNotFound("No such video.")
    if not servable(media) or "hls" not in (media.variants or {}):
        raise WrongState("This video cannot be played now.", code="media_not_servable",
                         details={"status": media.status, "quarantined": media.moderation == "quarantined"})
    ttl = current_app.config["MEDIA_DOWNLOAD_URL_TTL_S"] + math.ceil(media.duration_s or 0)
    grant = PlaybackGrant(media.id, int(time.time()) + ttl)
    store = get_storage()
    return {
        "hls_url": _api_url("hls/master.m3u8", grant),
        "mp4_url": _signed(store, media, grant, "mp4"),
        "poster_url": _signed(store, media, grant, "poster"),
        "storyboard_url": _signed(store, media, grant, "storyboard"),
        "storyboard_vtt_url": _api_url("storyboard.vtt", grant),
        "expires_at": datetime.fromtimestamp(grant.expires, UTC),
    }


def _rewrite_uris(text: str, replace: Any) -> str:
    """Replace each URI line of a playlist (not a tag, not blank) with ``replace(line)``."""
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        lines.append(replace(stripped) if stripped and not stripped.startswith("#") else line)
    return "\n".join(lines) + "\n"


def _read(store: Storage, key: str) -> str:
    with store.open(key) as stream:
        return stream.read().decode("utf-8")


def master_playlist(session: Session, *, grant: PlaybackGrant) -> str:
    """The master playlist with each variant pointing at its API URL under the same grant."""
    media = _ready(session, grant.media_id)
    known = {r["name"] for r in media.variants["hls"]["renditions"]}

    def variant_url(uri: str) -> str:
        name = uri.split("/", 1)[0]
        if name not in known:
            raise ValueError(f"unexpected variant {uri!r} in the master playlist of {media.id}")
        return _api_url(f"hls/{name}/index.m3u8", grant)

    return _rewrite_uris(_read(get_storage(), media.variants["hls"]["key"]), variant_url)


def variant_playlist(session: Session, *, grant: PlaybackGrant, rendition: str) -> str:
    """One rendition's playlist with every segment a signed storage URL."""
    media = _ready(session, grant.media_id)
    found = [r for r in media.variants["hls"]["renditions"] if r["name"] == rendition]
    if not found:
        raise MediaNotFound("No such rendition.")
    playlist_key = found[0]["playlist_key"]
    folder = playlist_key.rsplit("/", 1)[0] + "/"
    store, expires_s = get_storage(), _remaining(grant)

    def segment_url(uri: str) -> str:
        if "/" in uri or not uri.endswith(".ts"):
            raise ValueError(f"unexpected segment {uri!r} in {playlist_key}")
        return store.presign_get(folder + uri, expires_s=expires_s, content_type="video/mp2t")

    return _rewrite_uris(_read(store, playlist_key), segment_url)


def storyboard_vtt(session: Session, *, grant: PlaybackGrant) -> str:
    """The storyboard cues with the sprite as a signed URL (fragments kept)."""
    media = _ready(session, grant.media_id)
    store = get_storage()
    sprite = _signed(store, media, grant, "storyboard")
    sprite_name = media.variants["storyboard"]["key"].rsplit("/", 1)[1]
    text = _read(store, media.variants["storyboard_vtt"]["key"])
    return text.replace(f"{sprite_name}#xywh=", f"{sprite}#xywh=")
