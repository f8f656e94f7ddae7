"""What a Faust worker's consumer is doing, as plain text: logged when the worker seems stalled.

A stall (faust-streaming issues #175/#523) leaves no error behind, so the only evidence is the
state at the time: whether the flows are suspended, which partitions Faust and aiokafka consider
active or paused, where each partition's read and committed offsets stand against the broker's
end, and where every task of the worker is waiting (the await chain of the fetcher and of each
agent says which step never returns).

Everything here reads Faust and aiokafka internals, some of them owned by the consumer's own
thread, so every read is guarded: a diagnosis must never fail the worker it diagnoses.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import Any

from faust.types import TP

# Enough to show what a task is (its outermost frames: mode's service wrapper, then the task's
# own) and where it waits (its innermost), without flooding the log with framework frames.
OUTER_FRAMES_PER_TASK = 2
INNER_FRAMES_PER_TASK = 5
MAX_CHAIN = 64
# A line per partition the worker owns, those with the most records past Faust's read first.
MAX_PARTITIONS = 400


def _read(what: Callable[[], Any]) -> Any:
    try:
        return what()
    except Exception as exc:  # noqa: BLE001 - see the module docstring
        return f"<{type(exc).__name__}>"


def describe_consumer(
    app: Any, sources: Iterable[TP], ends: Mapping[TP, int], batches_in_flight: int
) -> str:
    """The worker's consumer state and its tasks' await chains, one fact per line."""
    consumer = app.consumer
    lines = [
        f"generation={_read(lambda: app.consumer_generation_id)}"
        f" rebalancing={_read(lambda: app.rebalancing)}"
        f" in_recovery={_read(lambda: app.in_recovery)}",
        f"app flow active={_read(lambda: app.flow_control.is_active())}"
        f" consumer flow active={_read(lambda: consumer.flow_active)}"
        f" can_resume_flow={_read(lambda: consumer.can_resume_flow.is_set())}"
        f" suspend_flow={_read(lambda: consumer.suspend_flow.is_set())}",
        f"fetcher state={_read(lambda: app._fetcher.state)}"
        f" stopped={_read(lambda: app._fetcher._stopped.is_set())}",
        f"batches in flight={batches_in_flight}"
        f" unacked={_read(lambda: len(consumer._unacked_messages))}"
        f" producer buffer={_read(lambda: app.producer.buffer.size)}",
    ]
    lines += _group_lines(app)
    lines += _partition_lines(app, sources, ends)
    if tasks := describe_tasks():
        lines.append(tasks)
    return "\n".join(lines)


def _group_lines(app: Any) -> list[str]:
    """The assignment as Faust's assignor, Faust's consumer and aiokafka each see it: a
    worker that owns partitions by one account and none by another fetches nothing."""
    consumer = app.consumer
    kafka = _read(lambda: consumer._thread._consumer)
    coordinator = _read(lambda: kafka._coordinator)
    subscription = _read(lambda: kafka._subscription.subscription)
    return [
        f"assignor actives={_read(lambda: len(app.assignor.assigned_actives()))}"
        f" standbys={_read(lambda: len(app.assignor.assigned_standbys()))}"
        f" consumer assignment={_read(lambda: len(consumer.assignment()))}",
        f"kafka assignment={_read(lambda: len(subscription.assignment.tps))}"
        f" needs rejoin={_read(lambda: coordinator.need_rejoin(subscription))}"
        f" coordinator={_read(lambda: coordinator.coordinator_id)}"
        f" generation={_read(lambda: coordinator.generation)}"
        f" closed={_read(lambda: kafka._closed)}",
    ]


def _partition_lines(app: Any, sources: Iterable[TP], ends: Mapping[TP, int]) -> list[str]:
    consumer = app.consumer
    active = _read(lambda: set(consumer._active_partitions or ()))
    paused = _read(lambda: set(consumer._paused_partitions))
    buffered = _read(lambda: set(consumer._buffered_partitions))
    kafka = _read(lambda: consumer._thread._consumer)
    kafka_paused = _read(lambda: {(tp.topic, tp.partition) for tp in kafka.paused()})
    assignment = _read(lambda: kafka._subscription.subscription.assignment)
    lines = []
    positions = app.fetch_positions
    committed = _read(lambda: dict(consumer._committed_offset))

    def behind(tp: TP) -> int:
        return ends.get(tp, 0) - (positions.next_offset(tp) or 0)

    for tp in sorted(sources, key=lambda tp: (-behind(tp), tp))[:MAX_PARTITIONS]:
        key = (tp.topic, tp.partition)
        lines.append(
            f"{tp.topic}[{tp.partition}] end={ends.get(tp)}"
            f" next_fetch={positions.next_offset(tp)} absent={len(positions.absent(tp))}"
            f" committed={_entry(tp, committed)}"
            f" kafka_position={_read(lambda: assignment.state_value(tp).position)}"  # noqa: B023
            f" faust_active={_member(tp, active)} faust_paused={_member(tp, paused)}"
            f" buffered={_member(tp, buffered)} kafka_paused={_member(key, kafka_paused)}"
        )
    return lines


def _member(item: Any, collection: Any) -> Any:
    return item in collection if isinstance(collection, set) else collection


def _entry(key: Any, mapping: Any) -> Any:
    """`mapping[key]` (None if absent), or what `_read` made of a mapping it could not read."""
    return mapping.get(key) if isinstance(mapping, dict) else mapping


def describe_tasks() -> str:
    """Each task of the running loop and its await chain, innermost last (where it waits), a
    line each."""
    lines = []
    for task in _read(asyncio.all_tasks) if _running() else ():
        frames = _read(partial(_await_chain, task.get_coro()))
        if not isinstance(frames, list):
            continue
        lines.append(f"task {task.get_name()}: {' > '.join(_shown(frames))}")
    return "\n".join(sorted(lines))


def _shown(frames: list[Any]) -> list[str]:
    """The task's outermost frames (what the task is) and its innermost ones (where it waits),
    `…` between them when the chain is longer."""
    if len(frames) <= OUTER_FRAMES_PER_TASK + INNER_FRAMES_PER_TASK:
        return [_frame(frame) for frame in frames]
    outer, inner = frames[:OUTER_FRAMES_PER_TASK], frames[-INNER_FRAMES_PER_TASK:]
    return [*map(_frame, outer), "…", *map(_frame, inner)]


def _frame(frame: Any) -> str:
    return f"{frame.f_code.co_name}@{_short(frame.f_code.co_filename)}:{frame.f_lineno}"


def _await_chain(awaitable: Any) -> list[Any]:
    """The frames of a suspended coroutine and of what it awaits, down to the innermost.

    `Task.get_stack` gives only the outermost frame of a suspended task; the rest of the chain
    hangs off each coroutine's `cr_await` (`gi_yieldfrom`, `ag_await` for generators)."""
    frames: list[Any] = []
    while awaitable is not None and len(frames) < MAX_CHAIN:
        frame = next(
            (
                found
                for name in ("cr_frame", "gi_frame", "ag_frame")
                if (found := getattr(awaitable, name, None)) is not None
            ),
            None,
        )
        if frame is None:
            break
        frames.append(frame)
        awaitable = next(
            (
                found
                for name in ("cr_await", "gi_yieldfrom", "ag_await")
                if (found := getattr(awaitable, name, None)) is not None
            ),
            None,
        )
    return frames


def _running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _short(filename: str) -> str:
    for marker in ("site-packages/", "/streams/", "/agents/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename.rsplit("/", 1)[-1]
