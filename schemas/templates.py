"""Notification templates as data: the `notifications.templates` contract.

A template (`welcome`, `order-confirmation`) has numbered versions; each version is one variant
of it: a locale, a channel (or none: the text for every channel without a variant of its own),
an optional subject and a body, both Jinja2 source rendered in the router's sandbox, and the
sample variables it is checked against. For each template, locale and channel at most one
version is active: routing renders the active one.

The topic is compacted and keyed `<name>/<version>`: the latest record of a version is its
current state (an activation writes the version again with `active` true), so the topic alone,
read from the start, is the whole catalogue.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from schemas.envelope import Contract, Envelope
from schemas.notifications import Channel
from schemas.users import Locale

TEMPLATE_SAVED = "template.version-saved"
TemplateEventType = Literal["template.version-saved"]
TemplateName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$")]
TemplateSource = Annotated[str, Field(min_length=1, max_length=65_536)]
SubjectSource = Annotated[str, Field(min_length=1, max_length=2_048)]
SampleName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
SampleValue = Annotated[str, Field(max_length=1_024)]


class TemplateVersion(Contract):
    """One version of a template: one locale and channel's subject and body."""

    name: TemplateName
    # None: the body for every channel that has no variant of its own in this locale.
    channel: Channel | None = None
    locale: Locale
    version: Annotated[int, Field(ge=1)]
    subject: SubjectSource | None = None
    body: TemplateSource
    active: bool = False
    # The variables the version is previewed with, and must render with to be activated.
    sample: dict[SampleName, SampleValue] = Field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.name}/{self.version}"


class TemplateEvent(Envelope):
    """A template version as it travels on `notifications.templates`."""

    event_type: TemplateEventType
    payload: TemplateVersion


TEMPLATE_PAYLOADS: dict[str, type[TemplateVersion]] = {TEMPLATE_SAVED: TemplateVersion}


class NewTemplateVersion(Contract):
    """`POST /v1/templates/{name}/versions`: a new, inactive version. Without `sample`, the
    sample of the version active for the same locale and channel (else of the latest) is kept."""

    channel: Channel | None = None
    locale: Locale
    subject: SubjectSource | None = None
    body: TemplateSource
    sample: dict[SampleName, SampleValue] | None = None


class TemplatePreview(Contract):
    """`POST /v1/templates/{name}/preview`: a version (the latest when omitted) rendered with
    its sample, or with `variables` laid over it, for `channel` (the version's own by default)."""

    version: Annotated[int, Field(ge=1, strict=True)] | None = None
    variables: dict[SampleName, SampleValue] | None = None
    channel: Channel | None = None
