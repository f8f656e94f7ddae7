"""The version gate refuses any faust-streaming, mode-streaming or aiokafka but the suite's, and
its versions cannot drift from the pins in pyproject.toml and the lock file."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from streams.errors import TributaryError, UnsupportedRuntimeError
from streams.runtime.versions import (
    INSTALL_COMMAND,
    LOCK_FILE,
    SUITE_VERSIONS,
    check_runtime_versions,
    installed_version,
)

REPO = Path(__file__).resolve().parents[4]


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_suite_versions_pass() -> None:
    check_runtime_versions(dict(SUITE_VERSIONS).get)


def test_another_version_refuses_naming_the_distribution_both_versions_and_the_fix() -> None:
    found = {**SUITE_VERSIONS, "aiokafka": "0.15.0"}
    with pytest.raises(UnsupportedRuntimeError) as refused:
        check_runtime_versions(found.get)
    message = str(refused.value)
    assert "aiokafka 0.15.0 is installed, 0.14.0 expected" in message
    assert INSTALL_COMMAND in message
    assert "faust-streaming" not in message
    assert isinstance(refused.value, TributaryError)


def test_every_wrong_or_missing_distribution_is_named() -> None:
    found = {"faust-streaming": "0.16.0", "aiokafka": SUITE_VERSIONS["aiokafka"]}
    with pytest.raises(UnsupportedRuntimeError) as refused:
        check_runtime_versions(found.get)
    message = str(refused.value)
    assert f"faust-streaming 0.16.0 is installed, {SUITE_VERSIONS['faust-streaming']}" in message
    assert f"mode-streaming is not installed, {SUITE_VERSIONS['mode-streaming']}" in message
    assert "aiokafka" not in message


def test_this_environment_runs_the_suite_versions() -> None:
    check_runtime_versions()


def test_a_distribution_that_is_not_installed_has_no_version() -> None:
    assert installed_version("tributary-no-such-distribution") is None


def test_pyproject_pins_exactly_the_suite_versions() -> None:
    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    pins: dict[str, str] = {}
    for requirement in dependencies:
        pinned = re.fullmatch(r"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^\s;,]+)", requirement)
        if pinned is not None:
            pins[_canonical(pinned.group(1))] = pinned.group(2)
    assert {name: pins.get(name) for name in SUITE_VERSIONS} == dict(SUITE_VERSIONS)


def test_the_lock_file_holds_the_suite_versions() -> None:
    lock = (REPO / LOCK_FILE).read_text()
    locked = {
        _canonical(name): version
        for name, version in re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", lock, re.M)
    }
    assert {name: locked.get(name) for name in SUITE_VERSIONS} == dict(SUITE_VERSIONS)
    assert f"-r {LOCK_FILE}" in INSTALL_COMMAND
