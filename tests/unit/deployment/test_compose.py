"""docker-compose.yml cannot be run here (no Docker engine), so what can drift is checked as text:
the broker version it pins and the settings it passes to our processes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.settings import Settings

REPO = Path(__file__).resolve().parents[3]
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
OUR_SERVICES = ("migrate", "worker", "api")


def _expand(value: str) -> str:
    """Compose's `${NAME:-default}`, taking the default (the environment is not ours to read)."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def _environment(service: str) -> dict[str, str]:
    env: dict[str, Any] = COMPOSE["services"][service]["environment"]
    return {name: _expand(str(value)) for name, value in env.items()}


def test_compose_runs_the_kafka_version_the_local_stack_runs() -> None:
    pom = (REPO / "stack" / "kafka" / "pom.xml").read_text()
    version = re.search(r"<kafka.version>([^<]+)</kafka.version>", pom)
    assert version is not None
    assert COMPOSE["services"]["kafka"]["image"] == f"apache/kafka:{version.group(1)}"


@pytest.mark.parametrize("service", OUR_SERVICES)
def test_every_variable_reaches_a_setting(service: str, monkeypatch: pytest.MonkeyPatch) -> None:
    env = _environment(service)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    dumped = Settings().model_dump(mode="json")
    flat: dict[str, Any] = {}
    for key, value in dumped.items():
        if isinstance(value, dict):
            flat.update({f"{key}_{field}".upper(): v for field, v in value.items()})
        else:
            flat[key.upper()] = value
    for name, value in env.items():
        field = name.removeprefix("TRIBUTARY_")
        assert field in flat, f"{service}: {name} matches no setting"
        if "SECRET" not in field and "URL" not in field:
            assert str(flat[field]) == value, f"{service}: {name} did not take effect"


@pytest.mark.parametrize("service", OUR_SERVICES)
def test_our_services_are_built_from_the_repository(service: str) -> None:
    assert COMPOSE["services"][service]["build"] == "."
    assert (REPO / "Dockerfile").is_file()
