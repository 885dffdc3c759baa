"""Clips for the video tests, made once per session in a temporary folder."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.media_video.clips import make_clip, make_rotated_clip


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("clips")


@pytest.fixture(scope="session")
def small_clip(clips: Path) -> Path:
    return make_clip(clips / "small.mp4", width=320, height=240, seconds=2)


@pytest.fixture(scope="session")
def hd_clip(clips: Path) -> Path:
    """1280x720, 8 s: two segments, keyframes to count, and a ladder of 360p + 720p."""
    return make_clip(clips / "hd.mp4", width=1280, height=720, seconds=8, fps=10)


@pytest.fixture(scope="session")
def silent_clip(clips: Path) -> Path:
    return make_clip(clips / "silent.mp4", width=640, height=360, seconds=2, audio=False)


@pytest.fixture(scope="session")
def rotated_clip(clips: Path) -> Path:
    return make_rotated_clip(clips / "rotated.mp4", width=640, height=360, seconds=2)


# The media suite's fixtures: the app once per store (local folder, S3 through moto), users, uploads.
from tests.media.conftest import (  # noqa: E402, F401
    app,
    auth_headers,
    headers,
    make_user,
    run_media_jobs,
    s3_endpoint,
    transfer,
    upload,
    user,
)
