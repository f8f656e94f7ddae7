"""Topics and settings for the small real Faust worker of `stalling_worker`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.kafka.catalog import TopicSpec
from streams.kafka.topic_admin import delete_topics_blocking, ensure_topics_blocking
from streams.settings import Settings
from tests.integration.worker_process import make_worker_settings


@pytest.fixture
def stall_settings(stack_settings: Settings, tmp_path: Path) -> Iterator[Settings]:
    """A fresh group and `<prefix>stall.in` / `.out`; the watchdog looks every second and acts
    after 3 s stalled."""
    base = make_worker_settings(stack_settings, tmp_path)
    worker = base.worker.model_copy(update={"stall_timeout_s": 3.0, "stall_check_interval_s": 1.0})
    settings = base.model_copy(update={"worker": worker})
    prefix = settings.topic_prefix
    specs = [
        TopicSpec(
            name=f"{prefix}stall.{name}",
            key="none",
            partitions=settings.kafka.partitions,
            replication_factor=1,
        )
        for name in ("in", "out")
    ]
    ensure_topics_blocking(settings.kafka, specs)
    yield settings
    delete_topics_blocking(settings.kafka, [prefix, settings.worker.app_id])
