"""Rendering a notification from the active template versions (`streams.templates`).

Templates are data: versions on the compacted topic `notifications.templates`, folded into a
`TemplateCatalog` the route agent reads to the end before each batch (see
`agents.routing.templates`), so a version activated before a notification is routed is the one
it renders with. The files in `templates/` are the first versions, loaded when the topic is
empty; a renderer built on a directory (tests, benchmarks) reads them the same way.

A locale falls back to its language (`fr-CA` -> `fr`) and then to the configured fallback
locale, as a whole: subject and body always come from the same locale and version. Numbers are
formatted in the user's own locale (`streams.templates.sandbox`). Any failure to render is a
`TemplateRenderError`, a `PoisonError`: the request goes to the dead-letter topic, and the agent
carries on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from schemas.notifications import Channel
from streams.errors import PoisonError
from streams.templates.catalog import (
    SUBJECT_CHANNELS,
    TemplateCatalog,
    locale_chain,
    render_version,
)
from streams.templates.files import file_events
from streams.templates.sandbox import (
    LOCALE_VARIABLE,
    Sandbox,
    TemplateSourceError,
    money,
    number_locale,
)

TEMPLATE_DIR = Path(__file__).parent / "templates"

__all__ = [
    "LOCALE_VARIABLE",
    "SUBJECT_CHANNELS",
    "TEMPLATE_DIR",
    "RenderedMessage",
    "TemplateRenderError",
    "TemplateRenderer",
    "catalog_of_files",
    "locale_chain",
    "money",
    "number_locale",
]


class TemplateRenderError(PoisonError):
    """A notification cannot be rendered: no such template, a broken one, or a missing variable."""


@dataclass(frozen=True, slots=True)
class RenderedMessage:
    locale: str
    subject: str | None
    body: str


def catalog_of_files(directory: Path = TEMPLATE_DIR) -> TemplateCatalog:
    """A catalogue holding the first versions of the files in `directory`, all active."""
    catalog = TemplateCatalog()
    for event in file_events(directory, datetime.now(UTC)):
        catalog.apply(event)
    return catalog


class TemplateRenderer:
    """Renders notifications from the active versions of a catalogue (the live one the route
    agent keeps current, or, by default, one of the files of `directory`)."""

    def __init__(
        self,
        directory: Path = TEMPLATE_DIR,
        *,
        fallback_locale: str = "en",
        catalog: TemplateCatalog | None = None,
    ) -> None:
        self._fallback_locale = fallback_locale
        self.catalog = catalog if catalog is not None else catalog_of_files(directory)
        self._sandbox = Sandbox()

    def render(
        self, template: str, locale: str | None, channel: Channel, variables: Mapping[str, str]
    ) -> RenderedMessage:
        version = self.catalog.for_message(template, locale, channel, self._fallback_locale)
        if version is None:
            if not self.catalog.versions(template):
                raise TemplateRenderError(f"no template {template!r}")
            raise TemplateRenderError(
                f"no template {template!r} for locale {locale!r} nor {self._fallback_locale!r}"
            )
        numbers = number_locale(locale or version.locale, self._fallback_locale)
        try:
            rendered = render_version(self._sandbox, version, channel, variables, numbers)
        except TemplateSourceError as exc:
            raise TemplateRenderError(
                f"template {template!r} v{version.version} ({version.locale}, {channel}) "
                f"failed: {exc}"
            ) from exc
        return RenderedMessage(locale=version.locale, subject=rendered.subject, body=rendered.body)
