"""Run the whole pipeline in the foreground: the Faust worker and the API, side by side.

`make dev` calls this after the stack is up and migrated. It prints where everything listens once
it really answers, and on Ctrl-C (or when either process dies) stops both processes and then the
services that `stack/stackctl.py start` started.
"""

from __future__ import annotations

import signal
import subprocess
import sys
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


def _wait_until_ready(processes: dict[str, subprocess.Popen[bytes]], urls: dict[str, str]) -> None:
    deadline = time.monotonic() + READY_DEADLINE_S
    pending = dict(urls)
    while pending:
        for name, process in processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode} while starting")
        for name, url in list(pending.items()):
            if _answers(url):
                print(f"  {name:<7} ready: {url}", flush=True)
                del pending[name]
        if time.monotonic() > deadline:
            raise RuntimeError(f"not ready after {READY_DEADLINE_S:.0f}s: {', '.join(pending)}")
        time.sleep(0.25)


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


def main() -> int:
    settings = Settings()
    api_url = f"http://{settings.api.host}:{settings.api.port}"
    worker_url = f"http://{settings.worker.web_host}:{settings.worker.web_port}"
    processes = {
        "worker": subprocess.Popen([sys.executable, "-m", "agents"], cwd=REPO),
        "api": subprocess.Popen([sys.executable, "-m", "api"], cwd=REPO),
    }
    status = 0
    try:
        _wait_until_ready(
            processes, {"api": f"{api_url}/health/ready", "worker": f"{worker_url}/tables/"}
        )
        print(
            f"\nTributary is running (Kafka {settings.kafka.bootstrap}).\n"
            f"  API        {api_url}   (POST /v1/webhooks/orders, GET /v1/orders/{{id}})\n"
            f"  worker web {worker_url}   (GET /tables/orders/{{key}}/)\n"
            "Press Ctrl-C to stop everything.",
            flush=True,
        )
        while all(process.poll() is None for process in processes.values()):
            time.sleep(0.5)
        print("a pipeline process exited; stopping the rest", flush=True)
        status = 1
    except KeyboardInterrupt:
        print("\nstopping…", flush=True)
    except RuntimeError as exc:
        print(f"the pipeline did not start: {exc}", flush=True)
        status = 1
    finally:
        _stop(processes)
        subprocess.run([sys.executable, str(REPO / "stack" / "stackctl.py"), "stop"], check=False)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
