"""CPU per request of ``POST /v1/analytics/events`` (50 events), in-process, with an optional cProfile.

Like bench/profile_me.py: the app is driven through its WSGI callable with a prepared
environ (production config, rate limits off as in B8 unless ``--limits``), each request a fresh batch of 50
events shaped like B8's. ``time.process_time()`` over N requests is this process's CPU
per request; PostgreSQL's own CPU is not in it (its round trip shows in the wall time).

    .venv/bin/python -m bench.profile_ingest              # CPU and wall ms per request
    .venv/bin/python -m bench.profile_ingest --profile    # plus a cProfile of the same requests
"""
from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a plain script

from bench.b1_baseline import load_average, production_env  # noqa: E402
from bench.b8_ingest import _bodies  # noqa: E402
from bench.profile_me import call, environ_for  # noqa: E402


def main() -> int:
    """Print CPU and wall ms per 50-event request (and a cProfile when asked)."""
    from tests.services import discover

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", action="store_true", help="cProfile the timed requests")
    parser.add_argument("-n", type=int, default=400, help="requests to time")
    parser.add_argument("--limits", action="store_true", help="rate limits on (high), as production_env sets them")
    args = parser.parse_args()
    services = discover()
    try:
        with tempfile.TemporaryDirectory() as run_dir:
            os.environ.update(production_env(services.create_database(), services.redis_url, Path(run_dir)))
            os.environ["LOG_LEVEL"] = "WARNING"
            if not args.limits:
                os.environ["RATELIMIT_ENABLED"] = "false"
            from backend.app import create_app

            app = create_app({})
            with app.app_context():
                from flask_migrate import upgrade

                upgrade(directory=str(Path(__file__).resolve().parent.parent / "migrations"))
            bodies = _bodies(args.n + 50, seed=1)
            templates = [environ_for("POST", "/v1/analytics/events", {}, body) for body in bodies]
            for template in templates[:50]:
                status = call(app, template)
                if not status.startswith("200"):
                    raise RuntimeError(f"answered {status}")
            profiler = cProfile.Profile() if args.profile else None
            cpu0, wall0 = time.process_time(), time.perf_counter()
            if profiler:
                profiler.enable()
            for template in templates[50:]:
                call(app, template)
            if profiler:
                profiler.disable()
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            if profiler:
                pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
                pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
    finally:
        services.close()
    n = args.n
    print(f"CPU {cpu * 1000 / n:.3f} ms/request, wall {wall * 1000 / n:.3f} ms/request "
          f"({n * 50 / wall:,.0f} events/s on one thread); load average {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
