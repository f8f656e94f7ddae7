"""`python -m api`: serve the API on `settings.api.host`/`port` until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from api.app import create_app
from streams.settings import Settings


async def serve(settings: Settings) -> None:
    runner = web.AppRunner(create_app(settings), handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.api.host, settings.api.port)
        await site.start()
        host, port = runner.addresses[0][:2]
        print(f"Tributary API listening on http://{host}:{port}", flush=True)
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stopping.set)
        await stopping.wait()
        print("Tributary API shutting down", flush=True)
    finally:
        # Finishes in-flight requests, then closes the producer (flushing it), Redis and the pool.
        await runner.cleanup()


def main() -> None:
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
