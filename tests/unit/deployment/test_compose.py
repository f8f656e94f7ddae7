"""docker-compose.yml cannot be run here (no Docker engine), so what can drift is checked as text:
the broker version it pins and the settings it passes to our processes, each service's against
the settings root of the process its command runs."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, SecretStr

from streams.settings import (
    ApiProcessSettings,
    MigrationsProcessSettings,
    ProcessSettings,
    SandboxProcessSettings,
    WorkerProcessSettings,
    WorkerSettings,
)

REPO = Path(__file__).resolve().parents[3]
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
OUR_SERVICES = ("migrate", "worker", "api", "sandbox")
# The module each service runs (`python -m <module>`) and the root that process builds.
ROOTS: dict[str, type[ProcessSettings]] = {
    "streams.migrations": MigrationsProcessSettings,
    "agents": WorkerProcessSettings,
    "api": ApiProcessSettings,
    "sandbox": SandboxProcessSettings,
}


def _expand(value: str) -> str:
    """Compose's `${NAME:?message}` (required), as a value of its own per variable (the
    environment is not ours to read)."""
    return re.sub(r"\$\{([A-Z_]+):\?[^}]*\}", lambda found: f"set-{found.group(1)}", value)


def test_no_variable_of_ours_falls_back_to_a_default() -> None:
    """A secret with a fallback in compose would be a working default credential."""
    text = (REPO / "docker-compose.yml").read_text()
    assert ":-" not in "".join(re.findall(r"\$\{[^}]*\}", text))
    for service in OUR_SERVICES:
        for name, value in COMPOSE["services"][service]["environment"].items():
            if any(part in name for part in ("SECRET", "TOKEN", "API_KEY")):
                assert str(value).startswith("${"), f"{service}: {name} is written in compose"


def _environment(service: str) -> dict[str, str]:
    env: dict[str, Any] = COMPOSE["services"][service]["environment"]
    return {name: _expand(str(value)) for name, value in env.items()}


def test_compose_runs_the_kafka_version_the_local_stack_runs() -> None:
    pom = (REPO / "stack" / "kafka" / "pom.xml").read_text()
    version = re.search(r"<kafka.version>([^<]+)</kafka.version>", pom)
    assert version is not None
    assert COMPOSE["services"]["kafka"]["image"] == f"apache/kafka:{version.group(1)}"


def _root(service: str) -> type[ProcessSettings]:
    python, flag, module = COMPOSE["services"][service]["command"]
    assert (python, flag) == ("python", "-m")
    return ROOTS[module]


def _setting(settings: ProcessSettings, variable: str) -> Any:
    """The value `variable` sets in this root: `TRIBUTARY_<SECTION>_<FIELD>` or a top-level
    field; a variable for a section (or field) the root does not have sets nothing."""
    name = variable.removeprefix("TRIBUTARY_").lower()
    section, _, field = name.partition("_")
    value: Any = getattr(settings, section, None)
    if isinstance(value, BaseModel) and field in type(value).model_fields:
        value = getattr(value, field)
    elif name in type(settings).model_fields:
        value = getattr(settings, name)
    else:
        raise AssertionError(f"{variable} matches no setting of {type(settings).__name__}")
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _settings_of(service: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The root of the service's process, as it reads the service's environment (only)."""
    for name in [name for name in os.environ if name.startswith("TRIBUTARY_")]:
        monkeypatch.delenv(name)
    for name, value in _environment(service).items():
        monkeypatch.setenv(name, value)
    return _root(service)()


@pytest.mark.parametrize("service", OUR_SERVICES)
def test_every_service_runs_a_process_with_a_settings_root(service: str) -> None:
    assert _root(service) in ROOTS.values()


@pytest.mark.parametrize("service", OUR_SERVICES)
def test_every_variable_reaches_a_setting_of_the_services_root(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing a service is given is lost on its process: a variable meant for another process
    (a webhook secret on the worker, Kafka on the migrations) fails here."""
    env = _environment(service)
    settings = _settings_of(service, monkeypatch)
    for name, value in env.items():
        assert _text(_setting(settings, name)) == value, f"{service}: {name} did not take effect"


def test_the_worker_sends_to_the_sandbox_service(monkeypatch: pytest.MonkeyPatch) -> None:
    providers = _settings_of("worker", monkeypatch).providers
    sandbox = COMPOSE["services"]["sandbox"]["environment"]
    http = f"http://sandbox:{sandbox['TRIBUTARY_SANDBOX_HTTP_PORT']}"
    base_urls = {
        providers.sendgrid_base_url,
        providers.twilio_base_url,
        providers.fcm_base_url,
        providers.meta_base_url,
    }
    assert base_urls == {http}
    assert (providers.smtp_host, providers.smtp_port) == (
        "sandbox",
        int(sandbox["TRIBUTARY_SANDBOX_SMTP_PORT"]),
    )
    assert providers.twilio_status_callback_url.startswith(f"{_api_url(monkeypatch)}/")


def _api_url(monkeypatch: pytest.MonkeyPatch) -> str:
    return f"http://api:{_settings_of('api', monkeypatch).api.port}"


def test_the_sandbox_listens_on_all_interfaces_and_posts_receipts_to_the_api(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api_url = _api_url(monkeypatch)
    sandbox = _settings_of("sandbox", monkeypatch).sandbox
    assert sandbox.host == "0.0.0.0"
    assert sandbox.api_url == api_url
    published = {port.split(":")[-1] for port in COMPOSE["services"]["sandbox"]["ports"]}
    assert published == {str(sandbox.http_port), str(sandbox.smtp_port)}


@pytest.mark.parametrize(
    ("variable", "services"),
    [
        # The sandbox signs receipts with the secret the API verifies them with.
        ("TRIBUTARY_WEBHOOK_SECRET_PROVIDERS", ("sandbox", "api")),
        # One operator token for the worker's table views and the API's block lifting.
        ("TRIBUTARY_OPERATOR_TOKEN", ("worker", "api")),
    ],
)
def test_services_that_talk_share_their_secret(variable: str, services: tuple[str, ...]) -> None:
    values = {_environment(service).get(variable) for service in services}
    assert len(values) == 1
    assert None not in values


@pytest.mark.parametrize("service", OUR_SERVICES)
def test_our_services_are_built_from_the_repository(service: str) -> None:
    assert COMPOSE["services"][service]["build"] == "."
    assert (REPO / "Dockerfile").is_file()


def test_the_worker_and_the_api_are_healthy_only_when_their_readiness_probe_answers() -> None:
    worker_port = WorkerSettings.model_fields["web_port"].default
    expected = {
        "worker": f"http://127.0.0.1:{worker_port}/health/ready",
        "api": "http://127.0.0.1:8080/health/ready",
    }
    for service, url in expected.items():
        probe = " ".join(COMPOSE["services"][service]["healthcheck"]["test"])
        assert url in probe, service
    waits_for = COMPOSE["services"]["prometheus"]["depends_on"]
    assert waits_for["worker"] == {"condition": "service_healthy"}


def test_docker_gives_a_stopping_worker_longer_than_its_own_stop_deadline() -> None:
    """Docker kills a container 10 s after SIGTERM unless told otherwise: a worker killed part
    way through its stop has not committed or left its group."""
    grace = COMPOSE["services"]["worker"]["stop_grace_period"]
    assert re.fullmatch(r"\d+s", grace), grace
    assert int(grace.removesuffix("s")) > WorkerSettings().stop_timeout_s
