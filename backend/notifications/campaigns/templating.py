"""Per-locale campaign messages with sandboxed personalisation.

Templates are Jinja2 rendered by a ``SandboxedEnvironment`` and, before that, checked
against an allow-list of syntax at create time: output of the known variables
(``first_name``, ``display_name``, ``locale``, ``time_zone``, ``properties.<key>``),
a few text filters, literals and ``if``. Anything else (calls, loops, attribute access
to underscored names, imports) is refused with a stable code, so a template can never
reach Python internals even if the sandbox had a hole. Unknown variables render empty.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from jinja2 import Template, TemplateError, nodes
from jinja2.sandbox import SandboxedEnvironment

from backend.common.errors import ValidationFailed

VARIABLES = frozenset({"first_name", "display_name", "locale", "time_zone", "properties"})
FILTERS = frozenset({"default", "d", "upper", "lower", "title", "capitalize", "trim", "truncate", "string"})
TITLE_MAX = 200  # characters of a rendered title (the inbox column is 200)
BODY_MAX = 2000  # characters of a rendered body
TEMPLATE_MAX = 4000  # characters of a template source
FALLBACK_LOCALE = "en"

_ALLOWED_NODES = (
    nodes.Template, nodes.Output, nodes.TemplateData, nodes.Name, nodes.Const, nodes.Filter,
    nodes.If, nodes.Compare, nodes.Operand, nodes.And, nodes.Or, nodes.Not, nodes.CondExpr,
    nodes.Concat, nodes.Getattr, nodes.Getitem, nodes.Test, nodes.Keyword,
)
_TESTS = frozenset({"defined", "undefined", "none", "number", "string"})


@functools.cache
def _environment() -> SandboxedEnvironment:
    # autoescape off: pushes are plain text, not HTML (the inbox UI escapes on display).
    return SandboxedEnvironment(autoescape=False, keep_trailing_newline=False)


@functools.lru_cache(maxsize=1024)
def _template(source: str) -> Template:
    # Compiled once per text: a personalised fan-out renders the same few templates for
    # every recipient, and compiling one costs more than sending its push.
    return _environment().from_string(source)


def _reject(field: str, reason: str) -> ValidationFailed:
    return ValidationFailed(
        f"The template in {field} is not allowed: {reason}.",
        code="template_not_allowed", details={"field": field, "reason": reason},
    )


def check_template(source: str, *, field: str) -> None:
    """Raise ``template_invalid`` / ``template_not_allowed`` unless ``source`` is a safe template."""
    if len(source) > TEMPLATE_MAX:
        raise ValidationFailed(f"The template in {field} is too long.", code="template_too_long",
                               details={"field": field, "max": TEMPLATE_MAX})
    try:
        tree = _environment().parse(source)
    except TemplateError as exc:
        raise ValidationFailed(f"The template in {field} does not parse: {exc}.", code="template_invalid",
                               details={"field": field}) from exc
    for node in tree.find_all(nodes.Node):
        if not isinstance(node, _ALLOWED_NODES):
            raise _reject(field, f"{type(node).__name__.lower()} is not supported")
        if isinstance(node, nodes.Name) and node.name not in VARIABLES:
            raise _reject(field, f"unknown variable {node.name!r}")
        if isinstance(node, nodes.Filter) and node.name not in FILTERS:
            raise _reject(field, f"filter {node.name!r} is not supported")
        if isinstance(node, nodes.Test) and node.name not in _TESTS:
            raise _reject(field, f"test {node.name!r} is not supported")
        if isinstance(node, nodes.Getattr | nodes.Getitem):
            # Only ``properties.key`` / ``properties["key"]``: never attributes of values.
            key = node.attr if isinstance(node, nodes.Getattr) else getattr(node.arg, "value", None)
            if not (isinstance(node.node, nodes.Name) and node.node.name == "properties"):
                raise _reject(field, "attribute access is only allowed on properties")
            if not isinstance(key, str) or key.startswith("_"):
                raise _reject(field, "property names must be plain strings")


def render(source: str, context: dict[str, Any], *, limit: int) -> str:
    """Render ``source`` in the sandbox; cut to ``limit`` characters with an ellipsis."""
    try:
        text = _template(source).render(**context)
    except TemplateError:
        # Validated at create time, so this is data we did not foresee: strip the tags
        # rather than send raw template syntax or nothing.
        text = _template(source).render()
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def personal_context(*, first_name: str | None = None, display_name: str | None = None, locale: str | None = None,
                     time_zone: str | None = None, properties: dict[str, Any] | None = None) -> dict[str, Any]:
    """The variables a template may use; missing values stay undefined so ``default`` applies."""
    context: dict[str, Any] = {"properties": {k: v for k, v in (properties or {}).items()
                                              if isinstance(v, str | int | float | bool)}}
    for key, value in (("first_name", first_name), ("display_name", display_name),
                       ("locale", locale), ("time_zone", time_zone)):
        if value:
            context[key] = value
    return context


def merged_message(message: dict[str, Any], override: dict[str, Any] | None) -> dict[str, Any]:
    """A campaign message with a variant's partial override applied (locales merge per key)."""
    merged = {**message, **{k: v for k, v in (override or {}).items() if k != "locales"}}
    locales = {code: dict(texts) for code, texts in message.get("locales", {}).items()}
    for code, texts in (override or {}).get("locales", {}).items():
        locales[code] = {**locales.get(code, {}), **texts}
    merged["locales"] = locales
    return merged


def pick_locale(message: dict[str, Any], locale: str | None) -> str:
    """The best locale of ``message`` for ``locale``: exact, language, default, then "en"."""
    available = message.get("locales", {})
    if locale:
        if locale in available:
            return locale
        language = locale.split("-")[0].lower()
        for code in sorted(available):
            if code.split("-")[0].lower() == language:
                return code
    for code in (message.get("default_locale"), FALLBACK_LOCALE):
        if code in available:
            return code
    return sorted(available)[0]


@dataclass(frozen=True)
class RenderedMessage:
    """Title and body for one recipient, with the locale actually used."""

    locale: str
    title: str
    body: str


def render_for(message: dict[str, Any], *, locale: str | None, context: dict[str, Any]) -> RenderedMessage:
    """Render the best-matching locale of ``message`` for one recipient."""
    chosen = pick_locale(message, locale)
    texts = message["locales"][chosen]
    return RenderedMessage(
        locale=chosen,
        title=render(texts.get("title", ""), context, limit=TITLE_MAX),
        body=render(texts.get("body", ""), context, limit=BODY_MAX),
    )


def check_message_templates(message: dict[str, Any], *, prefix: str = "message") -> None:
    """Check every title/body template of ``message``."""
    for code, texts in message.get("locales", {}).items():
        for part in ("title", "body"):
            if part in texts:
                check_template(texts[part], field=f"{prefix}.locales.{code}.{part}")
