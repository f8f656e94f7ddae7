"""Notification templates: Jinja2, sandboxed, one set of files per template and locale.

Files in a template directory are named `<template>.<locale>.<part>.j2`, the part being
`subject`, `body`, or a channel (`sms`, `push`, `whatsapp`, `email`) whose own body replaces the
generic one on that channel (an SMS wants fewer words than an email). A locale falls back to its
language (`fr-CA` -> `fr`) and then to the configured fallback locale, as a whole: subject and
body always come from the same locale.

Templates are sandboxed (variables come from upstream events, and templates may one day come
from operators) and undefined variables are errors rather than silent blanks. Any failure to
render is a `TemplateRenderError`, a `PoisonError`: the request goes to the dead-letter topic,
and the agent carries on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from jinja2 import FileSystemLoader, StrictUndefined, TemplateNotFound
from jinja2.exceptions import TemplateError
from jinja2.sandbox import SandboxedEnvironment

from streams.errors import PoisonError

TEMPLATE_DIR = Path(__file__).parent / "notification_templates"
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
        self._names = frozenset(self._env.list_templates(extensions=[SUFFIX.lstrip(".")]))

    def render(
        self, template: str, locale: str | None, channel: str, variables: Mapping[str, str]
    ) -> RenderedMessage:
        chosen = self._locale_of(template, locale)
        try:
            body_part = channel if self._has(template, chosen, channel) else "body"
            body = self._render(template, chosen, body_part, variables).strip()
            subject = None
            if channel in SUBJECT_CHANNELS and self._has(template, chosen, "subject"):
                subject = self._render(template, chosen, "subject", variables).strip()
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

    def _render(self, template: str, locale: str, part: str, variables: Mapping[str, str]) -> str:
        try:
            compiled = self._env.get_template(f"{template}.{locale}.{part}{SUFFIX}")
        except TemplateNotFound as exc:  # listed at start, removed since
            raise TemplateRenderError(f"template file {exc.name} vanished") from exc
        return compiled.render(dict(variables))
