"""The campaign builder (marketers; admins too; analysts read the list and stats).

draft (per-locale texts, deep link, image, category) → audience with a live estimate →
preview per locale and variant → test send to staff devices → schedule (now, a UTC
instant, or a wall-clock time in each recipient's zone, with the per-zone dry run) →
launch, pause, resume, cancel → live stats with charts. Every step calls the campaign
services the API runs, inside ``audited``.
"""
from __future__ import annotations

import uuid
from typing import Any

from flask import flash, jsonify, redirect, request, url_for
from flask_admin import expose
from marshmallow import ValidationError
from werkzeug.wrappers import Response

from admin import campaign_forms as forms
from admin.access import StaffView, console_action, console_form, current_actor
from admin.charts import bar_chart
from admin.dashboards import attribution_view, window_arg
from backend.audit.services import audited
from backend.common.errors import DomainError
from backend.common.pagination import paginate
from backend.extensions import db
from backend.notifications.campaigns import preview as campaign_preview
from backend.notifications.campaigns import services as campaigns
from backend.notifications.campaigns import stats as campaign_stats
from backend.notifications.campaigns.models import CAMPAIGN_STATUSES, CATEGORIES, Campaign

BUILDERS = frozenset({"marketer", "admin"})
READERS = BUILDERS | {"analyst"}
LIFECYCLE = {"launch": campaigns.launch_campaign, "pause": campaigns.pause_campaign,
             "resume": campaigns.resume_campaign, "cancel": campaigns.cancel_campaign}
_PAST = {"launch": "launched", "pause": "paused", "resume": "resumed", "cancel": "cancelled"}
_STATUS_ORDER = ("pending", "sending", "sent", "failed", "deferred", "capped", "expired", "suppressed",
                 "held_out", "cancelled", "unknown")


def _state(campaign_id: uuid.UUID) -> dict[str, Any] | None:
    """What a staff action changes on a campaign, for the audit log."""
    db.session.flush()
    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None:
        return None
    variants = campaigns.variants_of(db.session, campaign_id)
    return {"name": campaign.name, "status": campaign.status, "category": campaign.category,
            "audience": campaign.audience, "message": campaign.message, "schedule": campaign.schedule,
            "holdout_percent": campaign.holdout_percent, "expires_at": campaign.expires_at,
            "variants": [{"key": v.key, "weight": v.weight, "message_override": v.message_override}
                         for v in variants]}


class CampaignsView(StaffView):
    """Build, preview, test, schedule, run and watch push campaigns."""

    roles = READERS
    action_roles = {name: BUILDERS for name in ("create", "edit", "test_send", "schedule", *LIFECYCLE)}

    # -- reading --------------------------------------------------------------------------
    @expose("/")
    def index(self):  # noqa: ANN201 - Flask-Admin view
        status = request.args.get("status") if request.args.get("status") in CAMPAIGN_STATUSES else None
        try:
            page = paginate(db.session, campaigns.campaigns_query(status=status),
                            order=(Campaign.created_at, Campaign.id), cursor=request.args.get("cursor"), limit=50)
        except DomainError as exc:
            flash(exc.message, "error")
            return redirect(url_for(".index"))
        args = request.args.to_dict()
        next_url = url_for(".index", **{**args, "cursor": page.next_cursor}) if page.next_cursor else None
        return self.render("console/campaigns/list.html", campaigns=page.items, next_url=next_url, status=status,
                           statuses=CAMPAIGN_STATUSES)

    @expose("/<uuid:campaign_id>")
    def detail(self, campaign_id: uuid.UUID):  # noqa: ANN201 - Flask-Admin view
        try:
            campaign = campaigns.get_campaign(db.session, campaign_id=campaign_id)
        except DomainError as exc:
            flash(exc.message, "error")
            return redirect(url_for(".index"))
        dry_run = campaign_preview.dry_run(db.session, campaign_id=campaign_id)
        recipients = campaign_preview.test_recipients(db.session) if self.may("test_send") else []
        return self.render("console/campaigns/detail.html", campaign=campaign, dry_run=dry_run,
                           variants=campaigns.variants_of(db.session, campaign_id), recipients=recipients,
                           test_results=None)

    @expose("/<uuid:campaign_id>/stats")
    def stats(self, campaign_id: uuid.UUID):  # noqa: ANN201 - Flask-Admin view
        try:
            stats = campaign_stats.campaign_stats(db.session, campaign_id=campaign_id)
        except DomainError as exc:
            flash(exc.message, "error")
            return redirect(url_for(".index"))
        campaign = campaigns.get_campaign(db.session, campaign_id=campaign_id)
        event = request.args.get("event", "").strip()
        window = window_arg(72)
        shown = attribution_view(campaign_id, event, window) if event else None
        return self.render("console/campaigns/stats.html", campaign=campaign, stats=stats, charts=_charts(stats),
                           statuses=_STATUS_ORDER, live=campaign.status in ("scheduled", "running") and not event,
                           event=event, window_h=window.total_seconds() / 3600, shown=shown)

    @expose("/estimate")
    def estimate(self) -> Response:
        """The live audience estimate (JSON) for the builder's audience fields."""
        try:
            audience = forms.load_audience(request.args)
            category = request.args.get("category") if request.args.get("category") in CATEGORIES else "promotional"
            campaigns.validate_audience(audience)
            return jsonify(campaign_preview.estimate_audience(db.session, audience=audience, category=category))
        except ValidationError as exc:
            return jsonify(error="; ".join(forms.errors_text(exc))), 400
        except DomainError as exc:
            return jsonify(error=exc.message), 400

    # -- building -------------------------------------------------------------------------
    @expose("/new")
    @console_form("create")
    def new(self):  # noqa: ANN201 - Flask-Admin view
        return self.render("console/campaigns/form.html", values={"locale_0": "en", "default_locale": "en",
                                                                   "respect_quiet_hours": True}, errors=[],
                           campaign=None, categories=CATEGORIES, rows=forms)

    @expose("/new", methods=("POST",))
    @console_action("create")
    def create(self) -> Any:
        """Save a draft."""
        try:
            # The id is chosen here so the audit entry can name the draft it creates.
            new_id = uuid.uuid4()
            data = {**forms.campaign_from(request.form), "id": new_id}
            with audited(db.session, actor=current_actor(), action="campaign.create", object_type="campaign",
                         object_id=new_id, snapshot=lambda: _state(new_id)):
                campaign = campaigns.create_campaign(db.session, data=data, created_by=current_actor().user_id)
        except ValidationError as exc:
            return self._form_again(None, forms.errors_text(exc))
        except DomainError as exc:
            db.session.rollback()
            return self._form_again(None, [_domain_text(exc)])
        flash("Draft saved.", "success")
        return redirect(url_for(".detail", campaign_id=campaign.id))

    @expose("/<uuid:campaign_id>/edit")
    @console_form("edit")
    def edit_form(self, campaign_id: uuid.UUID):  # noqa: ANN201 - Flask-Admin view
        try:
            campaign = campaigns.get_campaign(db.session, campaign_id=campaign_id)
        except DomainError as exc:
            flash(exc.message, "error")
            return redirect(url_for(".index"))
        values = forms.form_values(campaign, campaigns.variants_of(db.session, campaign_id))
        return self.render("console/campaigns/form.html", values=values, errors=[], campaign=campaign,
                           categories=CATEGORIES, rows=forms)

    @expose("/<uuid:campaign_id>/edit", methods=("POST",))
    @console_action("edit")
    def edit(self, campaign_id: uuid.UUID) -> Any:
        """Change a draft (or a scheduled campaign before its first send)."""
        try:
            data = forms.campaign_from(request.form, partial=True)
            with audited(db.session, actor=current_actor(), action="campaign.edit", object_type="campaign",
                         object_id=campaign_id, snapshot=lambda: _state(campaign_id)):
                campaigns.update_campaign(db.session, campaign_id=campaign_id, data=data)
        except ValidationError as exc:
            return self._form_again(campaign_id, forms.errors_text(exc))
        except DomainError as exc:
            db.session.rollback()
            return self._form_again(campaign_id, [_domain_text(exc)])
        flash("Draft saved.", "success")
        return redirect(url_for(".detail", campaign_id=campaign_id))

    def _form_again(self, campaign_id: uuid.UUID | None, errors: list[str]) -> Any:
        campaign = campaigns.get_campaign(db.session, campaign_id=campaign_id) if campaign_id else None
        values = request.form.to_dict()
        values["platforms"] = request.form.getlist("platforms")
        values["respect_quiet_hours"] = request.form.get("respect_quiet_hours") == "on"
        return self.render("console/campaigns/form.html", values=values, errors=errors, campaign=campaign,
                           categories=CATEGORIES, rows=forms), 400

    # -- testing, scheduling, running -----------------------------------------------------
    @expose("/<uuid:campaign_id>/test-send", methods=("POST",))
    @console_action("test_send")
    def test_send(self, campaign_id: uuid.UUID) -> Any:
        """Send the campaign now to the chosen staff accounts' devices, marked as a test."""
        allowed = {row.id for row in campaign_preview.test_recipients(db.session)}
        chosen = [uid for uid in _uuids(request.form.getlist("user_id")) if uid in allowed]
        if not chosen:
            flash("Choose at least one staff account with a device.", "warning")
            return redirect(url_for(".detail", campaign_id=campaign_id))
        variant = request.form.get("variant") or None
        try:
            result = campaign_preview.test_send(db.session, campaign_id=campaign_id, user_ids=chosen,
                                                variant=variant)
            db.session.commit()  # the outbox provider records in this transaction
        except DomainError as exc:
            db.session.rollback()
            flash(_domain_text(exc), "error")
            return redirect(url_for(".detail", campaign_id=campaign_id))
        from backend.audit.services import record

        record(db.session, actor=current_actor(), action="campaign.test_send", object_type="campaign",
               object_id=campaign_id, after={"variant": variant, "user_ids": chosen,
                                             "outcomes": [r["outcome"] for r in result["results"]]})
        campaign = campaigns.get_campaign(db.session, campaign_id=campaign_id)
        return self.render("console/campaigns/detail.html", campaign=campaign,
                           dry_run=campaign_preview.dry_run(db.session, campaign_id=campaign_id),
                           variants=campaigns.variants_of(db.session, campaign_id),
                           recipients=campaign_preview.test_recipients(db.session), test_results=result)

    @expose("/<uuid:campaign_id>/schedule", methods=("POST",))
    @console_action("schedule")
    def schedule(self, campaign_id: uuid.UUID) -> Response:
        """Set the draft's schedule; the page then shows the per-zone dry run for it."""
        try:
            schedule = forms.schedule_from(request.form)
            with audited(db.session, actor=current_actor(), action="campaign.schedule", object_type="campaign",
                         object_id=campaign_id, snapshot=lambda: _state(campaign_id)):
                campaigns.update_campaign(db.session, campaign_id=campaign_id, data={"schedule": schedule})
        except ValidationError as exc:
            flash("; ".join(forms.errors_text(exc)), "error")
        except DomainError as exc:
            db.session.rollback()
            flash(_domain_text(exc), "error")
        else:
            flash("Schedule saved: check the per-zone times below, then launch.", "success")
        return redirect(url_for(".detail", campaign_id=campaign_id) + "#schedule")

    def _lifecycle(self, verb: str, campaign_id: uuid.UUID) -> Response:
        try:
            with audited(db.session, actor=current_actor(), action=f"campaign.{verb}", object_type="campaign",
                         object_id=campaign_id, snapshot=lambda: _state(campaign_id)):
                LIFECYCLE[verb](db.session, campaign_id=campaign_id)
        except DomainError as exc:
            db.session.rollback()
            flash(_domain_text(exc), "error")
            return redirect(url_for(".detail", campaign_id=campaign_id))
        flash(f"Campaign {_PAST[verb]}.", "success")
        return redirect(url_for(".stats" if verb != "cancel" else ".detail", campaign_id=campaign_id))

    @expose("/<uuid:campaign_id>/launch", methods=("POST",))
    @console_action("launch")
    def launch(self, campaign_id: uuid.UUID) -> Response:
        """Launch with the saved schedule."""
        return self._lifecycle("launch", campaign_id)

    @expose("/<uuid:campaign_id>/pause", methods=("POST",))
    @console_action("pause")
    def pause(self, campaign_id: uuid.UUID) -> Response:
        """Pause sending."""
        return self._lifecycle("pause", campaign_id)

    @expose("/<uuid:campaign_id>/resume", methods=("POST",))
    @console_action("resume")
    def resume(self, campaign_id: uuid.UUID) -> Response:
        """Resume a paused campaign."""
        return self._lifecycle("resume", campaign_id)

    @expose("/<uuid:campaign_id>/cancel", methods=("POST",))
    @console_action("cancel")
    def cancel(self, campaign_id: uuid.UUID) -> Response:
        """Cancel for good."""
        return self._lifecycle("cancel", campaign_id)


def _uuids(raw: list[str]) -> list[uuid.UUID]:
    out = []
    for value in raw[:20]:
        try:
            out.append(uuid.UUID(value))
        except ValueError:
            continue
    return out


def _domain_text(exc: DomainError) -> str:
    field = (exc.details or {}).get("field")
    return f"{field}: {exc.message}" if field else exc.message


def _charts(stats: dict[str, Any]) -> dict[str, str]:
    """Delivery by status, by variant and by zone."""
    totals = stats["totals"]
    shown = [s for s in _STATUS_ORDER if totals.get(s)]
    charts = {"status": bar_chart("Deliveries by status", shown or ["none"],
                                  {"devices": [totals.get(s, 0) for s in shown] or [0]})}
    variants = stats["by_variant"]
    if variants:
        labels = [v["variant"] for v in variants]
        charts["variants"] = bar_chart("By variant", labels, {
            "sent": [v["sent"] for v in variants], "failed": [v["failed"] for v in variants],
            "deferred / capped": [v["deferred"] + v["capped"] for v in variants],
            "opened (users)": [v["opened_users"] for v in variants]})
    zones = stats["by_time_zone"][:30]
    if zones:
        charts["zones"] = bar_chart("By recipient time zone", [z["time_zone"] for z in zones], {
            "targeted": [z["targeted"] for z in zones], "sent": [z["sent"] for z in zones],
            "opened": [z["opened"] for z in zones]})
    return charts
