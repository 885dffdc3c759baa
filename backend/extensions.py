"""Unbound extension objects; ``create_app`` binds them. Nothing here touches a server."""
from __future__ import annotations

from flask_caching import Cache
from flask_jwt_extended import JWTManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

from backend.common.db import Base, Session

# create_savepoint: a session joined to a connection already in a transaction (tests)
# turns its commit/rollback into savepoint operations; with an engine it changes nothing.
# Session: commits can be held so that a request's work commits once (idempotency).
db = SQLAlchemy(model_class=Base, session_options={"join_transaction_mode": "create_savepoint",
                                                   "class_": Session})
migrate = Migrate()
cache = Cache()
jwt_manager = JWTManager()  # loaders and error callbacks: backend.auth.tokens and backend.auth.principal
