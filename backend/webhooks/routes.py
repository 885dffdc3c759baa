"""Webhook endpoints under /v1/webhooks (admins or a server API key) and their delivery logs."""
from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from backend.common.access import current_principal, server_key
from backend.common.pagination import PageQueryArgsSchema, page_schema, paginate
from backend.extensions import db
from backend.webhooks import services
from backend.webhooks.models import WebhookDelivery, WebhookEndpoint
from backend.webhooks.schemas import (
    EndpointCreateSchema,
    EndpointReadSchema,
    EndpointSecretReadSchema,
    EndpointUpdateSchema,
    WebhookDeliveryQueryArgsSchema,
    WebhookDeliveryReadSchema,
)

blp = Blueprint("webhooks", __name__, url_prefix="/v1/webhooks",
                description="Signed callbacks to your servers: endpoints, secrets, delivery logs")


@blp.route("/endpoints")
class Endpoints(MethodView):
    @server_key()
    @blp.arguments(PageQueryArgsSchema, location="query")
    @blp.response(200, page_schema(EndpointReadSchema))
    def get(self, args):
        """Every webhook endpoint"""
        return paginate(db.session, services.endpoints_query(), order=(WebhookEndpoint.created_at, WebhookEndpoint.id),
                        cursor=args["cursor"], limit=args["limit"]).as_response()

    @server_key()
    @blp.arguments(EndpointCreateSchema)
    @blp.response(201, EndpointSecretReadSchema)
    def post(self, data):
        """Add an endpoint; the answer carries its signing secret (shown this once)"""
        principal = current_principal()
        return services.create_endpoint(db.session, created_by=principal.user_id, **data)


@blp.route("/endpoints/<uuid:endpoint_id>")
class EndpointResource(MethodView):
    @server_key()
    @blp.response(200, EndpointReadSchema)
    def get(self, endpoint_id):
        """One endpoint"""
        return services.get_endpoint(db.session, endpoint_id=endpoint_id)

    @server_key()
    @blp.arguments(EndpointUpdateSchema)
    @blp.response(200, EndpointReadSchema)
    def patch(self, data, endpoint_id):
        """Change the URL, event types, description, or switch it off"""
        return services.update_endpoint(db.session, endpoint_id=endpoint_id, **data)

    @server_key()
    @blp.response(204)
    def delete(self, endpoint_id):
        """Remove an endpoint and its delivery log"""
        services.delete_endpoint(db.session, endpoint_id=endpoint_id)


@blp.route("/endpoints/<uuid:endpoint_id>/secret")
class EndpointSecret(MethodView):
    @server_key()
    @blp.response(200, EndpointSecretReadSchema)
    def post(self, endpoint_id):
        """Rotate the signing secret"""
        return services.rotate_secret(db.session, endpoint_id=endpoint_id)


@blp.route("/endpoints/<uuid:endpoint_id>/test")
class EndpointTest(MethodView):
    @server_key()
    @blp.response(202, WebhookDeliveryReadSchema)
    def post(self, endpoint_id):
        """Send a webhook.test event to this endpoint"""
        return services.send_test_event(db.session, endpoint_id=endpoint_id)


@blp.route("/deliveries")
class Deliveries(MethodView):
    @server_key()
    @blp.arguments(WebhookDeliveryQueryArgsSchema, location="query")
    @blp.response(200, page_schema(WebhookDeliveryReadSchema))
    def get(self, args):
        """The delivery log, newest first (one endpoint's with ?endpoint_id=)"""
        stmt = services.deliveries_query(endpoint_id=args["endpoint_id"], status=args["status"])
        return paginate(db.session, stmt, order=(WebhookDelivery.created_at, WebhookDelivery.id),
                        cursor=args["cursor"], limit=args["limit"]).as_response()


blueprints = [blp]
