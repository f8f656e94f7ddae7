"""`python -m sandbox`: serve the provider sandbox until SIGINT or SIGTERM."""

from __future__ import annotations

from collections.abc import Callable

from sandbox.server import READY_MESSAGE, serve_sandbox
from streams.service_process import run_service, wait_for_stop_signal
from streams.settings import SandboxProcessSettings


async def serve(settings: SandboxProcessSettings) -> None:
    async with serve_sandbox(settings.sandbox, settings.webhook.secret_providers) as serving:
        print(
            f"{READY_MESSAGE}: http {serving.http_url}, "
            f"smtp {serving.smtp_host}:{serving.smtp_port}, "
            f"receipts to {settings.sandbox.api_url}",
            flush=True,
        )
        await wait_for_stop_signal()
        print("Tributary provider sandbox shutting down", flush=True)


def main(start: Callable[..., None] = run_service) -> None:
    """Serve with this process's own root (`start`, for tests)."""
    start(SandboxProcessSettings, serve)


if __name__ == "__main__":
    main()
