"""Configuration: read once from the environment, typed and validated.

Every variable the application reads is declared in ``SETTINGS`` below; the README's
configuration table is generated from the same list (``flask config-table``).
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


class ConfigError(RuntimeError):
    """Raised when the configuration is missing a required value or holds a bad one."""


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"not a boolean: {raw!r}")


def _csv(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


def _media_policies(raw: str) -> Any:
    from backend.media.policies import load_policies  # the policy shapes live with the media domain

    try:
        return load_policies(raw)
    except (ValueError, TypeError) as exc:
        raise ValueError(str(exc)) from exc


def _sha256_fingerprints(raw: str) -> list[bytes]:
    """SHA-256 certificate fingerprints as keytool prints them (AA:BB:..., 32 bytes each)."""
    found = []
    for part in _csv(raw):
        try:
            digest = bytes.fromhex(part.replace(":", ""))
        except ValueError as exc:
            raise ValueError(f"not a hex fingerprint: {part!r}") from exc
        if len(digest) != 32:
            raise ValueError(f"not a SHA-256 fingerprint (32 bytes): {part!r}")
        found.append(digest)
    return found


X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")


@dataclass(frozen=True)
class Setting:
    """One configuration variable: its name, parser, default and meaning."""

    name: str
    parse: Callable[[str], Any]
    default: str | None
    help: str
    secret: bool = False


SETTINGS: tuple[Setting, ...] = (
    Setting("ENV", str, "development", "development, test or production; production refuses unsafe defaults"),
    Setting("SECRET_KEY", str, None, "signs console sessions, CSRF tokens and cursors; required in production", secret=True),
    Setting("DATABASE_URL", str, None, "PostgreSQL URL; unset under `make run` starts an embedded server in instance/"),
    Setting("DB_POOL_SIZE", int, "10", "SQLAlchemy connection pool size per process"),
    Setting("DB_STATEMENT_TIMEOUT_MS", int, "15000", "PostgreSQL statement_timeout for web requests (below gunicorn's timeout)"),
    Setting("DB_CONNECT_TIMEOUT_S", int, "3", "seconds to wait for a PostgreSQL connection"),
    Setting("REDIS_URL", str, None, "Redis URL for queues, cache and rate limits; unset under `make run` starts an embedded one"),
    Setting("REDIS_SOCKET_TIMEOUT_S", float, "0.5", "socket timeout for Redis calls so a hung Redis cannot stall requests"),
    Setting("PUBLIC_BASE_URL", str, "http://127.0.0.1:8000", "external base URL used to build links in emails and signed URLs"),
    Setting("CORS_ORIGINS", _csv, "", "comma-separated origins allowed by CORS (empty: CORS off)"),
    Setting("PROXY_FIX_X_FOR", int, "0", "number of trusted proxies setting X-Forwarded-For (1 behind nginx)"),
    Setting("MAX_CONTENT_LENGTH", int, "1048576", "largest request body the API accepts, in bytes"),
    Setting("MAX_JSON_DEPTH", int, "32", "deepest JSON nesting accepted in a request body"),
    Setting("RATELIMIT_DEFAULT", str, "600 per minute", "default rate limit per client address for API routes"),
    Setting("RATELIMIT_PER_USER", str, "1200 per minute", "rate limit per signed-in user (valid access token), in place of the per-address one for reads"),
    Setting("RATELIMIT_ENABLED", _bool, "true", "turn rate limiting off (only for benchmarks)"),
    Setting("JWT_PRIVATE_KEYS", str, None, "PEM Ed25519/RSA private keys for access tokens, newest first, separated by blank lines; required in production", secret=True),
    Setting("JWT_ISSUER", str, "groundwork", "`iss` claim of issued tokens"),
    Setting("JWT_AUDIENCE", str, "groundwork-api", "`aud` claim of issued tokens"),
    Setting("ACCESS_TOKEN_TTL_S", int, "900", "access token lifetime in seconds"),
    Setting("REFRESH_TOKEN_TTL_S", int, "2592000", "refresh token lifetime in seconds (idle)"),
    Setting("REFRESH_GRACE_S", int, "30", "window in which a repeated refresh gets the same new pair"),
    Setting("AUTH_REQUIRE_VERIFIED_EMAIL", _bool, "true", "password sign-in needs a verified email address"),
    Setting("AUTH_STATE_CACHE_TTL_S", int, "300", "seconds session/user state and /v1/me stay cached in Redis (0: always read PostgreSQL)"),
    Setting("AUTH_LOCKOUT_WINDOW_S", int, "900", "window of the per-account and per-address attempt counters on auth endpoints"),
    Setting("AUTH_LOCKOUT_MAX_S", int, "86400", "longest progressive lockout of one account or address"),
    Setting("AUTH_LOGIN_LIMIT_PER_ACCOUNT", int, "10", "sign-in attempts per account per window before a lockout"),
    Setting("AUTH_LOGIN_LIMIT_PER_IP", int, "100", "sign-in attempts per client address per window before a lockout"),
    Setting("PASSWORD_HASH_SLOTS", int, "1", "password hashes (Argon2id) one web process runs at once, on low-priority threads; a pod runs at most WEB_CONCURRENCY times this"),
    Setting("PASSWORD_HASH_QUEUE", int, "3", "sign-ins one web process lets wait for a hashing slot; beyond that, 429 hashing_busy with Retry-After at once (default: gunicorn's 4 threads minus one slot, so no sign-in a worker took is refused for want of room)"),
    Setting("PASSWORD_HASH_WAIT_MS", int, "1000", "longest wait for a hashing slot before 429 hashing_busy (Retry-After: this, rounded up to a second)"),
    Setting("PASSWORD_HASH_NICE", int, "10", "niceness added to the hashing threads (Linux, per thread): request threads run first, hashing gets the CPU left"),
    Setting("AUTH_EMAIL_LIMIT_PER_ACCOUNT", int, "5", "verification/reset mails per account per window"),
    Setting("VERIFY_EMAIL_TOKEN_TTL_S", int, "86400", "lifetime of email verification and email-change links"),
    Setting("PASSWORD_RESET_TOKEN_TTL_S", int, "3600", "lifetime of password reset links"),
    Setting("ACCOUNT_DELETION_GRACE_S", int, "2592000", "grace period between a deletion request and erasure (cancel by signing in)"),
    Setting("CACHE_DEFAULT_TIMEOUT_S", int, "60", "default Flask-Caching timeout"),
    Setting("JOB_TIMEOUT_S", int, "600", "default RQ job timeout"),
    Setting("WORKER_NICE", int, "10", "niceness added to `python -m jobs.worker` and its jobs (campaign fan-out, media, exports), so web processes sharing the machine keep their latency; 0 leaves it alone"),
    Setting("WORKER_MAINTENANCE_S", int, "60", "seconds between a worker's maintenance rounds (registries cleaned; its RQ scheduler started again after a Redis outage killed it)"),
    Setting("STORAGE_BACKEND", str, "local", "`local` (folder + signed URLs served by the app) or `s3`"),
    Setting("STORAGE_LOCAL_PATH", str, "instance/storage", "folder of the local storage backend"),
    Setting("S3_BUCKET", str, "", "bucket for the s3 backend"),
    Setting("S3_ENDPOINT_URL", str, "", "S3-compatible endpoint (empty: AWS)"),
    Setting("S3_REGION", str, "us-east-1", "S3 region"),
    Setting("MEDIA_POLICIES", _media_policies, "", "per-kind media policy changes as JSON (README, Media): types, sizes, pixel/frame/duration limits, presets, quarantine"),
    Setting("MEDIA_QUOTA_BYTES", int, "1073741824", "bytes of media one user may store (checked at upload request and at completion)"),
    Setting("MEDIA_MULTIPART_THRESHOLD", int, "16777216", "uploads larger than this many bytes are multipart (presigned parts, resumable)"),
    Setting("MEDIA_PART_SIZE", int, "8388608", "bytes per multipart part (S3 needs at least 5 MiB but for the last)"),
    Setting("MEDIA_UPLOAD_URL_TTL_S", int, "3600", "lifetime of presigned upload URLs (ask again to resume with fresh ones)"),
    Setting("MEDIA_UPLOAD_EXPIRY_S", int, "86400", "an upload not completed this long after it was asked for is aborted and its parts removed"),
    Setting("MEDIA_DOWNLOAD_URL_TTL_S", int, "300", "lifetime of signed media download/playback URLs"),
    Setting("MEDIA_CLAMD_ADDRESS", str, "", "clamd to scan every upload with (INSTREAM): `unix:/run/clamav/clamd.ctl` or `host:3310`; empty: no scan"),
    Setting("MEDIA_PROCESSING_STALE_S", int, "1800", "a media item processing this long without progress is retried, then failed"),
    Setting("VIDEO_TIME_LIMIT_S", int, "540", "wall-clock limit of one video's ffmpeg run (killed past it; keep below JOB_TIMEOUT_S)"),
    Setting("VIDEO_MAX_OUTPUT_BYTES", int, "4294967296", "most bytes one video's transcode may write (ladder, fallback, images)"),
    Setting("VIDEO_PRESET", str, "veryfast", "x264 preset of the HLS ladder (slower: smaller files, more CPU)"),
    Setting("VIDEO_NICE", int, "10", "CPU niceness of ffmpeg, so API processes on the same machine stay responsive"),
    Setting("WEBHOOK_ALLOW_PRIVATE_NETWORKS", _bool, "false", "let webhook endpoints resolve to loopback/private addresses (development and tests only)"),
    Setting("MAIL_BACKEND", str, "outbox", "`smtp` or `outbox` (stores mails in the database for the console)"),
    Setting("SMTP_HOST", str, "localhost", "SMTP server host"),
    Setting("SMTP_PORT", int, "25", "SMTP server port"),
    Setting("SMTP_USERNAME", str, "", "SMTP user (empty: no auth)"),
    Setting("SMTP_PASSWORD", str, "", "SMTP password", secret=True),
    Setting("SMTP_STARTTLS", _bool, "false", "use STARTTLS"),
    Setting("MAIL_FROM", str, "Groundwork <no-reply@localhost>", "From: header of outgoing mail"),
    Setting("PUSH_BACKEND", str, "outbox", "`fcm` or `outbox` (records what would be sent)"),
    Setting("FCM_CREDENTIALS_FILE", str, "", "path of the FCM service-account JSON"),
    Setting("FCM_PROJECT_ID", str, "", "Firebase project ID (default: from the credentials file)"),
    Setting("FCM_ENDPOINT", str, "", "override of FCM's base URL (tests, local fake)"),
    Setting("PUSH_MAX_LANES", int, "16", "delivery lanes (jobs claiming batch after batch) one campaign, or all transactional sends, may run at once"),
    Setting("PUSH_LEASE_S", float, "45", "seconds a claimed push batch may go without its lane renewing the claim before the reconciler takes it as dead and sends its rows again (the lane renews every third of this)"),
    Setting("PUSH_DIGEST_CATEGORIES", _csv, "social", "categories whose pushes held by quiet hours go out as one summary per device when the window opens"),
    Setting("PUSH_TOKEN_STALE_DAYS", int, "270", "a device token not refreshed (app not opened) for this many days is pruned; FCM: stale after 30 days, expired on Android after 270"),
    Setting("INBOX_STREAM_LIFETIME_S", float, "55", "seconds an inbox SSE stream stays open before the client reconnects with Last-Event-ID"),
    Setting("INBOX_STREAM_HEARTBEAT_S", float, "15", "seconds between SSE heartbeat comments; each heartbeat re-checks the holders' sessions and polls PostgreSQL for missed entries"),
    Setting("STREAM_HOST", str, "127.0.0.1", "address the stream server (`python -m backend.streams`, the `stream` role) listens on"),
    Setting("STREAM_PORT", int, "8001", "port of the stream server, which holds the open inbox streams apart from the web workers"),
    Setting("STREAM_PUBLIC_URL", str, "", "where the API redirects a stream request that reached it instead of the stream server (`make run` sets it; behind nginx it is never needed)"),
    Setting("STREAM_TICKET_TTL_S", int, "30", "lifetime of a browser stream ticket (single use, only for opening the inbox stream)"),
    Setting("STREAM_DB_THREADS", int, "4", "threads of the stream server for PostgreSQL/Redis checks (sign-in, replay, the heartbeat sweep)"),
    Setting("STREAM_QUEUE_MAX", int, "256", "events waiting for one slow stream client before the server drops it (it reconnects with Last-Event-ID)"),
    Setting("GOOGLE_CLIENT_IDS", _csv, "", "accepted `aud` values of Google ID tokens"),
    Setting("APPLE_CLIENT_IDS", _csv, "", "accepted `aud` values of Apple ID tokens"),
    Setting("GOOGLE_JWKS_URL", str, "https://www.googleapis.com/oauth2/v3/certs", "Google's signing keys"),
    Setting("APPLE_JWKS_URL", str, "https://appleid.apple.com/auth/keys", "Apple's signing keys"),
    # Passkeys (WebAuthn) and the links in account mails.
    Setting("PASSKEY_RP_ID", str, "", "WebAuthn relying-party ID: the domain passkeys are bound to (empty: PUBLIC_BASE_URL's host)"),
    Setting("PASSKEY_RP_NAME", str, "Groundwork", "name the phone shows when it saves a passkey"),
    Setting("PASSKEY_ORIGINS", _csv, "", "web origins allowed in passkey ceremonies, comma-separated (empty: PUBLIC_BASE_URL's origin); iOS apps use https://<rp id> through their associated domain"),
    Setting("IOS_APP_IDS", _csv, "", "the iOS apps (TEAMID.bundle.id) of this backend: /.well-known/apple-app-site-association lets them use its passkeys and open its email links"),
    Setting("ANDROID_APP_PACKAGE", str, "", "the Android app's package name, served in /.well-known/assetlinks.json"),
    Setting("ANDROID_APP_CERT_SHA256", _sha256_fingerprints, "", "SHA-256 fingerprints (AA:BB:...) of the Android app's signing certificates: each allows its android:apk-key-hash: passkey origin"),
    Setting("PASSKEY_CHALLENGE_TTL_S", int, "300", "lifetime of a passkey challenge (single use)"),
    Setting("PASSKEY_FRESH_SIGN_IN_S", int, "900", "adding a passkey needs a sign-in this recent, or the current password"),
    Setting("EMAIL_ACTION_URL", str, "", "universal/app link the verification and email-change pages redirect to with the outcome (empty: a plain HTML page)"),
    # Product analytics (backend/analytics).
    Setting("ANALYTICS_DATABASE_URL", str, "", "PostgreSQL URL analytics queries read from, e.g. a read replica (empty: DATABASE_URL)"),
    Setting("ANALYTICS_RETENTION_DAYS", int, "395", "days events are kept; a month's partition is dropped once all of it is older"),
    Setting("ANALYTICS_MAX_EVENT_AGE_DAYS", int, "30", "events whose corrected time is older than this are refused (too_old); client event IDs are remembered this long plus a day"),
    Setting("ANALYTICS_MAX_FUTURE_S", int, "60", "events whose corrected time is further ahead than this are clamped to the receive time"),
    Setting("ANALYTICS_MAX_BATCH", int, "500", "most events in one ingest request"),
    Setting("ANALYTICS_MAX_PROPERTIES_BYTES", int, "8192", "largest properties object of one event (serialised JSON)"),
    Setting("ANALYTICS_WORK_MEM_MB", int, "64", "PostgreSQL work_mem for analyst queries (hashes and sorts of funnels and retention stay in memory)"),
    Setting("ANALYTICS_PARTITIONS_AHEAD", int, "2", "months of event partitions created ahead of the current one"),
    Setting("SERVER_API_KEYS", _csv, "", "API keys for server-to-server calls (transactional sends), comma-separated", secret=True),
    Setting("SENTRY_DSN", str, "", "send errors to Sentry when set"),
    Setting("LOG_LEVEL", str, "INFO", "root log level"),
    Setting("LOG_JSON", _bool, "true", "JSON log lines (false: plain text for local reading)"),
)

_PRODUCTION_REQUIRED = ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "JWT_PRIVATE_KEYS")


def load_config(environ: Mapping[str, str] | None = None, **overrides: Any) -> dict[str, Any]:
    """Build the typed config from ``environ`` (default: the process environment)."""
    environ = os.environ if environ is None else environ
    config: dict[str, Any] = {}
    errors: list[str] = []
    for setting in SETTINGS:
        raw = environ.get(setting.name, setting.default)
        if setting.name in overrides:
            config[setting.name] = overrides.pop(setting.name)
            continue
        if raw is None:
            config[setting.name] = None
            continue
        try:
            config[setting.name] = setting.parse(raw)
        except ValueError as exc:
            errors.append(f"{setting.name}: {exc}")
    config.update(overrides)
    if config["ENV"] not in {"development", "test", "production"}:
        errors.append(f"ENV: must be development, test or production, not {config['ENV']!r}")
    if config["ENV"] == "production":
        errors.extend(
            f"{name}: required in production" for name in _PRODUCTION_REQUIRED if not config.get(name)
        )
        if config["SECRET_KEY"] and len(config["SECRET_KEY"]) < 32:
            errors.append("SECRET_KEY: must be at least 32 characters in production")
    if config["STORAGE_BACKEND"] not in {"local", "s3"}:
        errors.append("STORAGE_BACKEND: must be local or s3")
    if config["STORAGE_BACKEND"] == "s3" and not config["S3_BUCKET"]:
        errors.append("S3_BUCKET: required when STORAGE_BACKEND=s3")
    if config["VIDEO_TIME_LIMIT_S"] >= config["JOB_TIMEOUT_S"]:
        errors.append("VIDEO_TIME_LIMIT_S: must be below JOB_TIMEOUT_S (the job must outlive its ffmpeg)")
    if config["VIDEO_PRESET"] not in X264_PRESETS:
        errors.append(f"VIDEO_PRESET: one of {', '.join(X264_PRESETS)}")
    if config["PUSH_BACKEND"] == "fcm" and not config["FCM_CREDENTIALS_FILE"]:
        errors.append("FCM_CREDENTIALS_FILE: required when PUSH_BACKEND=fcm")
    if config["ANALYTICS_RETENTION_DAYS"] <= config["ANALYTICS_MAX_EVENT_AGE_DAYS"]:
        # A month is dropped once it ended before the horizon: no accepted event may still land in it.
        errors.append("ANALYTICS_RETENTION_DAYS: must be more than ANALYTICS_MAX_EVENT_AGE_DAYS")
    for name in ("DATABASE_URL", "REDIS_URL"):
        if not config.get(name):
            errors.append(f"{name}: not set (run through `make run`, which starts embedded services)")
    if errors:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(errors))
    return config


def config_table() -> str:
    """Return the Markdown table of every setting, for the README."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for s in SETTINGS:
        default = "—" if s.default is None else (f"`{s.default}`" if s.default else "empty")
        rows.append(f"| `{s.name}` | {default} | {s.help} |")
    return "\n".join(rows)
