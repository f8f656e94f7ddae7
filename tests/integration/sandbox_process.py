"""The provider sandbox (`python -m sandbox`) as a child process for integration tests.

Shared by every test package that sends notifications through it (the sandbox's own tests,
dispatch, the end-to-end notification tests). `make_sandbox_settings` gives it free ports and a
receipt secret; `SandboxProcess` starts it with those settings as `TRIBUTARY_*` variables and
waits until `GET /_sandbox/health` answers.
"""

from __future__ import annotations

import base64
import os
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from streams.runtime import free_port
from streams.settings import Settings
from tests.integration.child_process import ChildProcess


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


class SandboxProcess(ChildProcess):
    """`python -m sandbox` as a child process, its output collected in a log file."""

    name = "sandbox"

    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.settings = settings
        config = settings.sandbox
        self.http_url = f"http://{config.host}:{config.http_port}"
        self.smtp_host = config.host
        self.smtp_port = config.smtp_port
        super().__init__("sandbox", {**_inherited_env(), **sandbox_env(settings)}, log_path)

    def is_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.http_url}/_sandbox/health", timeout=1) as answer:  # noqa: S310 - our own URL
                return bool(answer.status == 200)
        except (urllib.error.URLError, OSError):
            return False


@contextmanager
def running_sandbox(settings: Settings, log_path: Path) -> Iterator[SandboxProcess]:
    with SandboxProcess(settings, log_path).running() as sandbox:
        yield sandbox
