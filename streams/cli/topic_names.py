"""From what an operator types (`orders.events`, `t1-orders.events.dlq`) to the catalog's topic.

Operators think in base names and tests in prefixed ones, so both are accepted. A name the
catalog does not know is taken literally (a Faust changelog topic, say): such a topic can still be
described or tailed, only not decoded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas.contracts import BY_SUBJECT, Contract
from streams.cli.errors import UsageError
from streams.kafka.catalog import (
    DEAD_LETTER_SUFFIX,
    NOTIFICATIONS_DISPATCH,
    NOTIFICATIONS_DLQ,
    TopicCatalog,
    TopicSpec,
)


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


@dataclass(frozen=True, slots=True)
class DeadLetterRoute:
    """A dead-letter topic, the topic its letters are re-driven to, and the other topics whose
    letters it also holds (and which are re-driven to `source` as well)."""

    source: TopicSpec
    dead_letters: TopicSpec
    also_from: tuple[str, ...] = ()


# `notifications.dispatch` and its retry topics share one dead-letter topic, `notifications.dlq`.
_NOTIFICATION_NAMES = ("notifications", NOTIFICATIONS_DISPATCH, NOTIFICATIONS_DLQ)


def resolve_dead_letters(catalog: TopicCatalog, prefix: str, typed: str) -> DeadLetterRoute:
    """`orders.events` -> its `.dlq`; `notifications` (or `notifications.dispatch`, or
    `notifications.dlq`) -> `notifications.dlq`, re-driven to `notifications.dispatch`."""
    base = typed.removeprefix(prefix)
    if base in _NOTIFICATION_NAMES or base.removesuffix(DEAD_LETTER_SUFFIX) in _NOTIFICATION_NAMES:
        retries = tuple(spec.name for spec in catalog.notification_retries())
        dispatch = catalog.for_topic(NOTIFICATIONS_DISPATCH)
        return DeadLetterRoute(dispatch, catalog.notifications_dlq, retries)
    source = resolve_family(catalog, prefix, typed)
    return DeadLetterRoute(source, catalog.dead_letters(source))
