"""Swagger UI served from the installed flask-swagger-ui package: no CDN, works offline."""
from __future__ import annotations

import os

import flask_swagger_ui
from flask import Blueprint, send_from_directory
from flask.typing import ResponseReturnValue

ASSETS_URL = "/docs/assets/"
_DIST = os.path.join(os.path.dirname(flask_swagger_ui.__file__), "dist")

bp = Blueprint("docs_assets", __name__)


@bp.get(f"{ASSETS_URL}<path:filename>")
def swagger_asset(filename: str) -> ResponseReturnValue:
    """One Swagger UI asset file, cached for a day."""
    return send_from_directory(_DIST, filename, max_age=86400)
