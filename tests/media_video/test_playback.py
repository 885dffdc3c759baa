"""Private HLS plays on both stores: a player following the URLs meets only signed ones."""
from __future__ import annotations

import re
import time
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import update

from backend.extensions import db
from backend.media.models import Media
from backend.media.video.playback import sign
from tests.media.conftest import PUBLIC_BASE_URL
from tests.media_video.clips import make_clip, probe_json

PLAYLIST = "application/vnd.apple.mpegurl"


@pytest.fixture(scope="module")
def hd_bytes(tmp_path_factory) -> bytes:
    clip = tmp_path_factory.mktemp("playback") / "hd.mp4"
    return make_clip(clip, width=1280, height=720, seconds=2, fps=10).read_bytes()


# Grant checks happen in the API before any store is asked: one store is enough for them.
local_only = pytest.mark.parametrize("app", ["local"], indirect=True)


@pytest.fixture
def ready_video(client, headers, upload, run_media_jobs, hd_bytes) -> str:
    done = upload(hd_bytes, kind="video", content_type="video/mp4")
    run_media_jobs()
    assert client.get(f"/v1/media/{done['id']}", headers=headers).get_json()["status"] == "ready"
    return done["id"]


def _api_get(client, url):
    assert url.startswith(PUBLIC_BASE_URL + "/v1/media/"), url
    parts = urlsplit(url)
    return client.get(parts.path + "?" + parts.query)


def _uris(playlist: str) -> list[str]:
    return [line for line in playlist.splitlines() if line and not line.startswith("#")]


def test_playback_urls_lead_a_player_through_signed_playlists_to_playable_segments(
        client, headers, transfer, ready_video, tmp_path):
    answer = client.get(f"/v1/media/{ready_video}/playback", headers=headers)
    assert answer.status_code == 200, answer.get_json()
    links = answer.get_json()
    master = _api_get(client, links["hls_url"])
    assert master.status_code == 200
    assert master.headers["Content-Type"].startswith(PLAYLIST)
    assert "no-store" in master.headers["Cache-Control"]
    text = master.get_data(as_text=True)
    assert re.findall(r"RESOLUTION=(\d+x\d+)", text) == ["640x360", "1280x720"]
    variants = _uris(text)
    assert [urlsplit(u).path for u in variants] == [f"/v1/media/{ready_video}/hls/360p/index.m3u8",
                                                   f"/v1/media/{ready_video}/hls/720p/index.m3u8"]
    joined = tmp_path / "played.ts"
    for variant_url in variants:
        variant = _api_get(client, variant_url)
        assert variant.status_code == 200 and variant.headers["Content-Type"].startswith(PLAYLIST)
        segments = _uris(variant.get_data(as_text=True))
        assert segments and all(parse_qs(urlsplit(s).query) for s in segments)  # every one carries a signature
        with joined.open("wb") as out:
            for segment_url in segments:
                status, _, body = transfer.get(segment_url)
                assert status == 200 and body[:1] == b"\x47"  # MPEG-TS sync byte
                out.write(body)
        (video, audio) = sorted(probe_json(joined)["streams"], key=lambda s: s["codec_type"], reverse=True)
        assert video["codec_name"] == "h264" and audio["codec_name"] == "aac"
    status, _, body = transfer.get(links["mp4_url"])
    assert status == 200 and body[4:8] == b"ftyp"
    status, _, body = transfer.get(links["poster_url"])
    assert status == 200 and body[:3] == b"\xff\xd8\xff"


def test_playback_storyboard_track_points_at_a_signed_sprite(client, headers, transfer, ready_video):
    links = client.get(f"/v1/media/{ready_video}/playback", headers=headers).get_json()
    track = _api_get(client, links["storyboard_vtt_url"])
    assert track.status_code == 200 and track.headers["Content-Type"].startswith("text/vtt")
    cues = re.findall(r"^(\S+)#xywh=(\d+),(\d+),160,90$", track.get_data(as_text=True), re.M)
    assert len(cues) == 2 and [c[1:] for c in cues] == [("0", "0"), ("160", "0")]
    sprite_url = cues[0][0]
    assert sprite_url == links["storyboard_url"] or parse_qs(urlsplit(sprite_url).query)
    status, _, body = transfer.get(sprite_url)
    assert status == 200 and body[:3] == b"\xff\xd8\xff"


def test_playback_delivery_does_not_hand_out_raw_playlists(client, headers, ready_video):
    delivered = client.get(f"/v1/media/{ready_video}/delivery", headers=headers).get_json()
    assert set(delivered["variants"]) == {"mp4", "poster", "storyboard"}


@local_only
def test_playback_playlist_with_wrong_or_missing_token_is_not_found(client, headers, ready_video):
    links = client.get(f"/v1/media/{ready_video}/playback", headers=headers).get_json()
    path = urlsplit(links["hls_url"]).path
    expires = parse_qs(urlsplit(links["hls_url"]).query)["expires"][0]
    for query in ("", f"?expires={expires}&token={'0' * 64}", f"?expires={int(expires) + 1}&token=abc",
                  "?expires=notanumber&token=x", f"?expires={expires}&token=%C3%A9t%C3%A9"):
        answer = client.get(path + query)
        assert answer.status_code in (404, 422), (query, answer.status_code)
        assert answer.get_json()["error"]["code"] in ("media_not_found", "validation_failed")
    other = str(uuid.uuid4())
    stolen = _api_get(client, links["hls_url"].replace(ready_video, other))
    assert stolen.status_code == 404


@local_only
def test_playback_expired_grant_is_refused_with_403(app, client, ready_video):
    expires = int(time.time()) - 5
    with app.app_context():
        token = sign(uuid.UUID(ready_video), expires)
    answer = client.get(f"/v1/media/{ready_video}/hls/master.m3u8?expires={expires}&token={token}")
    assert answer.status_code == 403 and answer.get_json()["error"]["code"] == "playback_expired"


@local_only
def test_playback_unknown_rendition_is_not_found(client, headers, ready_video):
    links = client.get(f"/v1/media/{ready_video}/playback", headers=headers).get_json()
    query = urlsplit(links["hls_url"]).query
    answer = client.get(f"/v1/media/{ready_video}/hls/..%2f..%2fsecret/index.m3u8?{query}")
    assert answer.status_code == 404
    answer = client.get(f"/v1/media/{ready_video}/hls/1080p/index.m3u8?{query}")
    assert answer.status_code == 404


@local_only
def test_playback_of_removed_video_stops_at_the_next_playlist_fetch(client, headers, ready_video):
    links = client.get(f"/v1/media/{ready_video}/playback", headers=headers).get_json()
    assert _api_get(client, links["hls_url"]).status_code == 200
    db.session.execute(update(Media).where(Media.id == uuid.UUID(ready_video)).values(moderation="removed"))
    db.session.commit()
    assert _api_get(client, links["hls_url"]).status_code == 404
    answer = client.get(f"/v1/media/{ready_video}/playback", headers=headers)
    assert answer.status_code == 409 and answer.get_json()["error"]["code"] == "media_not_servable"


@local_only
def test_playback_of_another_users_private_video_is_not_found_until_shared(
        client, headers, ready_video, make_user, auth_headers):
    stranger = auth_headers(make_user())
    assert client.get(f"/v1/media/{ready_video}/playback", headers=stranger).status_code == 404
    shared = client.patch(f"/v1/media/{ready_video}", headers=headers, json={"visibility": "users"})
    assert shared.status_code == 200, shared.get_json()
    assert client.get(f"/v1/media/{ready_video}/playback", headers=stranger).status_code == 200


@local_only
def test_playback_of_a_video_still_processing_is_a_409(client, headers, upload, hd_bytes):
    done = upload(hd_bytes, kind="video", content_type="video/mp4")
    answer = client.get(f"/v1/media/{done['id']}/playback", headers=headers)
    assert answer.status_code == 409 and answer.get_json()["error"]["details"]["status"] == "pending"
