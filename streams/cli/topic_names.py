"""From what an operator types (`orders.events`, `t1-orders.events.dlq`) to the catalog's topic.

Operators think in base names and tests in prefixed ones, so both are accepted. A name the
catalog does not know is taken literally (a Faust changelog topic, say): such a topic can still be
described or tailed, only not decoded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas.contracts import BY_SUBJECT, Contract
from streams.catalog import DEAD_LETTER_SUFFIX, TopicCatalog, TopicSpec
from streams.cli.errors import UsageError


@dataclass(frozen=True, slots=True)
class TopicRef:
    name: str
    spec: TopicSpec | None

    @property
    def contract(self) -> Contract[Any] | None:
        """The contract its values follow; None for dead letters and topics outside the catalog."""
        if self.spec is None or self.spec.value_subject is None:
            return None
        return BY_SUBJECT[self.spec.value_subject]


def resolve_topic(catalog: TopicCatalog, prefix: str, typed: str) -> TopicRef:
    """The catalog topic named `typed` with or without the deployment's prefix, else literally."""
    for spec in catalog.all():
        if typed in (spec.name, spec.name.removeprefix(prefix)):
            return TopicRef(spec.name, spec)
    return TopicRef(typed, None)


def resolve_family(catalog: TopicCatalog, prefix: str, typed: str) -> TopicSpec:
    """The family topic (never a dead-letter one) named `typed`, its `.dlq` suffix tolerated."""
    base = typed.removeprefix(prefix).removesuffix(DEAD_LETTER_SUFFIX)
    for spec in catalog.families():
        if spec.name.removeprefix(prefix) == base:
            return spec
    known = ", ".join(spec.name.removeprefix(prefix) for spec in catalog.families())
    raise UsageError(f"{typed!r} is not a family topic of the catalog; known: {known}")
