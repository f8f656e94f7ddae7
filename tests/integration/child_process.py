"""A Tributary entry point (`python -m <module>`) as a child process of an integration test.

The worker and the provider sandbox are started, waited on and stopped the same way; only how
each says it is ready differs (`is_ready`).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Self

import pytest

from tests.integration.conftest import REPO


class ChildProcess:
    """`python -m <module>` with `env`, its output collected in a log file."""

    name = "child"
    start_deadline_s = 30.0
    stop_deadline_s = 10.0
    poll_interval_s = 0.05

    def __init__(self, module: str, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self.started_s = time.monotonic()
        self.ready_after_s: float | None = None
        with log_path.open("wb") as log_file:
            self.process = subprocess.Popen(
                [sys.executable, "-m", module],
                cwd=REPO,
                env={**env, "PYTHONUNBUFFERED": "1"},
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )

    def log_tail(self, chars: int = 6000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def is_ready(self) -> bool:
        raise NotImplementedError

    def wait_ready(self) -> None:
        """Poll `is_ready` until the deadline; fail with the log if the process exits first."""
        deadline = time.monotonic() + self.start_deadline_s
        while not self.is_ready():
            if self.process.poll() is not None:
                pytest.fail(
                    f"{self.name} exited with {self.process.returncode} before it was ready:\n"
                    + self.log_tail(),
                    pytrace=False,
                )
            if time.monotonic() > deadline:
                pytest.fail(
                    f"{self.name} not ready within {self.start_deadline_s} s:\n" + self.log_tail(),
                    pytrace=False,
                )
            time.sleep(self.poll_interval_s)
        self.ready_after_s = time.monotonic() - self.started_s

    @contextmanager
    def running(self, *, must_exit_cleanly: bool = False, ready: bool = True) -> Iterator[Self]:
        """Ready for the block (unless `ready` is False: then the block waits when it needs to),
        stopped after it, however it ends; with `must_exit_cleanly`, a non-zero exit on SIGTERM
        fails the test."""
        try:
            if ready:
                self.wait_ready()
            yield self
        finally:
            returncode = self.stop()
        if must_exit_cleanly and returncode != 0:
            pytest.fail(f"{self.name} exited with {returncode} on SIGTERM:\n{self.log_tail()}")

    def stop(self) -> int:
        """SIGTERM, as an orchestrator would; kill only if it does not stop in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=self.stop_deadline_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode
