"""Each process builds its own settings root once, at its entry point, and passes it down."""

from __future__ import annotations

from typing import Any

import pytest

import agents.__main__ as worker_main
import api.__main__ as api_main
import sandbox.__main__ as sandbox_main
from streams.cli import cli_settings
from streams.migrations import runner
from streams.service_process import run_service
from streams.settings import (
    ApiProcessSettings,
    CliProcessSettings,
    DatabaseSettings,
    SandboxProcessSettings,
    WorkerProcessSettings,
)


def test_the_worker_builds_the_worker_root() -> None:
    built: list[Any] = []
    worker_main.main(start=built.append)
    assert [type(settings) for settings in built] == [WorkerProcessSettings]


@pytest.mark.parametrize(
    ("entry", "root"),
    [(api_main, ApiProcessSettings), (sandbox_main, SandboxProcessSettings)],
    ids=["api", "sandbox"],
)
def test_services_build_their_own_root(entry: Any, root: type[Any]) -> None:
    started: list[tuple[Any, Any]] = []
    entry.main(start=lambda root, serve: started.append((root, serve)))
    assert started == [(root, entry.serve)]


def test_run_service_builds_the_root_once_and_serves_with_it() -> None:
    served: list[SandboxProcessSettings] = []

    async def serve(settings: SandboxProcessSettings) -> None:
        served.append(settings)

    run_service(SandboxProcessSettings, serve)
    assert [type(settings) for settings in served] == [SandboxProcessSettings]


def test_the_migrations_read_only_the_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIBUTARY_DATABASE_URL", "postgresql+asyncpg://u:p@db/x")
    upgraded: list[tuple[DatabaseSettings, str]] = []
    assert runner.main(["0002"], migrate=lambda db, rev: upgraded.append((db, rev))) == 0
    [(database, revision)] = upgraded
    assert database.url.get_secret_value() == "postgresql+asyncpg://u:p@db/x"
    assert revision == "0002"


def test_the_cli_builds_the_cli_root_and_applies_the_prefix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRIBUTARY_TOPIC_PREFIX", "env-")
    settings = cli_settings(None, "t9-")
    assert type(settings) is CliProcessSettings
    assert settings.topic_prefix == "t9-"
    assert cli_settings(None, None).topic_prefix == "env-"
