"""The chaos run's faults: SIGKILLed workers, a restarted broker, stopped PostgreSQL and Redis,
and (for the tests) a frozen broker.

Services are stopped and started with `stack/stackctl.py stop|start --only NAME`, so only a
stack this clone started can be hurt. A client variable (`TRIBUTARY_KAFKA_BOOTSTRAP`, …) naming
the stack's own local address is taken off stackctl's environment (it would otherwise treat the
service as external and leave it alone); one naming anything else, or a `.stack` that is a link
to a stack shared with other checkouts, is refused: stopping a service others use is not a test.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STACKCTL = REPO / "stack" / "stackctl.py"

# service -> (client variable, stack port variable, default port)
_SERVICES = {
    "kafka": ("TRIBUTARY_KAFKA_BOOTSTRAP", "TRIBUTARY_STACK_KAFKA_PORT", 9092),
    "postgres": ("TRIBUTARY_DATABASE_URL", "TRIBUTARY_STACK_POSTGRES_PORT", 55432),
    "redis": ("TRIBUTARY_REDIS_URL", "TRIBUTARY_STACK_REDIS_PORT", 56379),
}


class FaultRefusedError(RuntimeError):
    """The service is not this clone's own to stop."""


@dataclass(frozen=True, slots=True)
class FaultEvent:
    """One fault: what, when it began and when the hurt thing was back (wall clock)."""

    what: str
    began_s: float
    back_s: float
    detail: str = ""


@dataclass
class FaultLog:
    events: list[FaultEvent] = field(default_factory=list)

    def add(self, what: str, began_s: float, detail: str = "") -> None:
        self.events.append(FaultEvent(what, began_s, time.time(), detail))


@contextmanager
def frozen_broker() -> Iterator[None]:
    """The stack's Kafka broker stopped (SIGSTOP) while the block runs: it answers nothing but
    keeps its connections and the requests in them, and goes on where it was (SIGCONT), as a
    broker in a long pause does; a produce request sent meanwhile is written when it wakes."""
    stackctl_env("kafka")  # refuses a broker that is not this clone's own
    pid_file = REPO / ".stack" / "kafka" / "kafka.pid"
    try:
        pid = int(pid_file.read_text().split()[0])
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError) as exc:
        raise FaultRefusedError(f"no running broker of this clone's stack ({pid_file})") from exc
    if b"kafka" not in command.lower():
        raise FaultRefusedError(f"{pid_file} names process {pid}, which is not a Kafka broker")
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def _points_at_local(value: str, port: int) -> bool:
    return re.search(rf"(127\.0\.0\.1|localhost):{port}(\b|/|$)", value) is not None


def stackctl_env(service: str) -> dict[str, str]:
    """This environment, with the service's client variable removed when it names the stack's
    own address; raises `FaultRefusedError` when the service is someone else's."""
    if (REPO / ".stack").is_symlink():
        raise FaultRefusedError(
            f"{REPO / '.stack'} links to a stack shared with other checkouts: the chaos run "
            "stops services, so it needs a stack of this clone's own (a real .stack folder)"
        )
    client_var, port_var, default_port = _SERVICES[service]
    env = dict(os.environ)
    value = env.get(client_var, "").strip()
    if value:
        port = int(env.get(port_var, "").strip() or default_port)
        if not _points_at_local(value, port):
            raise FaultRefusedError(
                f"{client_var} names {service} outside this clone's stack (port {port}): "
                "the chaos run only stops services stack/stackctl.py started here"
            )
        del env[client_var]
    return env


def stackctl(command: str, service: str) -> None:
    """`stackctl.py COMMAND --only SERVICE`, failing loudly (a fault that did not happen, or a
    service that did not come back, makes the figures meaningless)."""
    result = subprocess.run(
        [sys.executable, str(STACKCTL), command, "--only", service],
        env=stackctl_env(service),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"stackctl {command} --only {service} failed:\n{result.stdout}{result.stderr}"
        )


def check_stoppable(services: list[str]) -> None:
    """Refuse before the run starts rather than in the middle of it."""
    for service in services:
        stackctl_env(service)


async def outage(service: str, down_s: float, log: FaultLog) -> None:
    """Stop `service`, keep it down for `down_s`, start it again (waits until it is ready)."""
    began = time.time()
    await asyncio.to_thread(stackctl, "stop", service)
    try:
        await asyncio.sleep(down_s)
    finally:  # whatever happens meanwhile, the service is left running
        await asyncio.to_thread(stackctl, "start", service)
    log.add(f"{service} stopped", began, f"{down_s:.0f} s down")


async def restart(service: str, log: FaultLog) -> None:
    """Stop and start at once (the broker's controlled shutdown, then its start-up)."""
    await outage(service, 0.0, log)
    log.events[-1] = FaultEvent(f"{service} restarted", log.events[-1].began_s, time.time())
