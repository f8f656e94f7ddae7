"""`python -m api`: serve the API on `settings.api.host`/`port` until SIGINT or SIGTERM."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from api.access_log import StructuredAccessLogger
from api.app import create_app
from streams.service_process import run_service, wait_for_stop_signal
from streams.settings import ApiProcessSettings


async def serve(settings: ApiProcessSettings) -> None:
    runner = web.AppRunner(
        create_app(settings), handle_signals=False, access_log_class=StructuredAccessLogger
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.api.host, settings.api.port)
        await site.start()
        host, port = runner.addresses[0][:2]
        print(f"Tributary API listening on http://{host}:{port}", flush=True)
        await wait_for_stop_signal()
        print("Tributary API shutting down", flush=True)
    finally:
        # Finishes in-flight requests, then closes the producer (flushing it), Redis and the pool.
        await runner.cleanup()


def main(start: Callable[..., None] = run_service) -> None:
    """Serve with this process's own root (`start`, for tests)."""
    start(ApiProcessSettings, serve)


if __name__ == "__main__":
    main()
