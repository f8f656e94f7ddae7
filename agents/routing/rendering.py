"""Notification templates: Jinja2, sandboxed, one set of files per template and locale.

Files in a template directory are named `<template>.<locale>.<part>.j2`, the part being
`subject`, `body`, or a channel (`sms`, `push`, `whatsapp`, `email`) whose own body replaces the
generic one on that channel (an SMS wants fewer words than an email). A locale falls back to its
language (`fr-CA` -> `fr`) and then to the configured fallback locale, as a whole: subject and
body always come from the same locale.

Templates are sandboxed (variables come from upstream events, and templates may one day come
from operators) and undefined variables are errors rather than silent blanks. Amounts arrive in
minor units; the `money` filter shows them in the currency's own unit (ISO 4217 digits: JPY has
none, KWD three) and in the number format of the user's locale, through Babel's CLDR data.
Any failure to render is a `TemplateRenderError`, a `PoisonError`: the request goes to the
dead-letter topic, and the agent carries on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.numbers import format_currency, get_currency_precision
from jinja2 import FileSystemLoader, StrictUndefined, TemplateNotFound, pass_context
from jinja2.exceptions import TemplateError
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

from streams.errors import PoisonError

TEMPLATE_DIR = Path(__file__).parent / "templates"
SUFFIX = ".j2"
# Channels whose messages have a subject (an email's subject, a push notification's title).
SUBJECT_CHANNELS = frozenset({"email", "push"})


class TemplateRenderError(PoisonError):
    """A notification cannot be rendered: no such template, a broken one, or a missing variable."""


@dataclass(frozen=True, slots=True)
class RenderedMessage:
    locale: str
    subject: str | None
    body: str


# The variable a render sets to the user's locale, for filters that format numbers.
LOCALE_VARIABLE = "_locale"


@lru_cache(maxsize=256)
def number_locale(locale: str, fallback_locale: str) -> Locale:
    """The CLDR locale to format numbers in: the user's own (`fr-CA` formats as in Canada even
    when the text comes from the `fr` templates), else the fallback's, else English."""
    for candidate in (locale, fallback_locale, "en"):
        try:
            return Locale.parse(candidate, sep="-")
        except (UnknownLocaleError, ValueError):
            continue
    raise AssertionError("Babel always knows English")


def money(amount_minor: Any, currency: str, locale: Locale) -> str:
    """`amount_minor` of `currency` in its own unit, as `locale` writes amounts."""
    try:
        minor = int(str(amount_minor))
    except ValueError as exc:
        raise TemplateError(
            f"amount {amount_minor!r} is not a whole number of minor units"
        ) from exc
    amount = Decimal(minor).scaleb(-get_currency_precision(currency))
    return str(format_currency(amount, currency, locale=locale))


@pass_context
def _money_filter(context: Context, amount_minor: Any, currency: str) -> str:
    locale = context.get(LOCALE_VARIABLE)
    assert isinstance(locale, Locale)
    return money(amount_minor, currency, locale)


def locale_chain(locale: str | None, fallback_locale: str) -> list[str]:
    """The locales to try, most specific first: `fr-CA` -> `fr-CA`, `fr`, then the fallback."""
    chain: list[str] = []
    if locale:
        parts = locale.split("-")
        chain = ["-".join(parts[:n]) for n in range(len(parts), 0, -1)]
    if fallback_locale not in chain:
        chain.append(fallback_locale)
    return chain


class TemplateRenderer:
    """Renders notifications from the `.j2` files of one directory (compiled once, cached)."""

    def __init__(self, directory: Path = TEMPLATE_DIR, *, fallback_locale: str = "en") -> None:
        self._fallback_locale = fallback_locale
        self._env = SandboxedEnvironment(
            loader=FileSystemLoader(directory),
            undefined=StrictUndefined,
            autoescape=False,  # plain-text messages; nothing here is HTML
            keep_trailing_newline=False,
            auto_reload=False,
        )
        self._env.filters["money"] = _money_filter
        self._names = frozenset(self._env.list_templates(extensions=[SUFFIX.lstrip(".")]))

    def render(
        self, template: str, locale: str | None, channel: str, variables: Mapping[str, str]
    ) -> RenderedMessage:
        chosen = self._locale_of(template, locale)
        numbers = number_locale(locale or chosen, self._fallback_locale)
        context = {**variables, LOCALE_VARIABLE: numbers}
        try:
            body_part = channel if self._has(template, chosen, channel) else "body"
            body = self._render(template, chosen, body_part, context).strip()
            subject = None
            if channel in SUBJECT_CHANNELS and self._has(template, chosen, "subject"):
                subject = self._render(template, chosen, "subject", context).strip()
        except TemplateError as exc:
            raise TemplateRenderError(
                f"template {template!r} ({chosen}, {channel}) failed: {type(exc).__name__}: {exc}"
            ) from exc
        if not body:
            raise TemplateRenderError(f"template {template!r} ({chosen}) rendered an empty body")
        return RenderedMessage(locale=chosen, subject=subject, body=body)

    def _locale_of(self, template: str, locale: str | None) -> str:
        for candidate in locale_chain(locale, self._fallback_locale):
            if self._has(template, candidate, "body"):
                return candidate
        raise TemplateRenderError(
            f"no template {template!r} for locale {locale!r} nor {self._fallback_locale!r}"
        )

    def _has(self, template: str, locale: str, part: str) -> bool:
        return f"{template}.{locale}.{part}{SUFFIX}" in self._names

    def _render(self, template: str, locale: str, part: str, variables: Mapping[str, Any]) -> str:
        try:
            compiled = self._env.get_template(f"{template}.{locale}.{part}{SUFFIX}")
        except TemplateNotFound as exc:  # listed at start, removed since
            raise TemplateRenderError(f"template file {exc.name} vanished") from exc
        return compiled.render(dict(variables))
