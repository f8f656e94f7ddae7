"""How the project gets installed, checked as text (no Docker engine here, and `make install` is
too slow for a unit test): the Makefile and the Dockerfile take every dependency from the lock
file and then the project without resolving again, and the image runs the wheel, whose packages
are the project's less the provider sandbox, a test double that stays where `python -m sandbox`
finds it."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]
LOCK = "requirements.lock"
FIND = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"][
    "find"
]
WHEEL_PACKAGES = {pattern.removesuffix("*") for pattern in FIND["include"]}
# The provider sandbox (a test double) and the tests: packages of the repository, not shipped.
NOT_SHIPPED = {"sandbox", "tests"}


def _instructions() -> list[tuple[str, list[str]]]:
    """The Dockerfile's instructions, continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split()[0], shlex.split(line)[1:])
        for line in lines
        if line and not line.startswith("#")
    ]


def _workdir() -> str:
    [workdir] = [args[0] for op, args in _instructions() if op == "WORKDIR"]
    return workdir


def _copies() -> dict[str, str]:
    """Source -> destination inside the image, relative destinations made absolute."""
    copies: dict[str, str] = {}
    for op, args in _instructions():
        if op == "COPY":
            *sources, destination = args
            if not destination.startswith("/"):
                destination = f"{_workdir()}/{destination.removeprefix('./')}"
            for source in sources:
                copies[source] = destination
    return copies


def _pip_installs() -> list[list[str]]:
    return [
        args[args.index("install") + 1 :]
        for op, args in _instructions()
        if op == "RUN" and args[:2] == ["pip", "install"]
    ]


def test_the_wheel_holds_every_package_of_the_repository_but_the_sandbox_and_tests() -> None:
    packages = {path.parent.name for path in REPO.glob("*/__init__.py")}
    assert packages - NOT_SHIPPED == WHEEL_PACKAGES
    assert "sandbox" not in WHEEL_PACKAGES


def test_the_image_installs_the_lock_file_then_the_project_without_dependencies() -> None:
    dependencies, project = _pip_installs()
    assert dependencies == ["--no-cache-dir", "--require-hashes", "-r", LOCK]
    assert _copies()[LOCK] == f"{_workdir()}/"
    assert "--no-deps" in project
    assert "-e" not in project


def test_the_image_builds_the_wheel_from_every_package_outside_its_working_directory() -> None:
    [*_, build_dir] = _pip_installs()[1]
    copies = _copies()
    for package in WHEEL_PACKAGES:
        assert copies.get(package) == f"{build_dir}/{package}", f"{package} not in the build"
    assert not build_dir.startswith(_workdir()), "the sources would shadow the installed wheel"


def test_the_image_keeps_the_sandbox_where_python_m_sandbox_finds_it() -> None:
    # `python -m` puts the working directory first on sys.path (unless PYTHONSAFEPATH is set).
    assert _copies()["sandbox"] == f"{_workdir()}/sandbox"
    assert "PYTHONSAFEPATH" not in (REPO / "Dockerfile").read_text()
    sandbox = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]["sandbox"]
    assert sandbox["command"] == ["python", "-m", "sandbox"]
    assert "working_dir" not in sandbox


def test_make_installs_the_lock_file_then_the_project_without_dependencies() -> None:
    makefile = (REPO / "Makefile").read_text()
    assert re.search(rf"^LOCK := {re.escape(LOCK)}$", makefile, re.M)
    rule = re.search(r"^\$\(STAMP\): (.*)\n((?:\t.*\n)+)", makefile, re.M)
    assert rule is not None
    assert "$(LOCK)" in rule.group(1).split(), "a new lock file would not reinstall"
    installs = [
        line.split("pip install", 1)[1].split()
        for line in rule.group(2).splitlines()
        if "pip install" in line and "--upgrade pip" not in line
    ]
    assert [args[-3:] for args in installs] == [
        ["--require-hashes", "-r", "$(LOCK)"],
        ["--no-deps", "-e", "."],
    ]
    assert re.search(r"^lock:", makefile, re.M), "no target regenerates the lock file"
