"""Template files as the first versions of the templates: loaded once, when the topic is empty.

Files are named `<template>.<locale>.<part>.j2`, the part being `subject`, `body`, or a channel
(`sms`, `push`, `whatsapp`, `email`) whose own body replaces the generic one on that channel.
Each locale's `body` becomes a version for every channel, each channel part a version of its
own (with the locale's subject, on channels that have one); all active. Every file of the
directory is taken, so adding a template is adding its files.

Each version gets sample variables, for previews and for the check at activation: the
variables its source uses, with a plausible value for the ones the rules fill in, and the
variable's name in angle brackets for any other.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime
from pathlib import Path

from jinja2 import TemplateSyntaxError, meta
from jinja2.sandbox import SandboxedEnvironment

from schemas.templates import TEMPLATE_SAVED, TemplateEvent, TemplateVersion
from streams.templates.catalog import SUBJECT_CHANNELS

SUFFIX = ".j2"
CHANNEL_PARTS = ("email", "push", "sms", "whatsapp")
# Values for the variables the rules set (`agents.routing.rules`), valid for their filters.
SAMPLE_VALUES = {
    "order_id": "ord_1001",
    "total_minor": "4200",
    "currency": "EUR",
    "ip": "203.0.113.7",
}
# Ids of the first versions: the same on every worker, so two loading at once write the same.
FILES_NAMESPACE = uuid.UUID("0c6f3d1e-5b7a-4e2f-9a8d-3f2e1d0c9b8a")
FILES_SOURCE = "agent:route_notifications"


def sample_for(*sources: str | None) -> dict[str, str]:
    env = SandboxedEnvironment()
    env.filters["money"] = str  # only known by name here: analysing the source checks filters
    names: set[str] = set()
    for source in sources:
        if source is None:
            continue
        try:
            names |= meta.find_undeclared_variables(env.parse(source))
        except TemplateSyntaxError:
            continue  # no sample makes it render: it fails at its first render, as it must
    return {name: SAMPLE_VALUES.get(name, f"<{name}>") for name in sorted(names)}


def _parts(directory: Path) -> dict[tuple[str, str], dict[str, str]]:
    found: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    for path in sorted(directory.glob(f"*{SUFFIX}")):
        pieces = path.name.removesuffix(SUFFIX).split(".")
        if len(pieces) != 3:
            continue
        name, locale, part = pieces
        found[(name, locale)][part] = path.read_text()
    return found


def first_versions(directory: Path) -> list[TemplateVersion]:
    """One version per locale and channel of every template in `directory`, numbered from 1
    per template (in locale, then channel order), all active."""
    versions: list[TemplateVersion] = []
    numbers: dict[str, int] = defaultdict(int)
    for (name, locale), parts in sorted(_parts(directory).items()):
        subject = parts.get("subject")
        variants: list[tuple[str | None, str]] = []
        if "body" in parts:
            variants.append((None, parts["body"]))
        variants += [(channel, parts[channel]) for channel in CHANNEL_PARTS if channel in parts]
        for channel, body in variants:
            numbers[name] += 1
            own_subject = subject if channel is None or channel in SUBJECT_CHANNELS else None
            versions.append(
                TemplateVersion.model_validate(
                    {
                        "name": name,
                        "channel": channel,
                        "locale": locale,
                        "version": numbers[name],
                        "subject": own_subject,
                        "body": body,
                        "active": True,
                        "sample": sample_for(own_subject, body),
                    }
                )
            )
    return versions


def version_event(version: TemplateVersion, now: datetime, source: str) -> TemplateEvent:
    """A version's record; `now` is when it was saved, activated or deactivated."""
    return TemplateEvent(
        event_id=uuid.uuid4(),
        event_type=TEMPLATE_SAVED,
        occurred_at=now,
        ingested_at=now,
        source=source,
        correlation_id=str(uuid.uuid4()),
        payload=version,
    )


def file_events(directory: Path, now: datetime) -> list[TemplateEvent]:
    """The first versions' records, with ids derived from the versions (the same on every
    worker)."""
    events = []
    for version in first_versions(directory):
        event_id = uuid.uuid5(FILES_NAMESPACE, version.key)
        events.append(
            version_event(version, now, FILES_SOURCE).model_copy(
                update={"event_id": event_id, "correlation_id": str(event_id)}
            )
        )
    return events
