"""A small real Faust worker that can be told to stall, for the stall watchdog's test.

`python -m tests.integration.streams.runtime.stalling_worker`, configured by the test's
`TRIBUTARY_*`
variables: one agent reads `<prefix>stall.in` in batches as our agents do (`take_batches`,
`ack_events`) and forwards every record to `<prefix>stall.out`. A record whose value is
`stall:<form>` makes the worker put its own consumer into that stalled state, one of the shapes
a silent faust-streaming stall can take (see `FORMS`); the stall watchdog, wired as in
`agents.worker.process`, has to get it consuming again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import faust

from streams.runtime.app import create_faust_app, worker_event_loop
from streams.runtime.checkpoint import ack_events
from streams.runtime.event_batches import take_batches
from streams.runtime.records import OutgoingRecord
from streams.runtime.stall_watchdog import StallWatchdog
from streams.runtime.topics import TopicPublisher, raw_topic
from streams.settings import WorkerProcessSettings

READY = "stalling worker ready"
STALL_PREFIX = b"stall:"


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


def build(settings: WorkerProcessSettings) -> faust.App:
    app = create_faust_app(settings)
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
                if value.startswith(STALL_PREFIX):
                    form = value.removeprefix(STALL_PREFIX).decode()
                    # Not awaited here: the agent must not be the one left waiting.
                    stalls.add(asyncio.ensure_future(stall(form)))

    app.agent(source, name="forward_records")(forward_records)
    watchdog = StallWatchdog(app, timeout_s=worker.stall_timeout_s, changelog_topics=lambda: [])
    app.timer(worker.stall_check_interval_s, name="watch_for_stalls")(watchdog.check)
    return app


class StallingWorker(faust.Worker):
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
    StallingWorker(app, loglevel=settings.log_level, loop=loop).execute_from_commandline()


if __name__ == "__main__":
    main()
