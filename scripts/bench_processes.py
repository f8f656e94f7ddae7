"""What the benchmarks share: child processes with their settings, CPU accounting, topic counts.

`bench_notifications.py` and `bench_ingest.py` start the worker, API and sandbox as children on
their own topics and ports, read their CPU from /proc (less noisy than wall time on a shared
machine), and count the records the run wrote to Kafka from the topics' end offsets.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import BaseModel, SecretStr

from streams.kafka.topic_admin import topic_partitions_blocking
from streams.runtime import free_port
from streams.settings import HTTP_PROVIDER_CREDENTIALS, Settings

REPO = Path(__file__).resolve().parents[1]
STOP_DEADLINE_S = 30.0


def _jsonable(value: Any) -> Any:
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else value


def _env_value(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, BaseModel):
        return json.dumps(value.model_dump(mode="json"))
    if isinstance(value, dict):
        return json.dumps({k: _jsonable(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return json.dumps([_jsonable(v) for v in value])
    return str(value)


def settings_env(settings: Settings) -> dict[str, str]:
    """Every setting as the `TRIBUTARY_*` variable that reproduces it in a child process."""
    env: dict[str, str] = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, BaseModel):
            for field in type(value).model_fields:
                text = _env_value(getattr(value, field))
                if text is not None:
                    env[f"TRIBUTARY_{name.upper()}_{field.upper()}"] = text
        else:
            text = _env_value(value)
            if text is not None:
                env[f"TRIBUTARY_{name.upper()}"] = text
    return env


class Child:
    """A child Python process: `python -m module`, or `python *script` when `script` is given."""

    def __init__(
        self,
        name: str,
        module: str,
        env: dict[str, str],
        log_dir: Path,
        profile: bool = False,
        script: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        # cProfile writes its file when the process exits, SIGTERM included (Faust exits cleanly).
        profiler = ["-m", "cProfile", "-o", str(log_dir / f"{name}.prof")] if profile else []
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, *profiler, *(script or ("-m", module))],
                cwd=REPO,
                env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def cpu_s(self) -> float | None:
        """User + system CPU seconds the process has used so far (Linux), None once it is gone.

        Less noisy than wall-clock throughput on a shared machine: CPU per notification is what
        an optimisation changes, whatever else the cores are busy with.
        """
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            return None
        # utime and stime are fields 14 and 15 of stat(5); index 0 here is field 3 (state).
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def check(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited ({self.process.returncode}):\n{self.log()[-4000:]}"
            )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_DEADLINE_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None


def tree_cpu_s(pid: int) -> float | None:
    """CPU seconds of `pid`, its live descendants and its reaped children (PostgreSQL forks a
    backend per connection), None if it is gone. Fields as in stat(5), from field 3 on."""
    parents: dict[int, int] = {}
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdecimal() and (found := _stat(int(entry.name))) is not None:
            stats[int(entry.name)] = found
            parents[int(entry.name)] = int(found[1])
    if pid not in stats:
        return None
    tree, grew = {pid}, True
    while grew:
        more = {child for child, parent in parents.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    ticks = sum(int(stats[p][11]) + int(stats[p][12]) for p in tree)
    ticks += int(stats[pid][13]) + int(stats[pid][14])
    return ticks / os.sysconf("SC_CLK_TCK")


def stack_pids() -> dict[str, int]:
    """The local stack's processes, when `stack/stackctl.py` started them (not external ones)."""
    files = {
        "kafka": REPO / ".stack/kafka/kafka.pid",
        "postgresql": REPO / ".stack/postgres/data/postmaster.pid",
        "redis": REPO / ".stack/redis/redis.pid",
    }
    pids = {}
    for name, path in files.items():
        try:
            pids[name] = int(path.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return pids


def sandboxed_sections(base: Settings, label: str) -> dict[str, Any]:
    """The `api`, `sandbox` and `providers` sections of a run of its own (`label`, such as
    `bench-<run>`), as `Settings.model_copy` updates: the API and the provider sandbox on free
    ports, every provider (HTTP and SMTP) pointed at the sandbox and its receipts at the API.

    Every HTTP provider gets a credential, the run's own (the sandbox takes any): a provider
    without one is not sent through, and email would all go over SMTP.
    """
    host = "127.0.0.1"
    api_port, sandbox_port, smtp_port = free_port(host), free_port(host), free_port(host)
    sandbox_url = f"http://{host}:{sandbox_port}"
    api_url = f"http://{host}:{api_port}"
    providers = {
        "sendgrid_base_url": sandbox_url,
        "twilio_base_url": sandbox_url,
        "fcm_base_url": sandbox_url,
        "meta_base_url": sandbox_url,
        "smtp_port": smtp_port,
        "twilio_status_callback_url": f"{api_url}/v1/webhooks/providers/twilio",
        **{name: SecretStr(f"{label}-{name}") for name in HTTP_PROVIDER_CREDENTIALS},
    }
    return {
        "api": base.api.model_copy(update={"port": api_port}),
        "sandbox": base.sandbox.model_copy(
            update={"http_port": sandbox_port, "smtp_port": smtp_port, "api_url": api_url}
        ),
        "providers": base.providers.model_copy(update=providers),
    }


def fresh_webhook_secret() -> SecretStr:
    """A Standard Webhooks secret of this run's own, so no other process's signature passes."""
    return SecretStr("whsec_" + base64.b64encode(uuid.uuid4().bytes * 2).decode())


async def topic_partitions(settings: Settings, prefixes: tuple[str, ...]) -> dict[str, int]:
    """Partition counts of the topics whose name starts with one of `prefixes`."""
    return await asyncio.to_thread(topic_partitions_blocking, settings.kafka, prefixes)


def _partitions(topics: dict[str, int]) -> list[TopicPartition]:
    return [TopicPartition(name, p) for name, count in topics.items() for p in range(count)]


async def records_on_topics(settings: Settings, topics: dict[str, int]) -> dict[str, int]:
    """Records written so far on `topics` (name -> partitions), by topic (end offset minus start
    offset, summed over partitions)."""
    tps = _partitions(topics)
    if not tps:
        return {}
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka.bootstrap)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(tps)
        starts = await consumer.beginning_offsets(tps)
    finally:
        await consumer.stop()
    counts = dict.fromkeys(topics, 0)
    for tp in tps:
        counts[tp.topic] += ends[tp] - starts[tp]
    return counts


async def records_consumed(settings: Settings, group: str, topics: dict[str, int]) -> int:
    """Records the consumer group `group` has committed past on `topics` (name -> partitions)."""
    tps = _partitions(topics)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka.bootstrap, group_id=group)
    await consumer.start()
    try:
        starts = await consumer.beginning_offsets(tps)
        committed = {tp: await consumer.committed(tp) for tp in tps}
    finally:
        await consumer.stop()
    return sum(offset - starts[tp] for tp, offset in committed.items() if offset)
