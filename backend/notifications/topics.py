"""Topics: named interests users follow; a send to a topic reaches every follower."""
from __future__ import annotations

import re
import uuid

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from backend.common.errors import Conflict, NotFound, ValidationFailed
from backend.notifications.models import Topic, TopicSubscription

# FCM's own topic alphabet, lower-cased and bounded, so names stay portable.
TOPIC_NAME = re.compile(r"^[a-z0-9][a-z0-9_.~%-]{0,63}$")
MAX_SUBSCRIPTIONS_PER_USER = 200


def validate_topic_name(name: str) -> str:
    """The name, or a 422 when it is not 1-64 of a-z 0-9 - _ . ~ % starting with a letter or digit."""
    if not TOPIC_NAME.fullmatch(name):
        raise ValidationFailed(
            "Topic names are 1-64 characters of a-z, 0-9, '-', '_', '.', '~', '%', starting with a letter or digit.",
            code="invalid_topic_name", details={"name": name[:100]},
        )
    return name


def subscribe(session: Session, *, user_id: uuid.UUID, name: str) -> Topic:
    """Follow a topic (created on first use); following twice is a no-op."""
    validate_topic_name(name)
    session.execute(insert(Topic).values(id=uuid.uuid4(), name=name).on_conflict_do_nothing(index_elements=["name"]))
    topic = session.scalar(select(Topic).where(Topic.name == name))
    assert topic is not None
    already = session.get(TopicSubscription, (topic.id, user_id))
    if already is None:
        count = session.scalar(
            select(TopicSubscription.topic_id).where(TopicSubscription.user_id == user_id)
            .offset(MAX_SUBSCRIPTIONS_PER_USER - 1).limit(1)
        )
        if count is not None:
            raise Conflict(f"At most {MAX_SUBSCRIPTIONS_PER_USER} topics per user.", code="too_many_topics")
        session.execute(insert(TopicSubscription).values(topic_id=topic.id, user_id=user_id)
                        .on_conflict_do_nothing())
    session.commit()
    return topic


def unsubscribe(session: Session, *, user_id: uuid.UUID, name: str) -> None:
    """Stop following a topic; not following it is a 404."""
    validate_topic_name(name)
    topic_id = session.scalar(select(Topic.id).where(Topic.name == name))
    result = session.execute(delete(TopicSubscription).where(
        TopicSubscription.topic_id == topic_id, TopicSubscription.user_id == user_id))
    if not result.rowcount:
        raise NotFound("You do not follow this topic.", code="topic_not_subscribed")
    session.commit()


def subscriptions_query(*, user_id: uuid.UUID):  # noqa: ANN201 - a Select for paginate()
    """The topics a user follows (for cursor pagination by subscription time)."""
    return select(TopicSubscription).where(TopicSubscription.user_id == user_id)


def follower_ids(session: Session, *, name: str) -> list[uuid.UUID]:
    """Every user following the topic (empty when it does not exist)."""
    stmt = select(TopicSubscription.user_id).join(Topic, Topic.id == TopicSubscription.topic_id).where(
        Topic.name == name)
    return list(session.scalars(stmt))
