"""ffmpeg inside limits: a time limit, an output limit, an exception or a killed parent leave no ffmpeg."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from backend.media.video.binaries import ffmpeg_path
from backend.media.video.errors import OutputTooLarge, TranscodeFailed, TranscodeTimedOut
from backend.media.video.runner import RunLimits, run_limited
from backend.media.video.transcode import VideoLimits, transcode
from tests.media_video.clips import ffmpeg_children, is_running
from tests.waiting import wait_for


def endless_ffmpeg(out_dir, *, realtime: bool = True) -> list[str]:
    """An ffmpeg that would encode for ten minutes (at real-time pace), writing progress to stdout."""
    pace = ["-re"] if realtime else []
    return [ffmpeg_path(), "-nostdin", "-loglevel", "error", "-nostats", "-progress", "pipe:1", *pace,
            "-f", "lavfi", "-i", "testsrc=size=160x120:rate=10:duration=600",
            "-c:v", "libx264", "-preset", "ultrafast", "-y", str(out_dir / "endless.ts")]


def test_run_over_time_limit_is_killed_and_leaves_no_ffmpeg(tmp_path):
    seen: set[int] = set()

    def note_children(_line):
        seen.update(ffmpeg_children(os.getpid()))

    with pytest.raises(TranscodeTimedOut):
        run_limited(endless_ffmpeg(tmp_path), output_dir=tmp_path, limits=RunLimits(time_limit_s=1.0),
                    on_line=note_children)
    assert seen, "ffmpeg was never seen running"
    assert not [pid for pid in seen if is_running(pid)]
    assert not ffmpeg_children(os.getpid())


def test_run_writing_past_output_limit_is_killed(tmp_path):
    with pytest.raises(OutputTooLarge):
        run_limited(endless_ffmpeg(tmp_path, realtime=False), output_dir=tmp_path,
                    limits=RunLimits(max_output_bytes=200_000))
    assert not ffmpeg_children(os.getpid())


def test_transcode_output_limit_fails_cleanly(tmp_path, small_clip):
    with pytest.raises(OutputTooLarge):
        transcode(small_clip, tmp_path / "out", limits=VideoLimits(max_output_bytes=1000))
    assert not ffmpeg_children(os.getpid())


def test_exception_raised_while_ffmpeg_runs_kills_it(tmp_path):
    """What an RQ job timeout does: an exception raised in the thread waiting for ffmpeg."""
    seen: list[int] = []

    class JobTimeout(Exception):
        pass

    def interrupt(_line):
        seen.extend(ffmpeg_children(os.getpid()))
        raise JobTimeout

    with pytest.raises(JobTimeout):
        run_limited(endless_ffmpeg(tmp_path), output_dir=tmp_path, limits=RunLimits(), on_line=interrupt)
    assert seen and not [pid for pid in seen if is_running(pid)]


def test_failing_ffmpeg_raises_with_its_message(tmp_path):
    with pytest.raises(TranscodeFailed) as caught:
        run_limited([ffmpeg_path(), "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "nosuchsource",
                     "-f", "null", "-"], output_dir=tmp_path, limits=RunLimits())
    assert "nosuchsource" in str(caught.value) or "No such" in str(caught.value)


def test_sigkilled_worker_leaves_no_ffmpeg(tmp_path):
    worker = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        from pathlib import Path
        from backend.media.video.runner import RunLimits, run_limited
        from tests.media_video.test_no_orphans import endless_ffmpeg
        out = Path({str(tmp_path)!r})
        run_limited(endless_ffmpeg(out), output_dir=out, limits=RunLimits())
    """)], cwd=os.getcwd())
    try:
        (ffmpeg_pid,) = wait_for(lambda: ffmpeg_children(worker.pid), timeout=20, what="the worker's ffmpeg")
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
        wait_for(lambda: not is_running(ffmpeg_pid), timeout=10, what="ffmpeg to die with its worker")
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
