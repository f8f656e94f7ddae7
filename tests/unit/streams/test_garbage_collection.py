"""A service process collects young objects on its own schedule and leaves its start-up heap be."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from streams.garbage_collection import MIDDLE_EVERY, OLD_EVERY, schedule_collections
from streams.settings import ApiProcessSettings, WorkerProcessSettings


@pytest.fixture
def restored_collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_collector")
def test_the_heap_at_start_is_frozen_and_young_objects_collected_every_so_many() -> None:
    lasting = [object() for _ in range(10)]
    schedule_collections(50_000)
    assert gc.get_threshold() == (50_000, MIDDLE_EVERY, OLD_EVERY)
    assert gc.get_freeze_count() >= len(lasting)


@pytest.mark.usefixtures("restored_collector")
def test_zero_keeps_cpythons_schedule() -> None:
    before = gc.get_threshold()
    schedule_collections(0)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_processes_collect_every_200000_allocations_unless_told(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert WorkerProcessSettings(env="dev").gc_young_objects == 200_000
    monkeypatch.setenv("TRIBUTARY_GC_YOUNG_OBJECTS", "0")
    assert ApiProcessSettings(env="dev").gc_young_objects == 0
