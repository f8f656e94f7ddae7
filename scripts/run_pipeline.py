"""Run the whole pipeline in the foreground: the Faust worker and the API, side by side.

`make dev` calls this after the stack is up and migrated. It prints where everything listens once
it really answers, and on Ctrl-C (or when either process dies) stops both processes and then the
services that `stack/stackctl.py start` started.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from streams.api_keys import SCOPES
from streams.settings import Settings
from streams.stores.api_key_store import ApiKeyStore

REPO = Path(__file__).resolve().parents[1]
# The development key of the running `make dev` (every scope), for the README's curl lines.
DEV_KEY_FILE = REPO / ".stack" / "dev-api-key"
READY_DEADLINE_S = 120.0
STOP_GRACE_S = 20.0


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own URL
            return bool(response.status < 500)
    except (urllib.error.URLError, OSError):
        return False


def _wait_until_ready(
    processes: dict[str, subprocess.Popen[bytes]], urls: dict[str, str], stop: threading.Event
) -> None:
    deadline = time.monotonic() + READY_DEADLINE_S
    pending = dict(urls)
    while pending and not stop.is_set():
        for name, process in processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode} while starting")
        for name, url in list(pending.items()):
            if _answers(url):
                print(f"  {name:<7} ready: {url}", flush=True)
                del pending[name]
        if time.monotonic() > deadline:
            raise RuntimeError(f"not ready after {READY_DEADLINE_S:.0f}s: {', '.join(pending)}")
        stop.wait(0.25)


def _stop(processes: dict[str, subprocess.Popen[bytes]]) -> None:
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
    deadline = time.monotonic() + STOP_GRACE_S
    for name, process in processes.items():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"{name} did not stop in {STOP_GRACE_S:.0f}s; killing it", flush=True)
            process.kill()
            process.wait()


async def _create_dev_key(settings: Settings) -> tuple[str, str]:
    store = ApiKeyStore.from_settings(settings.database)
    try:
        key, text = await store.create("make dev", SCOPES)
    finally:
        await store.close()
    return key.id, text


async def _revoke_dev_key(settings: Settings, key_id: str) -> None:
    store = ApiKeyStore.from_settings(settings.database)
    try:
        await store.revoke(key_id)
    finally:
        await store.close()


def _dev_key(settings: Settings) -> str:
    """A key with every scope for this run (revoked when it stops), printed and written to
    `.stack/dev-api-key` (readable by its owner only)."""
    key_id, text = asyncio.run(_create_dev_key(settings))
    DEV_KEY_FILE.parent.mkdir(parents=True, exist_ok=True)
    DEV_KEY_FILE.touch(mode=0o600)
    DEV_KEY_FILE.write_text(text + "\n")
    print(
        f"  dev key    {text}\n"
        f"             (every scope, this run only; also in {DEV_KEY_FILE.relative_to(REPO)}:\n"
        "              export TRIBUTARY_API_KEY=$(cat .stack/dev-api-key))",
        flush=True,
    )
    return key_id


def _announce(settings: Settings, api_url: str, worker_url: str) -> None:
    print(
        f"\nTributary is running (Kafka {settings.kafka.bootstrap}).\n"
        f"  API        {api_url}   (POST /v1/webhooks/..., GET /v1/orders/{{id}} with a key)\n"
        f"  worker web {worker_url}   (GET /v1/tables, /v1/tables/orders/{{key}}, /metrics)\n"
        "Press Ctrl-C to stop everything.",
        flush=True,
    )


def main() -> int:
    # A development tool: its processes (which inherit this environment) accept the
    # development secrets the Makefile publishes, as under `make dev`.
    os.environ.setdefault("TRIBUTARY_ENV", "dev")
    settings = Settings()
    api_url = f"http://{settings.api.host}:{settings.api.port}"
    worker_url = f"http://{settings.worker.web_host}:{settings.worker.web_port}"
    processes = {
        "worker": subprocess.Popen([sys.executable, "-m", "agents"], cwd=REPO),
        "api": subprocess.Popen([sys.executable, "-m", "api"], cwd=REPO),
        # The provider sandbox: notifications are sent to it and it posts receipts to the API.
        "sandbox": subprocess.Popen([sys.executable, "-m", "sandbox"], cwd=REPO),
    }
    # Ctrl-C reaches the whole process group: the children stop on their own, and this process
    # only has to notice, wait for them, and stop the stack.
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    status = 0
    dev_key_id: str | None = None
    try:
        urls = {"api": f"{api_url}/health/ready", "worker": f"{worker_url}/health/ready"}
        urls["sandbox"] = (
            f"http://{settings.sandbox.host}:{settings.sandbox.http_port}/_sandbox/health"
        )
        _wait_until_ready(processes, urls, stop)
        if not stop.is_set():
            _announce(settings, api_url, worker_url)
            if settings.env == "dev":
                dev_key_id = _dev_key(settings)
        while not stop.is_set() and all(p.poll() is None for p in processes.values()):
            stop.wait(0.5)
        if stop.is_set():
            print("\nstopping…", flush=True)
        else:
            print("a pipeline process exited; stopping the rest", flush=True)
            status = 1
    except RuntimeError as exc:
        print(f"the pipeline did not start: {exc}", flush=True)
        status = 1
    finally:
        _stop(processes)
        if dev_key_id is not None:
            asyncio.run(_revoke_dev_key(settings, dev_key_id))
            DEV_KEY_FILE.unlink(missing_ok=True)
        subprocess.run([sys.executable, str(REPO / "stack" / "stackctl.py"), "stop"], check=False)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
