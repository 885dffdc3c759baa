"""B7: the video job (HLS ladder from a 1080p30 clip) against the bare ffmpeg command, and
the API's p99 while a transcode runs.

Wall time: Groundwork's whole video job (``jobs.media.process_media``: download from the
local store, checksum, byte judgement, probe, the one ffmpeg pass, the MP4 fallback remux,
storing every file, ready) against the bare single ffmpeg command with the same arguments
(``backend.media.video.command.build_command`` for the same plan, at the same niceness),
interleaved, median of ``--reps``. API p99: ``GET /v1/me`` (cached, B1's request) through gunicorn with the
production config, wrk at 16 connections, idle and while a video job runs in this process
(its ffmpeg at VIDEO_NICE, as in a worker). Targets (BENCHMARKS.md): job ≤ 1.05× bare;
p99 during a transcode ≤ 2× idle.

    .venv/bin/python -m bench.b7_video [--seconds 20] [--reps 3] [--load-seconds 5]

``--seconds 4 --reps 1 --load-seconds 2`` is a dry run (numbers not meaningful).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a plain script

from bench.b1_baseline import load_average, production_env  # noqa: E402
from bench.b1_me import prepare, wrk  # noqa: E402
from bench.common import ROOT, Load, median_load, result_row, start_gunicorn, table_header, write_results  # noqa: E402

WALL_TARGET = 1.05
P99_TARGET = 2.0
RESULTS = ROOT / "bench" / "RESULTS-b7.md"


def make_source(path: Path, seconds: int) -> Path:
    """A 1080p30 clip with motion and a tone (testsrc2 + sine), H.264/AAC at high quality."""
    from backend.media.video.binaries import ffmpeg_path

    subprocess.run([ffmpeg_path(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate=30:duration={seconds}",
                    "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
                    "-c:v", "libx264", "-preset", "ultrafast", "-crf", "18", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", "-shortest", str(path)], check=True)
    return path


def bare_command(source: Path, out: Path, preset: str) -> list[str]:
    """The exact ffmpeg argument list the job runs for ``source``."""
    from backend.media.video.command import EncodePlan, build_command
    from backend.media.video.ladder import choose_renditions
    from backend.media.video.probe import probe_video
    from backend.media.video.storyboard import plan_storyboard

    probe = probe_video(source)
    plan = EncodePlan(source=source, out_dir=out, probe=probe, renditions=choose_renditions(probe),
                      storyboard=plan_storyboard(duration_s=probe.duration_s, width=probe.width, height=probe.height),
                      preset=preset)
    return build_command(plan)


def run_bare(command: list[str], out: Path, nice: int) -> float:
    """Wall seconds of the bare command (a fresh output folder each time).

    It runs at the job's ffmpeg niceness: on a shared machine a lower priority alone would
    slow the job's ffmpeg, and the ratio is meant to show what the job adds around it.
    """
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    started = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, check=True, preexec_fn=lambda: os.nice(nice))
    return time.perf_counter() - started


class VideoJob:
    """One media row whose original is the clip; ``run()`` processes it from pending again."""

    def __init__(self, app, user_id: str, source: Path) -> None:
        from backend.common.db import utcnow
        from backend.extensions import db
        from backend.media.models import Media
        from backend.media.storage import get_storage

        self.app, self.media_id = app, uuid.uuid4()
        data = source.read_bytes()
        prefix = f"media/{self.media_id}/"
        with app.app_context():
            db.session.add(Media(
                id=self.media_id, owner_id=uuid.UUID(user_id), kind="video", status="pending",
                declared_type="video/mp4", size_bytes=len(data), checksum_sha256=hashlib.sha256(data).hexdigest(),
                key_prefix=prefix, original_key=prefix + "original", upload_expires_at=utcnow() + timedelta(days=1)))
            db.session.commit()
            with source.open("rb") as stream:
                get_storage().put(prefix + "original", stream, content_type="video/mp4")

    def run(self) -> float:
        """Wall seconds of ``jobs.media.process_media`` for this item (reset to pending first)."""
        from sqlalchemy import update

        from backend.extensions import db
        from backend.media.models import Media
        from jobs.media import process_media

        with self.app.app_context():
            db.session.execute(update(Media).where(Media.id == self.media_id)
                               .values(status="pending", progress=0, attempts=0, variants={}))
            db.session.commit()
            started = time.perf_counter()
            status = process_media(media_id=str(self.media_id))
            elapsed = time.perf_counter() - started
            db.session.remove()
        if status != "ready":
            raise RuntimeError(f"the video job ended {status}")
        return elapsed

    def progress(self) -> int:
        from backend.extensions import db
        from backend.media.models import Media

        with self.app.app_context():
            value = db.session.get(Media, self.media_id).progress
            db.session.remove()
        return value


def p99_during_job(job: VideoJob, url: str, header: str, seconds: float) -> tuple[Load, bool]:
    """wrk while the job's ffmpeg runs; also whether the job outlasted the measurement."""
    outcome: list[BaseException | float] = []
    thread = threading.Thread(target=lambda: outcome.append(_guarded(job.run)), daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while job.progress() < 1 and thread.is_alive():  # encoding has begun
        if time.monotonic() > deadline:
            raise RuntimeError("the video job did not start encoding in 60 s")
        time.sleep(0.1)
    load = wrk(url, header, seconds)
    covered = thread.is_alive()
    thread.join()
    if outcome and isinstance(outcome[0], BaseException):
        raise outcome[0]
    return load, covered


def _guarded(run):  # noqa: ANN001, ANN202 - a thread's result or its exception
    try:
        return run()
    except BaseException as exc:  # handed to the main thread
        return exc


def main() -> int:
    from backend.app import create_app
    from tests.services import discover

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20, help="length of the 1080p30 clip")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--load-seconds", type=float, default=5.0)
    args = parser.parse_args()
    run_dir = ROOT / "bench" / "out" / f"b7-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir.mkdir(parents=True)
    services = discover()
    server = None
    try:
        env = production_env(services.create_database(), services.redis_url, run_dir)
        env["ACCESS_TOKEN_TTL_S"] = "3600"
        user_id, token = prepare(env)
        app = create_app({**{k: env[k] for k in ("ENV", "DATABASE_URL", "REDIS_URL", "SECRET_KEY", "JWT_PRIVATE_KEYS",
                                                  "STORAGE_BACKEND", "STORAGE_LOCAL_PATH")}, "LOG_JSON": False})
        source = make_source(run_dir / "source-1080p30.mp4", args.seconds)
        job = VideoJob(app, user_id, source)
        with tempfile.TemporaryDirectory(prefix="b7-bare-") as bare_dir:
            command = bare_command(source, Path(bare_dir), app.config["VIDEO_PRESET"])
            (run_dir / "bare-command.txt").write_text(" ".join(command) + "\n")
            bare_s, job_s = [], []
            for _ in range(args.reps):  # interleaved, so drift in the machine's load hits both
                bare_s.append(run_bare(command, Path(bare_dir), app.config["VIDEO_NICE"]))
                job_s.append(job.run())
        server = start_gunicorn("wsgi:app", run_dir / "api", env=env)
        url, header = f"http://127.0.0.1:{server.port}/v1/me", f"Authorization: Bearer {token}"
        wrk(url, header, 2)  # warm-up, not counted: workers' first requests fill caches and pools
        idle, busy, covered = [], [], []
        for _ in range(args.reps):
            idle.append(wrk(url, header, args.load_seconds))
            load, outlasted = p99_during_job(job, url, header, args.load_seconds)
            busy.append(load)
            covered.append(outlasted)
    finally:
        if server is not None:
            server.stop()
        services.close()
    print(report(args, bare_s, job_s, median_load(idle), median_load(busy), covered))
    return 0


def report(args, bare_s: list[float], job_s: list[float], idle: Load, busy: Load, covered: list[bool]) -> str:  # noqa: ANN001
    """The result rows, written to bench/RESULTS-b7.md."""
    bare, job = statistics.median(bare_s), statistics.median(job_s)
    wall_ratio, p99_ratio = job / bare, busy.p99_ms / idle.p99_ms
    rows = [
        table_header(),
        result_row(f"B7 video job, {args.seconds} s 1080p30 → 1080/720/360 HLS + MP4 + poster + storyboard",
                   f"{job:.2f} s", f"{bare:.2f} s bare ffmpeg", wall_ratio, f"≤ {WALL_TARGET}×",
                   wall_ratio <= WALL_TARGET),
        result_row("B7 API p99 during a transcode (GET /v1/me, 16 conns)", f"{busy.p99_ms:.1f} ms",
                   f"{idle.p99_ms:.1f} ms idle", p99_ratio, f"≤ {P99_TARGET}×", p99_ratio <= P99_TARGET),
    ]
    body = "\n".join(rows) + "\n\n" + "\n".join([
        f"Each rep (s): job {', '.join(f'{s:.2f}' for s in job_s)}; bare {', '.join(f'{s:.2f}' for s in bare_s)}.",
        f"API: idle {idle.rps:,.0f} req/s, during {busy.rps:,.0f} req/s; errors {idle.errors + busy.errors}; "
        f"the transcode outlasted {sum(covered)} of {len(covered)} measurement windows.",
        f"{args.reps} reps, {args.load_seconds:g} s wrk windows; job and bare ffmpeg both at VIDEO_NICE. "
        f"Load average at the end: {load_average()}.",
        "",
        "Run: `.venv/bin/python -m bench.b7_video` (dry run: `--seconds 4 --reps 1 --load-seconds 2`).",
    ])
    write_results(RESULTS, "B7: video job vs bare ffmpeg; API p99 during a transcode", body)
    return body


if __name__ == "__main__":
    sys.exit(main())
