"""Analytics routes under /v1/analytics: event ingest, and (for analysts) the queries."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Response, current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint

from backend.analytics import ingest, queries
from backend.analytics.reader import analytics_session
from backend.analytics.schemas import (
    ActivesQueryArgsSchema,
    ActivesReadSchema,
    AttributionQueryArgsSchema,
    AttributionReadSchema,
    EventBatchCreateSchema,
    EventCountsQueryArgsSchema,
    EventCountsReadSchema,
    FormatQueryArgsSchema,
    FunnelCreateSchema,
    FunnelReadSchema,
    IngestReadSchema,
    RetentionQueryArgsSchema,
    RetentionReadSchema,
)
from backend.common.access import optional_principal, public, require
from backend.common.db import utcnow
from backend.common.errors import DomainError
from backend.common.requests import GuardedJsonParser
from backend.extensions import db

blp = Blueprint("analytics", __name__, url_prefix="/v1/analytics",
                description="Product analytics: event ingest, actives, retention, funnels, push attribution")
blp.ARGUMENTS_PARSER = GuardedJsonParser()  # an ingest body is parsed once, by the request guard


class BatchTooLarge(DomainError):
    status, code = 413, "batch_too_large"


@blp.route("/events")
class Events(MethodView):
    @public
    @blp.arguments(EventBatchCreateSchema())  # an instance: webargs would build one from a class per request
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


ANALYSTS = ("analyst",)  # admin always passes
# The same 200 also as a CSV download (format=csv), beside the JSON one: blp.doc(responses=...)
# would replace the JSON answer in the document instead of adding to it.
CSV_ANSWER = blp.alt_response(200, schema={"type": "string"}, content_type="text/csv", success=True,
                              description="the table as JSON, or with format=csv as a CSV download")


def answer(result: Any, fmt: str, name: str) -> Any:
    """The result as JSON (the schema's shape) or as a CSV download."""
    if fmt == "csv":
        return Response(result.table().as_csv(), mimetype="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
    return result.as_dict()


@blp.route("/actives")
class Actives(MethodView):
    @require(*ANALYSTS)
    @blp.arguments(ActivesQueryArgsSchema, location="query")
    @blp.response(200, ActivesReadSchema)
    @CSV_ANSWER
    def get(self, args):
        """Daily, weekly or monthly active persons"""
        with analytics_session() as session:
            result = queries.actives(session, interval=args["interval"], start=args["start"], end=args["end"],
                                     platform=args["platform"])
        return answer(result, args["format"], f"actives-{args['interval']}")


@blp.route("/retention")
class Retention(MethodView):
    @require(*ANALYSTS)
    @blp.arguments(RetentionQueryArgsSchema, location="query")
    @blp.response(200, RetentionReadSchema)
    @CSV_ANSWER
    def get(self, args):
        """Retention of cohorts by first-seen day or week"""
        with analytics_session() as session:
            result = queries.retention(session, interval=args["interval"], start=args["start"], end=args["end"],
                                       offsets=args["offsets"], mode=args["mode"])
        return answer(result, args["format"], f"retention-{args['interval']}")


@blp.route("/funnels")
class Funnels(MethodView):
    @require(*ANALYSTS)
    @blp.arguments(FormatQueryArgsSchema, location="query")
    @blp.arguments(FunnelCreateSchema)
    @blp.response(200, FunnelReadSchema)
    @CSV_ANSWER
    def post(self, args, data):
        """Compute a funnel (ordered steps within a conversion window)"""
        steps = [queries.FunnelStep(name=s["name"], where=s["where"]) for s in data["steps"]]
        with analytics_session() as session:
            result = queries.funnel(session, steps=steps, start=data["start"], end=data["end"],
                                    window=timedelta(seconds=data["window_s"]), breakdown=data["breakdown"])
        return answer(result, args["format"], "funnel")


@blp.route("/event-counts")
class EventCounts(MethodView):
    @require(*ANALYSTS)
    @blp.arguments(EventCountsQueryArgsSchema, location="query")
    @blp.response(200, EventCountsReadSchema)
    @CSV_ANSWER
    def get(self, args):
        """Event counts per period, split by a property"""
        with analytics_session() as session:
            result = queries.event_counts(session, start=args["start"], end=args["end"], interval=args["interval"],
                                          names=args["names"], breakdown=args["breakdown"])
        return answer(result, args["format"], "event-counts")


@blp.route("/campaigns/<uuid:campaign_id>/attribution")
class CampaignAttribution(MethodView):
    @require(*ANALYSTS, "marketer")
    @blp.arguments(AttributionQueryArgsSchema, location="query")
    @blp.response(200, AttributionReadSchema)
    @CSV_ANSWER
    def get(self, args, campaign_id):
        """Push attribution per variant: delivered, opened, converted, lift over the holdout"""
        with analytics_session() as session:
            result = queries.attribution(session, campaign_id=campaign_id, event=args["event"],
                                         window=timedelta(seconds=args["window_s"]))
        return answer(result, args["format"], f"attribution-{campaign_id}")


blueprints = (blp,)
