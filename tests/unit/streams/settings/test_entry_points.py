"""Each process builds its own settings root once, at its entry point, and passes it down."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

import agents.__main__ as worker_main
import api.__main__ as api_main
import sandbox.__main__ as sandbox_main
import streams.cli as cli
from streams.cli import Console
from streams.migrations import runner
from streams.service_process import run_service
from streams.settings import (
    ApiProcessSettings,
    CliProcessSettings,
    DatabaseSettings,
    SandboxProcessSettings,
    WorkerProcessSettings,
)


def test_the_worker_builds_the_worker_root(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[Any] = []
    monkeypatch.setattr(worker_main, "run", built.append)
    worker_main.main()
    assert [type(settings) for settings in built] == [WorkerProcessSettings]


@pytest.mark.parametrize(
    ("entry", "root"),
    [(api_main, ApiProcessSettings), (sandbox_main, SandboxProcessSettings)],
    ids=["api", "sandbox"],
)
def test_services_build_their_own_root(
    entry: Any, root: type[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[tuple[Any, Any]] = []
    monkeypatch.setattr(entry, "run_service", lambda root, serve: started.append((root, serve)))
    entry.main()
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
    monkeypatch.setattr(runner, "upgrade", lambda db, rev: upgraded.append((db, rev)))
    assert runner.main(["0002"]) == 0
    [(database, revision)] = upgraded
    assert database.url.get_secret_value() == "postgresql+asyncpg://u:p@db/x"
    assert revision == "0002"


async def test_the_cli_builds_the_cli_root_and_applies_the_prefix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[CliProcessSettings] = []

    async def dispatch(
        args: argparse.Namespace, settings: CliProcessSettings, console: Console, output: Any
    ) -> int:
        seen.append(settings)
        return 0

    monkeypatch.setattr(cli, "_dispatch", dispatch)
    assert await cli.run(["--prefix", "t9-", "topics", "list"]) == 0
    [settings] = seen
    assert type(settings) is CliProcessSettings
    assert settings.topic_prefix == "t9-"
