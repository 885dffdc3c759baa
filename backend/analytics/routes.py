"""Analytics routes under /v1/analytics: event ingest, and (for analysts) the queries."""
from __future__ import annotations

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint

from backend.analytics import ingest
from backend.analytics.schemas import EventBatchCreateSchema, IngestReadSchema
from backend.common.access import optional_principal, public
from backend.common.db import utcnow
from backend.common.errors import DomainError
from backend.extensions import db

blp = Blueprint("analytics", __name__, url_prefix="/v1/analytics",
                description="Product analytics: event ingest, actives, retention, funnels, push attribution")


class BatchTooLarge(DomainError):
    status, code = 413, "batch_too_large"


@blp.route("/events")
class Events(MethodView):
    @public
    @blp.arguments(EventBatchCreateSchema)
    @blp.response(200, IngestReadSchema)
    @blp.doc(description="Signed in (bearer token) or not: events of an install that signs in later are "
                         "joined to its user. Each event is checked on its own; refused ones are listed with "
                         "a code, the rest are stored before the answer.",
             responses={"200": {"description": "stored; see accepted, duplicates, rejected, clamped"}})
    def post(self, data):
        """Send a batch of events"""
        limit = current_app.config["ANALYTICS_MAX_BATCH"]
        if len(data["events"]) > limit:
            raise BatchTooLarge(f"A batch holds at most {limit} events.", details={"max_events": limit})
        principal = optional_principal()
        props = data["user_properties"] or {}
        batch = ingest.Batch(install_id=data["install_id"], events=data["events"], sent_at=data["sent_at"],
                             platform=data["platform"], app_version=data["app_version"],
                             set_properties=props.get("set", {}), set_once=props.get("set_once", {}))
        return ingest.ingest_batch(db.session, batch=batch, user_id=principal.user_id if principal else None,
                                   client_ip=request.remote_addr, limits=ingest.limits_from(current_app.config),
                                   now=utcnow())


blueprints = (blp,)
