"""`python -m sandbox` starts on its own, answers health, and stops cleanly on SIGTERM; without
a receipt secret it still serves sends and says it posts no receipts."""

from __future__ import annotations

import urllib.request
from pathlib import Path

from streams.settings import Settings
from tests.integration.sandbox_process import SandboxProcess, make_sandbox_settings


def test_starts_serves_and_stops_cleanly(tmp_path: Path) -> None:
    settings = make_sandbox_settings(Settings(), "http://127.0.0.1:9")
    process = SandboxProcess(settings, tmp_path / "sandbox.log")
    try:
        process.wait_ready()
        with urllib.request.urlopen(f"{process.http_url}/_sandbox/health", timeout=5) as answer:  # noqa: S310 - our own URL
            assert answer.status == 200
    finally:
        assert process.stop() == 0
    log = process.log_path.read_text()
    assert "Tributary provider sandbox ready" in log
    assert f"smtp 127.0.0.1:{settings.sandbox.smtp_port}" in log
    assert "Traceback" not in log


def test_without_a_secret_no_receipts_are_posted(tmp_path: Path) -> None:
    base = Settings()
    settings = make_sandbox_settings(base, "http://127.0.0.1:9")
    webhook = settings.webhook.model_copy(update={"secret_providers": None})
    settings = settings.model_copy(update={"webhook": webhook})
    process = SandboxProcess(settings, tmp_path / "sandbox.log")
    try:
        process.wait_ready()
        with urllib.request.urlopen(f"{process.http_url}/_sandbox/health", timeout=5) as answer:  # noqa: S310 - our own URL
            assert b'"receipts": {}' in answer.read()
    finally:
        assert process.stop() == 0
    assert "no receipts will be posted" in process.log_path.read_text()
