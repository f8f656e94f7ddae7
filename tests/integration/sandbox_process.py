"""The provider sandbox (`python -m sandbox`) as a child process for integration tests.

Shared by every test package that sends notifications through it (the sandbox's own tests,
dispatch, the end-to-end notification tests). `make_sandbox_settings` gives it free ports and a
receipt secret; `SandboxProcess` starts it with those settings as `TRIBUTARY_*` variables and
waits until `GET /_sandbox/health` answers.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from streams.faust_app import free_port
from streams.settings import Settings

REPO = Path(__file__).resolve().parents[2]
START_DEADLINE_S = 30.0
STOP_DEADLINE_S = 10.0


def sandbox_env(settings: Settings) -> dict[str, str]:
    """The `TRIBUTARY_*` variables that give a child process `settings`' sandbox section and
    receipt secret."""
    env = {"TRIBUTARY_LOG_LEVEL": settings.log_level}
    for field, value in settings.sandbox.model_dump().items():
        env[f"TRIBUTARY_SANDBOX_{field.upper()}"] = str(value)
    secret = settings.webhook.secret_providers
    if secret is not None:
        env["TRIBUTARY_WEBHOOK_SECRET_PROVIDERS"] = secret.get_secret_value()
    return env


def make_sandbox_settings(base: Settings, api_url: str, **sandbox: Any) -> Settings:
    """`base` with a sandbox on free ports posting receipts to `api_url`, a fresh receipt
    secret unless `base` has one, and a short `slow_s`; `sandbox` overrides any of it."""
    host = base.sandbox.host
    section = base.sandbox.model_copy(
        update={
            "http_port": free_port(host),
            "smtp_port": free_port(host),
            "api_url": api_url,
            "slow_s": 1.0,
            **sandbox,
        }
    )
    secret = base.webhook.secret_providers or SecretStr(
        "whsec_" + base64.b64encode(uuid.uuid4().bytes * 2).decode()
    )
    webhook = base.webhook.model_copy(update={"secret_providers": secret})
    return base.model_copy(update={"sandbox": section, "webhook": webhook})


def _inherited_env() -> dict[str, str]:
    """This process's environment without a receipt secret (e.g. the Makefile's): the child
    gets the one in its settings, or none."""
    return {k: v for k, v in os.environ.items() if k != "TRIBUTARY_WEBHOOK_SECRET_PROVIDERS"}


class SandboxProcess:
    """`python -m sandbox` as a child process, its output collected in a log file."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.settings = settings
        self.log_path = log_path
        config = settings.sandbox
        self.http_url = f"http://{config.host}:{config.http_port}"
        self.smtp_host = config.host
        self.smtp_port = config.smtp_port
        with log_path.open("wb") as log_file:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "sandbox"],
                cwd=REPO,
                env={**_inherited_env(), **sandbox_env(settings), "PYTHONUNBUFFERED": "1"},
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.http_url}/_sandbox/health", timeout=1) as answer:  # noqa: S310 - our own URL
                return bool(answer.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_DEADLINE_S
        while not self._answers():
            if self.process.poll() is not None:
                pytest.fail(
                    f"sandbox exited with {self.process.returncode} before it was ready:\n"
                    + self.log_tail(),
                    pytrace=False,
                )
            if time.monotonic() > deadline:
                pytest.fail(
                    f"sandbox not ready within {START_DEADLINE_S} s:\n" + self.log_tail(),
                    pytrace=False,
                )
            time.sleep(0.05)

    def stop(self) -> int:
        """SIGTERM; kill only if it does not stop in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_DEADLINE_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@contextmanager
def running_sandbox(settings: Settings, log_path: Path) -> Iterator[SandboxProcess]:
    sandbox = SandboxProcess(settings, log_path)
    try:
        sandbox.wait_ready()
        yield sandbox
    finally:
        sandbox.stop()
