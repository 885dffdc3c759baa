"""Validation of the locale and time-zone names clients send (profiles, devices, campaigns)."""
from __future__ import annotations

import functools
import re
from zoneinfo import available_timezones

# BCP 47, the part apps actually send: language[-Script][-REGION](-variant)*
_LANGUAGE_TAG = re.compile(
    r"^[A-Za-z]{2,3}(-[A-Za-z]{4})?(-(?:[A-Za-z]{2}|[0-9]{3}))?(-(?:[A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*$")
MAX_LANGUAGE_TAG = 35


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def is_time_zone(name: str | None) -> bool:
    """Whether ``name`` is an IANA zone of this machine's tz database (e.g. Europe/Paris)."""
    return bool(name) and name in _zones()


def is_language_tag(value: str | None) -> bool:
    """Whether ``value`` is a BCP 47 language tag such as en, pt-BR, zh-Hant-TW."""
    return bool(value) and len(value) <= MAX_LANGUAGE_TAG and _LANGUAGE_TAG.match(value) is not None
