"""The application factory: the one place where Groundwork is composed."""
from __future__ import annotations

import importlib
import re
import secrets
from typing import Any

from flask import Flask
from flask_cors import CORS
from werkzeug.middleware.proxy_fix import ProxyFix

from backend.api import GroundworkApi, init_api
from backend.common import docs
from backend.common.db import watch_server_hangups
from backend.common.errors import register_error_handlers
from backend.common.jobs import install_session_hooks, make_redis
from backend.common.ratelimit import init_limiter
from backend.common.requests import register_request_hooks
from backend.common.sessions import ConsoleOnlySessionInterface
from backend.config import load_config
from backend.extensions import cache, db, migrate
from backend.operations import health
from backend.operations.logs import configure_logging
from backend.operations.metrics import bp as metrics_bp
from backend.operations.metrics import register_metrics


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build a Groundwork app from the environment, with ``config`` overriding it."""
    app = Flask(__name__, instance_relative_config=False)
    settings = load_config(**(config or {}))
    app.config.update(settings)
    configure_app(app)
    configure_logging(app.config["LOG_LEVEL"], as_json=app.config["LOG_JSON"])
    register_extensions(app)
    register_request_hooks(app)
    register_metrics(app)
    register_blueprints(app)
    register_error_handlers(app)
    register_admin(app)
    register_commands(app)
    register_sentry(app)
    return app


def configure_app(app: Flask) -> None:
    """Translate Groundwork settings into the settings each extension reads."""
    c = app.config
    c["TESTING"] = c["ENV"] == "test"
    if not c["SECRET_KEY"]:  # development/test only: production is refused in load_config
        c["SECRET_KEY"] = secrets.token_urlsafe(48)
    c["SQLALCHEMY_DATABASE_URI"] = sqlalchemy_url(c["DATABASE_URL"])
    c["SQLALCHEMY_ENGINE_OPTIONS"] = {
        # A restarted PostgreSQL is picked up without a restart here: each checkout asks the
        # kernel whether the server hung up (backend.common.db.closed_by_server), no SELECT 1.
        "pool_pre_ping": False,
        "pool_size": c["DB_POOL_SIZE"],
        "max_overflow": c["DB_POOL_SIZE"],
        "pool_timeout": 5,
        "connect_args": {
            "connect_timeout": c["DB_CONNECT_TIMEOUT_S"],
            "options": f"-c statement_timeout={c['DB_STATEMENT_TIMEOUT_MS']}",
            "application_name": "groundwork",
        },
    }
    # limits spells a Unix-socket Redis (the embedded one) redis+unix://, redis-py unix://
    c["RATELIMIT_STORAGE_URI"] = re.sub(r"^unix://", "redis+unix://", c["REDIS_URL"])
    c["RATELIMIT_STORAGE_OPTIONS"] = {
        "socket_timeout": c["REDIS_SOCKET_TIMEOUT_S"],
        "socket_connect_timeout": c["REDIS_SOCKET_TIMEOUT_S"],
    }
    c["RATELIMIT_SWALLOW_ERRORS"] = True  # general limits fail open; auth limits fail closed
    c["RATELIMIT_KEY_PREFIX"] = "groundwork:rl"
    c["CACHE_TYPE"] = "RedisCache"
    c["CACHE_REDIS_URL"] = c["REDIS_URL"]
    c["CACHE_KEY_PREFIX"] = "groundwork:cache:"
    c["CACHE_DEFAULT_TIMEOUT"] = c["CACHE_DEFAULT_TIMEOUT_S"]
    c["CACHE_OPTIONS"] = {"socket_timeout": c["REDIS_SOCKET_TIMEOUT_S"],
                          "socket_connect_timeout": c["REDIS_SOCKET_TIMEOUT_S"]}
    c["JSON_SORT_KEYS"] = False
    app.session_interface = ConsoleOnlySessionInterface()
    if c["PROXY_FIX_X_FOR"]:
        n = c["PROXY_FIX_X_FOR"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n)  # type: ignore[method-assign]


def sqlalchemy_url(url: str) -> str:
    """Pin the psycopg2 driver (SQLAlchemy 2.1 defaults ``postgresql://`` to psycopg 3)."""
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg2://" + url[len(scheme):]
    return url


def register_extensions(app: Flask) -> None:
    """Bind the unbound extension objects to this app."""
    from backend import models as _all_models  # noqa: F401 - every table into the metadata

    db.init_app(app)
    with app.app_context():
        for engine in db.engines.values():
            watch_server_hangups(engine)
    install_session_hooks(db.session.session_factory.class_)
    migrate.init_app(app, db, directory="migrations", compare_type=True, render_as_batch=False)
    cache.init_app(app)
    init_limiter(app)
    # One Api per app (like Admin): a shared one would serve the newest app's spec.
    app.extensions["groundwork.api"] = init_api(app, GroundworkApi())
    app.extensions["groundwork.redis"] = make_redis(
        app.config["REDIS_URL"], socket_timeout=app.config["REDIS_SOCKET_TIMEOUT_S"])
    if app.config["CORS_ORIGINS"]:
        CORS(app, resources={r"/v1/*": {"origins": app.config["CORS_ORIGINS"]}},
             expose_headers=["X-Request-ID", "ETag", "Retry-After", "RateLimit-Limit",
                             "RateLimit-Remaining", "RateLimit-Reset"])


# Domain packages: each has routes.py exposing ``blueprints``, and may define
# ``init_app(app)`` in its __init__ for hooks (loaders, CLI commands, admin views).
DOMAINS = ("backend.auth", "backend.notifications", "backend.analytics", "backend.media", "backend.webhooks")


def register_blueprints(app: Flask) -> None:
    """Operations endpoints, Swagger UI assets, and the API blueprints of each domain."""
    app.register_blueprint(health.bp)
    app.register_blueprint(docs.bp)
    # Probes, scrapes, the spec and its UI are not API traffic: no Redis round trip for them.
    for blueprint in (health.bp, docs.bp, metrics_bp, app.blueprints["api-docs"]):
        app.extensions["groundwork.limiter"].exempt(blueprint)
    api = app.extensions["groundwork.api"]
    for name in DOMAINS:
        package = importlib.import_module(name)
        if hasattr(package, "init_app"):
            package.init_app(app)
        for blueprint in importlib.import_module(f"{name}.routes").blueprints:
            api.register_blueprint(blueprint)


def register_admin(app: Flask) -> None:
    """Mount the staff console at /admin."""
    from admin import init_admin

    init_admin(app)


def register_commands(app: Flask) -> None:
    """CLI commands: ``flask --app wsgi <command>``."""
    from backend.cli import register_cli

    register_cli(app)


def register_sentry(app: Flask) -> None:
    """Report errors to Sentry when SENTRY_DSN is set."""
    if not app.config["SENTRY_DSN"]:
        return
    import sentry_sdk
    from sentry_sdk.integrations.flask import FlaskIntegration
    from sentry_sdk.integrations.rq import RqIntegration

    sentry_sdk.init(dsn=app.config["SENTRY_DSN"], environment=app.config["ENV"],
                    integrations=[FlaskIntegration(), RqIntegration()], send_default_pii=False)
