"""`python -m sandbox`: serve the provider sandbox until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal

from sandbox.server import READY_MESSAGE, serve_sandbox
from streams.settings import Settings


async def serve(settings: Settings) -> None:
    async with serve_sandbox(settings) as serving:
        print(
            f"{READY_MESSAGE}: http {serving.http_url}, "
            f"smtp {serving.smtp_host}:{serving.smtp_port}, "
            f"receipts to {settings.sandbox.api_url}",
            flush=True,
        )
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stopping.set)
        await stopping.wait()
        print("Tributary provider sandbox shutting down", flush=True)


def main() -> None:
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
