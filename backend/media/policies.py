"""Per-kind upload policies: which types (judged from the bytes), how large, what is made.

The defaults below can be changed per kind with MEDIA_POLICIES (JSON, e.g.
``{"photo": {"max_bytes": 20000000, "quarantine": true}}``); unknown keys are refused
at startup by ``load_policies``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace
from typing import Any

from backend.common.errors import ValidationFailed

IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp", "image/gif")
VIDEO_TYPES = ("video/mp4", "video/quicktime", "video/webm")
MiB = 1024 * 1024


@dataclass(frozen=True)
class KindPolicy:
    """What one kind of media may be and what is made from it."""

    kind: str
    family: str  # "image" or "video": which processor runs
    content_types: tuple[str, ...]
    max_bytes: int
    presets: tuple[str, ...] = ()
    max_pixels: int = 50_000_000  # decompression bombs: as Supabase configures imgproxy
    max_frames: int = 60
    max_duration_s: float = 600.0
    max_dimension: int = 4096
    quarantine: bool = False  # held from serving until a moderator approves


DEFAULT_POLICIES: dict[str, KindPolicy] = {
    "avatar": KindPolicy("avatar", "image", IMAGE_TYPES, 10 * MiB, presets=("avatar_128", "avatar_512"),
                         max_pixels=25_000_000),
    "photo": KindPolicy("photo", "image", IMAGE_TYPES, 40 * MiB, presets=("thumb_320", "display_1080")),
    "video": KindPolicy("video", "video", VIDEO_TYPES, 2048 * MiB, max_dimension=4096),
}
_TUNABLE = {f.name for f in fields(KindPolicy)} - {"kind", "family"}


def load_policies(raw: str) -> dict[str, KindPolicy]:
    """The defaults with MEDIA_POLICIES applied (raises ValueError on unknown kinds or keys)."""
    if not raw.strip():
        return dict(DEFAULT_POLICIES)
    overrides = json.loads(raw)
    if not isinstance(overrides, dict):
        raise ValueError("MEDIA_POLICIES must be a JSON object of kind -> settings")
    policies = dict(DEFAULT_POLICIES)
    for kind, changes in overrides.items():
        if kind not in policies or not isinstance(changes, dict):
            raise ValueError(f"unknown media kind {kind!r}")
        unknown = set(changes) - _TUNABLE
        if unknown:
            raise ValueError(f"unknown settings for {kind}: {sorted(unknown)}")
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in changes.items()}
        policies[kind] = replace(policies[kind], **values)
    return policies


def policy_for(config: dict[str, Any], kind: str) -> KindPolicy:
    """The policy of ``kind`` under this app's settings."""
    policies: dict[str, KindPolicy] = config["MEDIA_POLICIES"]
    try:
        return policies[kind]
    except KeyError:
        raise ValidationFailed("Unknown media kind.", code="unknown_kind",
                               details={"fields": {"kind": [f"One of: {', '.join(policies)}."]}}) from None
