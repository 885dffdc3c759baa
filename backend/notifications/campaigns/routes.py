"""Campaign routes under /v1/campaigns: marketers build and run them, analysts read them."""
from __future__ import annotations

import uuid
from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from backend.common.access import current_principal, require
from backend.common.idempotency import idempotent
from backend.common.openapi import answers
from backend.common.pagination import page_schema, paginate
from backend.extensions import db
from backend.notifications.campaigns import preview, services, stats
from backend.notifications.campaigns.models import Campaign
from backend.notifications.campaigns.schemas import (
    CampaignCreateSchema,
    CampaignLaunchSchema,
    CampaignQueryArgsSchema,
    CampaignReadSchema,
    CampaignTestSendReadSchema,
    CampaignTestSendSchema,
    CampaignUpdateSchema,
    DryRunReadSchema,
    StatsReadSchema,
)

blp = Blueprint("campaigns", __name__, url_prefix="/v1/campaigns", description="Push campaigns")


def _read(campaign: Campaign) -> dict[str, Any]:
    """The campaign with its variants, as CampaignReadSchema expects."""
    variants = services.variants_of(db.session, campaign.id)
    fields = {column.key: getattr(campaign, column.key) for column in Campaign.__table__.columns}
    return {**fields, "variants": [
        {"key": v.key, "weight": v.weight, "message_override": v.message_override} for v in variants]}


@blp.route("")
class Campaigns(MethodView):
    @require("marketer", "analyst")
    @blp.arguments(CampaignQueryArgsSchema, location="query")
    @blp.response(200, page_schema(CampaignReadSchema))
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List campaigns (team-wide), newest first"""
        page = paginate(db.session, services.campaigns_query(status=args.get("status")),
                        order=(Campaign.created_at, Campaign.id), cursor=args["cursor"], limit=args["limit"])
        page.items = [_read(c) for c in page.items]
        return page.as_response()

    @require("marketer")
    @idempotent
    @blp.arguments(CampaignCreateSchema)
    @blp.response(201, CampaignReadSchema)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Create a draft campaign"""
        campaign = services.create_campaign(db.session, data=data, created_by=current_principal().user_id)
        return _read(campaign)


@blp.route("/<uuid:campaign_id>")
class CampaignItem(MethodView):
    @require("marketer", "analyst")
    @blp.response(200, CampaignReadSchema)
    def get(self, campaign_id: uuid.UUID) -> dict[str, Any]:
        """Read a campaign"""
        return _read(services.get_campaign(db.session, campaign_id=campaign_id))

    @require("marketer")
    @blp.arguments(CampaignUpdateSchema)
    @blp.response(200, CampaignReadSchema)
    @answers(409)
    def patch(self, data: dict[str, Any], campaign_id: uuid.UUID) -> dict[str, Any]:
        """Edit a draft, or a scheduled campaign before its first send"""
        return _read(services.update_campaign(db.session, campaign_id=campaign_id, data=data))


@blp.route("/<uuid:campaign_id>/dry-run")
class CampaignDryRun(MethodView):
    @require("marketer")
    @blp.response(200, DryRunReadSchema)
    def post(self, campaign_id: uuid.UUID) -> dict[str, Any]:
        """Audience size per time zone (with due instants), per variant and holdout, with sample messages"""
        return preview.dry_run(db.session, campaign_id=campaign_id)


@blp.route("/<uuid:campaign_id>/test-send")
class CampaignTestSend(MethodView):
    @require("marketer")
    @blp.arguments(CampaignTestSendSchema)
    @blp.response(200, CampaignTestSendReadSchema)
    def post(self, data: dict[str, Any], campaign_id: uuid.UUID) -> dict[str, Any]:
        """Send the campaign now to listed users, marked as a test (not counted in stats)"""
        return preview.test_send(db.session, campaign_id=campaign_id, user_ids=data["user_ids"],
                                          variant=data.get("variant"))


@blp.route("/<uuid:campaign_id>/launch")
class CampaignLaunch(MethodView):
    @require("marketer")
    @blp.arguments(CampaignLaunchSchema)
    @blp.response(200, CampaignReadSchema)
    @answers(409)
    def post(self, data: dict[str, Any], campaign_id: uuid.UUID) -> dict[str, Any]:
        """Launch: now, at a UTC instant, or at a wall-clock time in each recipient's zone"""
        return _read(services.launch_campaign(db.session, campaign_id=campaign_id, schedule=data.get("schedule")))


@blp.route("/<uuid:campaign_id>/pause")
class CampaignPause(MethodView):
    @require("marketer")
    @blp.response(200, CampaignReadSchema)
    @answers(409)
    def post(self, campaign_id: uuid.UUID) -> dict[str, Any]:
        """Pause sending (resumable)"""
        return _read(services.pause_campaign(db.session, campaign_id=campaign_id))


@blp.route("/<uuid:campaign_id>/resume")
class CampaignResume(MethodView):
    @require("marketer")
    @blp.response(200, CampaignReadSchema)
    @answers(409)
    def post(self, campaign_id: uuid.UUID) -> dict[str, Any]:
        """Resume a paused campaign"""
        return _read(services.resume_campaign(db.session, campaign_id=campaign_id))


@blp.route("/<uuid:campaign_id>/cancel")
class CampaignCancel(MethodView):
    @require("marketer")
    @blp.response(200, CampaignReadSchema)
    @answers(409)
    def post(self, campaign_id: uuid.UUID) -> dict[str, Any]:
        """Cancel: waiting deliveries are marked cancelled"""
        return _read(services.cancel_campaign(db.session, campaign_id=campaign_id))


@blp.route("/<uuid:campaign_id>/stats")
class CampaignStats(MethodView):
    @require("marketer", "analyst")
    @blp.response(200, StatsReadSchema)
    def get(self, campaign_id: uuid.UUID) -> dict[str, Any]:
        """Delivery stats per variant and time zone, opens, and the A/B verdict"""
        return stats.campaign_stats(db.session, campaign_id=campaign_id)
