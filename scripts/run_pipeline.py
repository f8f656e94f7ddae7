"""Run the whole pipeline in the foreground: the Faust worker and the API, side by side.

`make dev` calls this after the stack is up and migrated. It prints where everything listens once
it really answers, and on Ctrl-C (or when either process dies) stops both processes and then the
services that `stack/stackctl.py start` started.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from streams.settings import Settings

REPO = Path(__file__).resolve().parents[1]
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


def _announce(settings: Settings, api_url: str, worker_url: str) -> None:
    print(
        f"\nTributary is running (Kafka {settings.kafka.bootstrap}).\n"
        f"  API        {api_url}   (POST /v1/webhooks/..., GET /v1/orders/{{id}})\n"
        f"  worker web {worker_url}   (GET /v1/tables, /v1/tables/orders/{{key}}, /metrics)\n"
        "Press Ctrl-C to stop everything.",
        flush=True,
    )


def main() -> int:
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
    try:
        urls = {"api": f"{api_url}/health/ready", "worker": f"{worker_url}/health/ready"}
        urls["sandbox"] = (
            f"http://{settings.sandbox.host}:{settings.sandbox.http_port}/_sandbox/health"
        )
        _wait_until_ready(processes, urls, stop)
        if not stop.is_set():
            _announce(settings, api_url, worker_url)
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
        subprocess.run([sys.executable, str(REPO / "stack" / "stackctl.py"), "stop"], check=False)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
