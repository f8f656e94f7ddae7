"""stack/stackctl.py run from a clone inside a 0700 directory (a home directory, as `git clone`
as root leaves it), on ports of its own so that the shared stack is never touched: PostgreSQL
starts, a start that fails part-way stops what it had started, and the next start works."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
IS_ROOT = os.geteuid() == 0
ORDINARY_USER = "nobody"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass(frozen=True)
class Clone:
    repo: Path
    shared_dir: Path
    postgres_port: int
    redis_port: int
    # How to run stackctl: as the invoking user, or (root testing an ordinary user) as another.
    command: tuple[str, ...] = (sys.executable,)

    def stackctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if key
            not in {"TRIBUTARY_DATABASE_URL", "TRIBUTARY_REDIS_URL", "TRIBUTARY_KAFKA_BOOTSTRAP"}
        }
        env |= {
            "TRIBUTARY_STACK_POSTGRES_PORT": str(self.postgres_port),
            "TRIBUTARY_STACK_REDIS_PORT": str(self.redis_port),
            "TRIBUTARY_STACK_SHARED_DIR": str(self.shared_dir),
        }
        return subprocess.run(
            [*self.command, str(self.repo / "stack" / "stackctl.py"), *args],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            env=env,
            cwd="/",
        )


@contextmanager
def made_clone(
    owner: str | None = None, command: tuple[str, ...] = (sys.executable,)
) -> Iterator[Clone]:
    """A copy of stack/ in <tmp>/home/clone, home being 0700 (and `owner`'s, if given);
    stopped and removed afterwards."""
    top = Path(tempfile.mkdtemp(prefix="tributary-stack-test-"))
    top.chmod(0o755)
    home = top / "home"
    repo = home / "clone"
    shutil.copytree(REPO / "stack", repo / "stack", ignore=shutil.ignore_patterns("__pycache__"))
    if owner is not None:
        for path in (home, *home.rglob("*")):
            shutil.chown(path, owner)
    home.chmod(0o700)
    shared = Path(tempfile.mkdtemp(prefix="tributary-stack-shared-"))
    made = Clone(repo, shared, free_port(), free_port(), command)
    try:
        yield made
    finally:
        made.stackctl("stop", "--only", "postgres,redis")
        shutil.rmtree(top, ignore_errors=True)
        shutil.rmtree(shared, ignore_errors=True)


@pytest.fixture
def clone() -> Iterator[Clone]:
    with made_clone() as made:
        yield made


def python_for(user: str) -> str:
    """A Python 3.11 that `user` may run (the test's own may live in root's 0700 home)."""
    for candidate in (sys.executable, "/usr/bin/python3.11", "/usr/bin/python3"):
        probe = [
            "runuser",
            "-u",
            user,
            "--",
            candidate,
            "-c",
            "import sys; assert sys.version_info >= (3, 11)",
        ]
        if subprocess.run(probe, capture_output=True, check=False, cwd="/").returncode == 0:
            return candidate
    pytest.fail(f"no Python 3.11 that {user} can run, to start the stack as an ordinary user")


def test_postgres_starts_from_a_clone_inside_a_0700_directory(clone: Clone) -> None:
    started = clone.stackctl("start", "--only", "postgres")

    assert started.returncode == 0, started.stdout + started.stderr
    assert port_open(clone.postgres_port)
    in_clone = clone.repo / ".stack" / "postgres"
    if IS_ROOT:  # postgres cannot reach the clone: its files live outside it, linked from it
        assert in_clone.is_symlink()
        assert clone.shared_dir in in_clone.resolve().parents
    status = clone.stackctl("status", "--only", "postgres")
    assert "postgres  running" in status.stdout
    again = clone.stackctl("start", "--only", "postgres")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already running" in again.stdout
    stopped = clone.stackctl("stop", "--only", "postgres")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert not port_open(clone.postgres_port)


def test_a_start_failing_part_way_stops_what_it_started_and_the_next_start_works(
    clone: Clone,
) -> None:
    with socket.socket() as squatter:  # a foreign process on Redis's port: redis cannot start
        squatter.bind(("127.0.0.1", clone.redis_port))
        squatter.listen()
        failed = clone.stackctl("start", "--only", "postgres,redis")

    assert failed.returncode == 1
    assert "postgres: ready" in failed.stdout
    assert "redis" in failed.stderr
    assert "already in use" in failed.stderr
    assert "stopping what this start had started (postgres)" in failed.stdout
    assert "postgres: stopped" in failed.stdout
    assert not port_open(clone.postgres_port)
    retried = clone.stackctl("start", "--only", "postgres,redis")
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert port_open(clone.postgres_port)
    assert port_open(clone.redis_port)


def test_an_ordinary_user_runs_postgres_as_themselves_in_their_own_0700_clone() -> None:
    if IS_ROOT:  # play an ordinary user: nobody, owning the clone
        command = ("runuser", "-u", ORDINARY_USER, "--", python_for(ORDINARY_USER))
        owner: str | None = ORDINARY_USER
    else:
        command, owner = (sys.executable,), None
    with made_clone(owner, command) as clone:
        started = clone.stackctl("start", "--only", "postgres")

        assert started.returncode == 0, started.stdout + started.stderr
        data = clone.repo / ".stack" / "postgres" / "data"
        assert not (clone.repo / ".stack" / "postgres").is_symlink()  # in the clone itself
        expected = pwd.getpwnam(ORDINARY_USER).pw_uid if IS_ROOT else os.geteuid()
        assert data.stat().st_uid == expected
        assert port_open(clone.postgres_port)
        stopped = clone.stackctl("stop", "--only", "postgres")
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
