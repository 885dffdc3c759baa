"""Reports in, decisions out: the moderation use cases (the console calls these too).

Each use case commits once. Decisions take the acting staff member's id; the callers
(API routes, console views) write the audit log entry around the call.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from backend.auth.models import User
from backend.common.db import utcnow
from backend.common.errors import NotFound, ValidationFailed
from backend.common.jobs import enqueue_after_commit
from backend.media.delivery import viewable_media
from backend.media.models import Media
from backend.media.moderation.models import ModerationAction, ModerationCase, ModerationReport
from backend.media.storage import get_storage


class CaseNotFound(NotFound):
    code = "case_not_found"


@dataclass(frozen=True)
class CaseDetail:
    """A case with its reports, its action log and what it is about."""

    case: ModerationCase
    reports: list[ModerationReport]
    actions: list[ModerationAction]
    target: dict[str, Any]


def _case_for(session: Session, *, target_type: str, target_id: uuid.UUID, subject_user_id: uuid.UUID,
              reason: str) -> ModerationCase:
    """The target's open case, opened now if there is none (safe against a concurrent opener)."""
    now = utcnow()
    session.execute(insert(ModerationCase).values(
        id=uuid.uuid4(), target_type=target_type, target_id=target_id, subject_user_id=subject_user_id,
        reason=reason, opened_at=now).on_conflict_do_nothing(
        index_elements=["target_type", "target_id"], index_where=ModerationCase.status == "open"))
    return session.scalars(select(ModerationCase).where(
        ModerationCase.target_type == target_type, ModerationCase.target_id == target_id,
        ModerationCase.status == "open").with_for_update()).one()


def _add_report(session: Session, case: ModerationCase, *, reporter_id: uuid.UUID, reason: str,
                note: str | None) -> ModerationReport:
    inserted = session.execute(insert(ModerationReport).values(
        id=uuid.uuid4(), case_id=case.id, reporter_id=reporter_id, reason=reason, note=(note or None),
        created_at=utcnow()).on_conflict_do_nothing(index_elements=["case_id", "reporter_id"])
        .returning(ModerationReport.id)).scalar()
    if inserted is not None:  # a reporter counts once per case
        case.report_count += 1
        case.last_reported_at = utcnow()
    report = session.scalars(select(ModerationReport).where(
        ModerationReport.case_id == case.id, ModerationReport.reporter_id == reporter_id)).one()
    session.commit()
    return report


def report_media(session: Session, *, reporter_id: uuid.UUID, media_id: uuid.UUID, reason: str,
                 note: str | None = None) -> ModerationReport:
    """Report media the reporter can see; repeated reports by one user count once (commits)."""
    media = viewable_media(session, viewer_id=reporter_id, media_id=media_id)
    case = _case_for(session, target_type="media", target_id=media.id, subject_user_id=media.owner_id, reason=reason)
    return _add_report(session, case, reporter_id=reporter_id, reason=reason, note=note)


def report_user(session: Session, *, reporter_id: uuid.UUID, user_id: uuid.UUID, reason: str,
                note: str | None = None) -> ModerationReport:
    """Report another user's account (commits)."""
    if user_id == reporter_id:
        raise ValidationFailed("You cannot report yourself.", code="cannot_report_self")
    user = session.get(User, user_id)
    if user is None or user.status == "pending_deletion":
        raise NotFound("No such user.", code="user_not_found")
    case = _case_for(session, target_type="user", target_id=user.id, subject_user_id=user.id, reason=reason)
    return _add_report(session, case, reporter_id=reporter_id, reason=reason, note=note)


def open_quarantine_case(session: Session, *, media: Media) -> None:
    """Put a quarantined upload in the queue (no commit: the completing transaction)."""
    case = _case_for(session, target_type="media", target_id=media.id, subject_user_id=media.owner_id,
                     reason="other")
    session.add(ModerationAction(case_id=case.id, action="quarantine", note="held for review by policy",
                                 at=utcnow()))


def cases_query(*, status: str | None = "open", target_type: str | None = None) -> Select:
    """Cases to work on (paginate oldest first)."""
    stmt = select(ModerationCase)
    if status:
        stmt = stmt.where(ModerationCase.status == status)
    if target_type:
        stmt = stmt.where(ModerationCase.target_type == target_type)
    return stmt


def _load_case(session: Session, case_id: uuid.UUID, *, lock: bool = False) -> ModerationCase:
    stmt = select(ModerationCase).where(ModerationCase.id == case_id)
    case = session.scalar(stmt.with_for_update() if lock else stmt)
    if case is None:
        raise CaseNotFound("No such case.")
    return case


def case_detail(session: Session, *, case_id: uuid.UUID) -> CaseDetail:
    """A case, its reports (oldest first), its action log and a summary of the target."""
    case = _load_case(session, case_id)
    reports = list(session.scalars(select(ModerationReport).where(ModerationReport.case_id == case.id)
                                   .order_by(ModerationReport.created_at, ModerationReport.id)))
    actions = list(session.scalars(select(ModerationAction).where(ModerationAction.case_id == case.id)
                                   .order_by(ModerationAction.id)))
    return CaseDetail(case=case, reports=reports, actions=actions, target=_target_summary(session, case))


def _target_summary(session: Session, case: ModerationCase) -> dict[str, Any]:
    if case.target_type == "media":
        media = session.get(Media, case.target_id)
        if media is None:
            return {"exists": False}
        urls = staff_preview(media)
        return {"exists": True, "kind": media.kind, "status": media.status, "moderation": media.moderation,
                "owner_id": str(media.owner_id), "preview_urls": urls}
    user = session.get(User, case.target_id)
    if user is None:
        return {"exists": False}
    return {"exists": True, "status": user.status, "display_name": user.display_name, "role": user.role}


def staff_preview(media: Media) -> dict[str, str]:
    """Short-lived URLs of the variants for a moderator, whatever the moderation state."""
    store = get_storage()
    return {name: store.presign_get(v["key"], expires_s=300, content_type=v.get("content_type"))
            for name, v in (media.variants or {}).items() if v.get("deliver", True) is not False}


def add_note(session: Session, *, case_id: uuid.UUID, actor_id: uuid.UUID | None, note: str) -> ModerationAction:
    """Append a staff note to a case (commits)."""
    case = _load_case(session, case_id)
    action = ModerationAction(case_id=case.id, actor_id=actor_id, action="note", note=note, at=utcnow())
    session.add(action)
    session.commit()
    return action


def decide(session: Session, *, case_id: uuid.UUID, actor_id: uuid.UUID | None, decision: str,
           note: str | None = None) -> ModerationCase:
    """Apply a decision to the case's target, close the case, log who and when (commits)."""
    case = _load_case(session, case_id, lock=True)
    if case.target_type == "media":
        _apply_to_media(session, case, decision)
    else:
        _apply_to_user(case, decision)
    case.status, case.decision, case.decided_by, case.decided_at = "closed", decision, actor_id, utcnow()
    session.add(ModerationAction(case_id=case.id, actor_id=actor_id, action=decision, note=note, at=utcnow()))
    session.commit()
    return case


def _apply_to_media(session: Session, case: ModerationCase, decision: str) -> None:
    media = session.scalar(select(Media).where(Media.id == case.target_id).with_for_update())
    if media is None and decision in ("remove", "restore"):
        raise ValidationFailed("The media no longer exists.", code="target_gone")
    if media is not None and decision in ("remove", "ban"):
        withdraw(session, media=media)
    elif media is not None and decision in ("dismiss", "restore"):
        reinstate(session, media=media)
    if decision in ("warn", "ban"):
        _act_on_account(case.subject_user_id, decision, about="something you posted")


def withdraw(session: Session, *, media: Media) -> None:
    """Stop serving now: no more URLs, and the made variants are deleted (the original is kept)."""
    media.moderation = "removed"
    store = get_storage()
    for variant in (media.variants or {}).values():
        store.delete_prefix(variant["key"])
    # Parts a variant names only through its playlist (HLS segments) go by prefix, after commit.
    enqueue_after_commit(session, "jobs.media.withdraw_media_objects", queue="media", media_id=str(media.id))


def reinstate(session: Session, *, media: Media) -> None:
    """Serve again: approved; a removed item is made again from its original."""
    was_removed = media.moderation == "removed"
    media.moderation = "approved"
    if was_removed and media.status == "ready":
        media.status, media.progress, media.attempts = "pending", 0, 0
        enqueue_after_commit(session, "jobs.media.process_media", queue="media",
                             job_id=f"media-reprocess-{media.id}-{uuid.uuid4().hex[:8]}", media_id=str(media.id))


def _apply_to_user(case: ModerationCase, decision: str) -> None:
    if decision == "remove":
        raise ValidationFailed("Accounts are banned, not removed.", code="decision_not_applicable")
    if decision == "restore":
        from backend.auth.accounts import reinstate_account

        reinstate_account(user_id=case.target_id)
    elif decision in ("warn", "ban"):
        _act_on_account(case.target_id, decision, about="your account")


def _act_on_account(user_id: uuid.UUID, decision: str, *, about: str) -> None:
    """Ban (suspend: every session ends) or warn (a notice by mail) the account."""
    from backend.auth.accounts import suspend_account
    from backend.auth.links.emails import send_notice

    if decision == "ban":
        suspend_account(user_id=user_id, reason="banned by moderation")
        return
    from backend.extensions import db

    user = db.session.get(User, user_id)
    if user is not None and user.email:
        send_notice(user.email, "A warning from our moderators",
                    f"Our moderators reviewed a report about {about} and issued a warning. "
                    "Repeated violations can lead to removal or suspension.")
