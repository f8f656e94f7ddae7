"""The API served on a real port from a thread of its own, for clients that block (schemathesis
calls it with `requests`, which would stall the test session's own event loop)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import web

from api.app import create_app
from streams.settings import Settings

START_TIMEOUT_S = 30.0


@contextmanager
def serving(settings: Settings) -> Iterator[str]:
    """The API's base URL while the block runs; stopped cleanly (cleanup contexts) after."""
    started = threading.Event()
    state: dict[str, object] = {}

    async def serve() -> None:
        stop = asyncio.Event()
        state["stop"] = (asyncio.get_running_loop(), stop)
        runner = web.AppRunner(create_app(settings))
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            host, port = runner.addresses[0][:2]
            state["url"] = f"http://{host}:{port}"
            started.set()
            await stop.wait()
        finally:
            await runner.cleanup()

    def run() -> None:
        try:
            asyncio.run(serve())
        except BaseException as exc:  # noqa: BLE001 - reported to the waiting test
            state["error"] = exc
            started.set()

    thread = threading.Thread(target=run, name="live-api", daemon=True)
    thread.start()
    if not started.wait(START_TIMEOUT_S) or "error" in state:
        raise RuntimeError(f"the API did not start: {state.get('error')!r}")
    try:
        yield str(state["url"])
    finally:
        loop, stop = state["stop"]  # type: ignore[misc]
        loop.call_soon_threadsafe(stop.set)
        thread.join(START_TIMEOUT_S)
