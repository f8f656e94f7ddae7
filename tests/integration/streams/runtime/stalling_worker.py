"""A small real Faust worker that can be told to stall or to stop slowly, for the tests of the
stall watchdog and of a stop during a rebalance.

`python -m tests.integration.streams.runtime.stalling_worker`, configured by the test's
`TRIBUTARY_*`
variables: one agent reads `<prefix>stall.in` in batches as our agents do (`take_batches`,
`ack_events`) and forwards every record to `<prefix>stall.out`. A record whose value is
`stall:<form>` makes the worker put its own consumer into that stalled state, one of the shapes
a silent faust-streaming stall can take (see `FORMS`); the stall watchdog, wired as in
`agents.worker.process`, has to get it consuming again.

A record `pause-stop:<web port>` makes that worker's next stop wait, once it has begun (the app
already stopping), until a rebalance has run into it (`StopControl`): a worker told to stop
while its group rebalances, made certain rather than left to timing. `hang-stop:<web port>`
makes its next stop wait forever there, as a step that never returns would: the worker's stop
deadline (`streams.runtime.stop_deadline`) has to end it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Literal

import faust
from faust.types import TP

from streams.runtime.app import TributaryApp, create_faust_app, worker_event_loop
from streams.runtime.checkpoint import ack_events
from streams.runtime.event_batches import take_batches
from streams.runtime.records import OutgoingRecord
from streams.runtime.stall_watchdog import StallWatchdog
from streams.runtime.stop_deadline import DeadlineWorker
from streams.runtime.topics import TopicPublisher, raw_topic
from streams.settings import WorkerProcessSettings

READY = "stalling worker ready"
STALL_PREFIX = b"stall:"
# Addressed by the worker's web port: a worker that reads one again after a rebalance is not armed.
PAUSE_STOP_PREFIX = b"pause-stop:"
HANG_STOP_PREFIX = b"hang-stop:"
STOP_PAUSED = "stop paused"
STOP_HANGING = "stop hanging"
# How long a paused stop waits for the rebalance, and then for its assignment (a member that
# rejoins gets one within a few heartbeats; none comes if its consumer was closed).
REBALANCE_WAIT_S = 60.0
ASSIGNMENT_WAIT_S = 5.0


async def pause_partitions(app: faust.App) -> None:
    """Faust stops fetching every partition it owns (as a rebalance does), and nothing resumes
    them."""
    app.consumer.pause_partitions(app.consumer.assignment())


async def stop_flow(app: faust.App) -> None:
    """The consumer's flow stopped (as a rebalance does), and nothing resumes it."""
    app.consumer.stop_flow()


async def stop_fetcher(app: faust.App) -> None:
    """The fetcher service stopped (as recovery does), and nothing starts it again."""
    await app._fetcher.stop()


FORMS: dict[str, Callable[[faust.App], Coroutine[Any, Any, None]]] = {
    "partitions-paused": pause_partitions,
    "flow-stopped": stop_flow,
    "fetcher-stopped": stop_fetcher,
}


class StopControl:
    """Holds the app's stop, once armed: paused, until its consumer's group rebalanced into the
    stop (the revocation and then the assignment reached the app while it was stopping); hung,
    for ever."""

    def __init__(self, app: TributaryApp) -> None:
        self.app = app
        self.armed: Literal["pause", "hang"] | None = None
        self.revoked = asyncio.Event()
        self.assigned = asyncio.Event()
        # Wrapped before the consumer is made: it takes these methods as its listener.
        on_revoked, on_assigned = app._on_partitions_revoked, app._on_partitions_assigned
        stop_consumer = app._stop_consumer

        async def revoked(revoked: set[TP]) -> None:
            self._saw(self.revoked, "revoked")
            await on_revoked(revoked)

        async def assigned(assigned: set[TP], generation_id: int = 0) -> None:
            self._saw(self.assigned, "assigned")
            await on_assigned(assigned, generation_id)

        async def paused_stop_consumer() -> None:
            if self.armed == "pause":
                await self._pause()
            elif self.armed == "hang":
                await self._hang()
            await stop_consumer()

        app._on_partitions_revoked = revoked  # type: ignore[method-assign]
        app._on_partitions_assigned = assigned  # type: ignore[method-assign]
        app._stop_consumer = paused_stop_consumer  # type: ignore[method-assign]

    def _saw(self, event: asyncio.Event, what: str) -> None:
        if self.app.should_stop:
            print(f"partitions {what} while stopping", flush=True)
            event.set()

    async def _pause(self) -> None:
        print(STOP_PAUSED, flush=True)  # the test makes the group rebalance once it reads this
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(REBALANCE_WAIT_S):
                await self.revoked.wait()
            async with asyncio.timeout(ASSIGNMENT_WAIT_S):
                await self.assigned.wait()
        print("stop resumed", flush=True)

    async def _hang(self) -> None:
        print(STOP_HANGING, flush=True)
        await asyncio.Event().wait()  # set by nothing


def build(settings: WorkerProcessSettings) -> faust.App:
    app = create_faust_app(settings)
    stop = StopControl(app)
    port = str(settings.worker.web_port).encode()
    pause_stop, hang_stop = PAUSE_STOP_PREFIX + port, HANG_STOP_PREFIX + port
    source = raw_topic(app, f"{settings.topic_prefix}stall.in")
    out = TopicPublisher(raw_topic(app, f"{settings.topic_prefix}stall.out"))
    worker = settings.worker
    stalls: set[asyncio.Task[None]] = set()

    async def stall(form: str) -> None:
        await FORMS[form](app)
        print(f"stalled: {form}", flush=True)  # the test produces once it reads this

    async def forward_records(stream: faust.StreamT[bytes]) -> None:
        async for events in take_batches(stream, 100, worker.batch_window_s):
            values = [event.value for event in events]
            await out.send_all([OutgoingRecord(key=None, value=value) for value in values])
            ack_events(stream, events)
            for value in values:
                if value in (pause_stop, hang_stop):
                    stop.armed = "pause" if value == pause_stop else "hang"
                    print(f"next stop: {stop.armed}", flush=True)
                elif value.startswith(STALL_PREFIX):
                    form = value.removeprefix(STALL_PREFIX).decode()
                    # Not awaited here: the agent must not be the one left waiting.
                    stalls.add(asyncio.ensure_future(stall(form)))

    app.agent(source, name="forward_records")(forward_records)
    watchdog = StallWatchdog(app, timeout_s=worker.stall_timeout_s, changelog_topics=lambda: [])
    app.timer(worker.stall_check_interval_s, name="watch_for_stalls")(watchdog.check)
    return app


class StallingWorker(DeadlineWorker):
    async def on_startup_finished(self) -> None:
        """Partitions assigned: the test may produce."""
        await super().on_startup_finished()
        self.say(READY)
        self.stdout.flush()


def main() -> None:
    settings = WorkerProcessSettings()
    loop = worker_event_loop()
    asyncio.set_event_loop(loop)
    Path(settings.worker.data_dir).mkdir(parents=True, exist_ok=True)
    app = build(settings)
    worker = StallingWorker(
        app, loglevel=settings.log_level, loop=loop, stop_timeout_s=settings.worker.stop_timeout_s
    )
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
