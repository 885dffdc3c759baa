"""Push routes under /v1/notifications: devices, preferences, topics, inbox, transactional sends."""
from __future__ import annotations

import uuid

from flask import current_app, redirect, request
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import select

from backend.common.access import current_principal, require, server_key
from backend.common.errors import Misdirected, ValidationFailed
from backend.common.idempotency import idempotent
from backend.common.openapi import answers
from backend.common.pagination import PageQueryArgsSchema, page_schema, paginate
from backend.extensions import db
from backend.notifications import devices, inbox, preferences, topics, transactional
from backend.notifications.campaigns import routes as campaign_routes
from backend.notifications.models import Device, Notification, QuietHours, TopicSubscription
from backend.notifications.schemas import (
    INSTALLATION_ID,
    DeviceReadSchema,
    DeviceUpdateSchema,
    MarkedReadSchema,
    NotificationQueryArgsSchema,
    NotificationReadSchema,
    NotificationSendCreateSchema,
    NotificationSendReadSchema,
    PreferencesReadSchema,
    PreferencesUpdateSchema,
    StreamTicketReadSchema,
    TopicReadSchema,
    UnreadCountReadSchema,
)
from backend.streams import tickets

blp = Blueprint("notifications", __name__, url_prefix="/v1/notifications",
                description="Devices, preferences, topics, the in-app inbox and transactional pushes")


def _me() -> uuid.UUID:
    return uuid.UUID(str(current_principal().user_id))


def _installation(installation_id: str) -> str:
    if not INSTALLATION_ID.fullmatch(installation_id):
        raise ValidationFailed("installation_id is 8-128 characters of A-Z a-z 0-9 . _ : -",
                               code="invalid_installation_id")
    return installation_id


@blp.route("/devices")
class Devices(MethodView):
    @require()
    @blp.arguments(PageQueryArgsSchema, location="query")
    @blp.response(200, page_schema(DeviceReadSchema))
    def get(self, args):
        """List my devices"""
        stmt = select(Device).where(Device.user_id == _me())
        return paginate(db.session, stmt, order=(Device.last_seen_at, Device.id),
                        cursor=args["cursor"], limit=args["limit"]).as_response()


@blp.route("/devices/<string:installation_id>")
class DeviceResource(MethodView):
    @require()
    @blp.arguments(DeviceUpdateSchema)
    @blp.response(200, DeviceReadSchema)
    def put(self, data, installation_id):
        """Register or refresh this device (call on every app open)"""
        return devices.register_device(db.session, user_id=_me(), installation_id=_installation(installation_id),
                                       info=devices.DeviceInfo(**data))

    @require()
    @blp.response(204)
    def delete(self, installation_id):
        """Forget this device (on sign-out)"""
        devices.unregister_device(db.session, user_id=_me(), installation_id=installation_id)


def _preferences(user_id: uuid.UUID) -> dict:
    quiet = db.session.get(QuietHours, user_id)
    return {
        "categories": preferences.get_preferences(db.session, user_id=user_id),
        "quiet_hours": None if quiet is None else {
            "start": quiet.start_local, "end": quiet.end_local, "time_zone": quiet.time_zone},
    }


@blp.route("/preferences")
class Preferences(MethodView):
    @require()
    @blp.response(200, PreferencesReadSchema)
    def get(self):
        """My categories and quiet hours"""
        return _preferences(_me())

    @require()
    @blp.arguments(PreferencesUpdateSchema)
    @blp.response(200, PreferencesReadSchema)
    def put(self, data):
        """Change categories and/or quiet hours"""
        user_id = _me()
        preferences.set_preferences(db.session, user_id=user_id, categories=data.get("categories", {}))
        if "quiet_hours" in data:
            quiet = data["quiet_hours"] or {"start": None, "end": None, "time_zone": None}
            preferences.set_quiet_hours(db.session, user_id=user_id, start=quiet["start"], end=quiet["end"],
                                        time_zone=quiet["time_zone"])
        db.session.commit()
        return _preferences(user_id)


@blp.route("/topics")
class Topics(MethodView):
    @require()
    @blp.arguments(PageQueryArgsSchema, location="query")
    @blp.response(200, page_schema(TopicReadSchema))
    def get(self, args):
        """Topics I follow"""
        return paginate(db.session, topics.subscriptions_query(user_id=_me()),
                        order=(TopicSubscription.created_at, TopicSubscription.topic_id),
                        cursor=args["cursor"], limit=args["limit"]).as_response()


@blp.route("/topics/<string:name>")
class TopicResource(MethodView):
    @require()
    @blp.response(204)
    @answers(409, 422)
    def put(self, name):
        """Follow a topic"""
        topics.subscribe(db.session, user_id=_me(), name=name)

    @require()
    @blp.response(204)
    @answers(422)
    def delete(self, name):
        """Stop following a topic"""
        topics.unsubscribe(db.session, user_id=_me(), name=name)


@blp.route("/inbox")
class Inbox(MethodView):
    @require()
    @blp.arguments(NotificationQueryArgsSchema, location="query")
    @blp.response(200, page_schema(NotificationReadSchema))
    def get(self, args):
        """My inbox, newest first"""
        stmt = inbox.inbox_query(user_id=_me(), unread_only=args["unread"])
        return paginate(db.session, stmt, order=(Notification.created_at, Notification.id),
                        cursor=args["cursor"], limit=args["limit"]).as_response()


@blp.route("/inbox/unread-count")
class UnreadCount(MethodView):
    @require()
    @blp.response(200, UnreadCountReadSchema)
    def get(self):
        """How many entries I have not read"""
        return {"unread": inbox.unread_count(db.session, user_id=_me())}


@blp.route("/inbox/read-all")
class ReadAll(MethodView):
    @require()
    @blp.response(200, MarkedReadSchema)
    def post(self):
        """Mark every entry read"""
        return {"marked": inbox.mark_all_read(db.session, user_id=_me())}


@blp.route("/inbox/stream")
class InboxStream(MethodView):
    @require()
    @blp.doc(responses={"200": {"description": "text/event-stream of `notification` events, served by the stream "
                                              "server (nginx routes this path there; see the README)",
                                "content": {"text/event-stream": {"schema": {"type": "string"}}}}})
    @blp.alt_response(307, description="reached the API instead of the stream server: to STREAM_PUBLIC_URL "
                                       "(set by `make run`), query string kept")
    @answers(421)  # reached the API, no STREAM_PUBLIC_URL: `stream_server_elsewhere` (route it to the stream server)
    def get(self):
        """New inbox entries as server-sent events (resume with Last-Event-ID)"""
        # Held here, a stream would occupy a web thread for its whole life (issue 12).
        base = current_app.config["STREAM_PUBLIC_URL"]
        if not base:
            raise Misdirected("The inbox stream is served by the stream server; this address does not "
                                     "route to it.", code="stream_server_elsewhere")
        return redirect(base.rstrip("/") + request.full_path.rstrip("?"), 307)


@blp.route("/inbox/stream-ticket")
class InboxStreamTicket(MethodView):
    @require()
    @blp.response(201, StreamTicketReadSchema)
    def post(self):
        """A browser stream ticket: opens the inbox stream once, within seconds (EventSource sends no header)"""
        claims = current_principal().claims
        minted = tickets.mint_ticket(user_id=claims["sub"], session_id=claims["sid"], token_version=claims["ver"])
        body = {**minted, "stream_url": f"{blp.url_prefix}/inbox/stream?ticket={minted['ticket']}"}
        return body, {"Cache-Control": "no-store", "Pragma": "no-cache"}  # a credential, however brief


@blp.route("/<uuid:notification_id>/read")
class MarkRead(MethodView):
    @require()
    @blp.response(200, NotificationReadSchema)
    def post(self, notification_id):
        """Mark one entry read"""
        return inbox.mark_read(db.session, user_id=_me(), notification_id=notification_id)


@blp.route("/<uuid:notification_id>/opened")
class Opened(MethodView):
    @require()
    @blp.response(200, NotificationReadSchema)
    def post(self, notification_id):
        """Report that a push was tapped (idempotent; the first time counts)"""
        return inbox.record_open(db.session, user_id=_me(), notification_id=notification_id)


@blp.route("/send")
class Send(MethodView):
    @server_key("marketer")
    @idempotent
    @blp.arguments(NotificationSendCreateSchema)
    @blp.response(202, NotificationSendReadSchema)
    @answers(404)
    def post(self, data):
        """Send a transactional push to a user or a topic now (server API key or staff)"""
        target_user, topic = data.pop("user_id"), data.pop("topic")
        content = transactional.PushContent(**data)
        if target_user is not None:
            return transactional.send_to_user(db.session, user_id=target_user, content=content)
        return transactional.send_to_topic(db.session, name=topic, content=content)


# The campaigns API (campaigns/routes.py) is registered with the inbox routes.
blueprints = [blp, campaign_routes.blp]
