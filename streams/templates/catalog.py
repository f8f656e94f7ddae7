"""The template catalogue: every version of every template, folded from `notifications.templates`.

Pure: `apply` takes one decoded record at a time, in topic order per key (the latest record of a
version is its state). Which version of a template's locale and channel is active is decided
here, once for the router and the API: the active one; should two be (an activation whose
second write, the previous version's deactivation, failed), the one activated last wins, so a
half-done activation still has the effect asked for.

Rendering picks, along the locale chain (`fr-CA`, `fr`, the fallback), the first locale with an
active version for the channel or for every channel, so subject and body always come from the
same locale and version.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from babel import Locale

from schemas.notifications import Channel
from schemas.templates import TemplateEvent, TemplateVersion
from streams.templates.sandbox import Sandbox, TemplateSourceError

# Channels whose messages have a subject (an email's subject, a push notification's title).
SUBJECT_CHANNELS = frozenset({"email", "push"})


@dataclass(frozen=True, slots=True)
class Rendered:
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


class TemplateCatalog:
    def __init__(self) -> None:
        self._versions: dict[str, dict[int, TemplateVersion]] = {}
        # When each version's latest record was written: the later activation wins a tie.
        self._written_at: dict[tuple[str, int], datetime] = {}

    def apply(self, event: TemplateEvent) -> None:
        version = event.payload
        self._versions.setdefault(version.name, {})[version.version] = version
        self._written_at[(version.name, version.version)] = event.occurred_at

    def __len__(self) -> int:
        return sum(len(versions) for versions in self._versions.values())

    def names(self) -> list[str]:
        return sorted(self._versions)

    def versions(self, name: str) -> list[TemplateVersion]:
        return [v for _, v in sorted(self._versions.get(name, {}).items())]

    def get(self, name: str, version: int) -> TemplateVersion | None:
        return self._versions.get(name, {}).get(version)

    def next_version(self, name: str) -> int:
        return max(self._versions.get(name, {}), default=0) + 1

    def active(self, name: str) -> list[TemplateVersion]:
        """The active version of each of the template's locales and channels."""
        chosen: dict[tuple[str, str | None], TemplateVersion] = {}
        for version in self.versions(name):
            if not version.active:
                continue
            slot = (version.locale, version.channel)
            held = chosen.get(slot)
            if held is None or self._order(version) > self._order(held):
                chosen[slot] = version
        return sorted(chosen.values(), key=lambda v: (v.locale, v.channel or ""))

    def active_in(self, name: str, locale: str, channel: Channel | None) -> TemplateVersion | None:
        """The active version for exactly this locale and channel (None: every channel)."""
        return next(
            (v for v in self.active(name) if v.locale == locale and v.channel == channel), None
        )

    def for_message(
        self, name: str, locale: str | None, channel: Channel, fallback_locale: str
    ) -> TemplateVersion | None:
        """The version a message on `channel` renders: its own channel's, else the one for every
        channel, in the first locale of the chain that has either."""
        active = self.active(name)
        for candidate in locale_chain(locale, fallback_locale):
            own = [v for v in active if v.locale == candidate]
            for wanted in (channel, None):
                found = next((v for v in own if v.channel == wanted), None)
                if found is not None:
                    return found
        return None

    def _order(self, version: TemplateVersion) -> tuple[datetime, int]:
        return (self._written_at[(version.name, version.version)], version.version)


def render_version(
    sandbox: Sandbox,
    version: TemplateVersion,
    channel: Channel | None,
    variables: Mapping[str, str],
    numbers: Locale,
) -> Rendered:
    """Subject (on channels that have one, when the version has one) and body; a
    `TemplateSourceError` when either fails or the body renders empty."""
    subject = None
    if version.subject is not None and (channel is None or channel in SUBJECT_CHANNELS):
        subject = sandbox.render("subject", version.subject, variables, numbers)
    body = sandbox.render("body", version.body, variables, numbers)
    if not body:
        raise TemplateSourceError("body", None, "renders an empty body")
    return Rendered(subject, body)
