# Groundwork: one image for every role. The argument picks it:
#   docker run IMAGE web | worker [queues...] | scheduler | migrate
# See deploy/entrypoint.sh, deploy/docker-compose.yml and deploy/k8s/.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- builder: dependencies and the project into a virtualenv ---------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH

RUN python -m venv /opt/venv

WORKDIR /app

# Dependencies first, read from setup.cfg alone, so this layer is rebuilt only when the
# dependency list changes, not on every source edit. Every dependency ships manylinux
# wheels (psycopg2-binary, argon2-cffi, Pillow), so no compiler. The embedded
# PostgreSQL/Redis wheels are an extra (`embedded`) the image does not need.
COPY setup.cfg pyproject.toml ./
RUN python -c "import configparser; c = configparser.ConfigParser(); c.read('setup.cfg'); print(c['options']['install_requires'])" > /tmp/requirements.txt \
    && pip install --requirement /tmp/requirements.txt

# The project itself, editable at the same path it has in the final stage: the package
# metadata exists (importlib.metadata) and wsgi.py, migrations/ and deploy/ sit beside it.
COPY . .
RUN pip install --no-deps --editable . \
    && python -m compileall -q backend admin jobs wsgi.py

# ---- final: slim runtime, non-root ---------------------------------------------------
FROM ${PYTHON_IMAGE}

# ffmpeg (with ffprobe) from Debian for video jobs; the imageio-ffmpeg wheel's binary
# stays as the fallback the app already knows. postgresql-client: pg_dump/pg_restore for
# `flask backup create|restore` (README, Runbook).
# DL3008 (pin apt versions) is ignored on purpose: Debian's security archive replaces
# old versions, so a pinned version breaks the build a few weeks later; the base image
# tag fixes the release (bookworm) instead.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg postgresql-client \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 groundwork \
    && useradd --system --uid 10001 --gid groundwork --home-dir /app \
       --shell /usr/sbin/nologin groundwork

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ENV=production \
    PORT=8000

WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /app /app
# instance/ holds the local storage backend's files when STORAGE_BACKEND=local; mount
# a volume there or use S3 (the only option with more than one web replica).
RUN mkdir -p /app/instance && chown groundwork:groundwork /app/instance

# Numeric, so Kubernetes' runAsNonRoot can verify it.
USER 10001:10001

# 8000: the web role (gunicorn); 8001: the stream role (the inbox stream server).
EXPOSE 8000 8001

# For `web`: /healthz (no database). Worker and scheduler report healthy while PID 1
# lives; their heartbeat is in Redis. Compose and Kubernetes set their own probes.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["/app/deploy/entrypoint.sh", "healthcheck"]

# SIGTERM reaches gunicorn / rq directly (exec in the entrypoint): graceful drain.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/app/deploy/entrypoint.sh"]
CMD ["web"]
