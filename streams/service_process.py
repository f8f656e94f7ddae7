"""The entry-point boilerplate of a long-running service process (`python -m api`,
`python -m sandbox`): settings from the environment, logging, serving until SIGINT or SIGTERM.

The Faust worker has its own (Faust handles its signals and logging); everything else that
runs as a process starts the same way, so an orchestrator stops each of them the same way.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import uvloop

from streams.garbage_collection import schedule_collections
from streams.settings import ProcessSettings
from streams.structured_logs import configure_logging

Root = TypeVar("Root", bound=ProcessSettings)


async def wait_for_stop_signal() -> None:
    """Return on the first SIGINT or SIGTERM, so that the caller can shut down cleanly."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()


def run_service(root: type[Root], serve: Callable[[Root], Coroutine[Any, Any, None]]) -> None:
    """Build the process's settings (`root`) once from `TRIBUTARY_*`, configure logging and run
    `serve` to its end."""
    settings = root()
    configure_logging(settings.log_level, settings.log_format)
    schedule_collections(settings.gc_young_objects)
    # On uvloop, as the worker is: the loop itself (callbacks, sockets to Kafka, Redis and
    # PostgreSQL) is a large share of a request's CPU, and uvloop does it in C.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(settings))
