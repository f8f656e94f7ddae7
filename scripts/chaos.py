"""A chaos run: the whole pipeline under a steady mixed load while workers are SIGKILLed, the
broker restarts and PostgreSQL and Redis go away; then an independent check of what came out.

`make chaos` (`python -m scripts.chaos`). The stack must be up and be this clone's own
(`make stack`): the run stops and starts its services with `stack/stackctl.py`. It starts two
workers, the API and the provider sandbox on their own topics, ports and secrets, drives the
load of `scripts/chaos_load.py` through the signed webhooks and, by default, for 180 s:
SIGKILLs a random worker every 15 s and starts it again, restarts the broker once, stops
PostgreSQL for 60 s and Redis for 30 s, one after the other. A quiet tail of the same load
follows, so the windows of the chaos period close; then it waits for the pipeline to catch up
and prints the figures of `scripts/chaos_check.py` (exit status 1 unless all are 0), and what
each fault cost: how long until the hurt part was back, and the ack->view time of the order
payments acknowledged meanwhile.

`--scenario crash|broker|postgres|redis` runs one fault alone (one SIGKILL, one broker restart,
PostgreSQL down 60 s, Redis down 30 s), 20 s into a 2-minute load, to measure what it costs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import SecretStr

from scripts.bench_processes import (
    Child,
    fresh_webhook_secret,
    sandboxed_sections,
    settings_env,
)
from scripts.chaos_check import (
    Figures,
    Outputs,
    check,
    check_views,
    check_windows,
    closed_by,
)
from scripts.chaos_faults import FaultLog, check_stoppable, outage, restart
from scripts.chaos_load import LoadDriver, LoadLedger, LoadShape
from streams.kafka.catalog import TopicCatalog
from streams.kafka.topic_admin import delete_topics_blocking, ensure_topics
from streams.migrations import runner as migrate
from streams.runtime import free_port
from streams.settings import Settings

READY_DEADLINE_S = 180.0
WORKER_READY = "tributary worker ready"
CATCH_UP_POLL_S = 5.0


@dataclass(frozen=True, slots=True)
class Scenario:
    """When each fault happens, in seconds from the start of the load."""

    chaos_s: float
    tail_s: float
    kill_every_s: float | None = None
    kills_at_s: tuple[float, ...] = ()
    broker_restart_at_s: float | None = None
    postgres_stop: tuple[float, float] | None = None  # (at, down for)
    redis_stop: tuple[float, float] | None = None

    def kill_times(self) -> list[float]:
        if self.kill_every_s is None:
            return list(self.kills_at_s)
        count = int(self.chaos_s // self.kill_every_s)
        return [self.kill_every_s * n for n in range(1, count + 1)]

    def services(self) -> list[str]:
        stopped = {
            "kafka": self.broker_restart_at_s is not None,
            "postgres": self.postgres_stop is not None,
            "redis": self.redis_stop is not None,
        }
        return [name for name, yes in stopped.items() if yes]


SCENARIOS: dict[str, Scenario] = {
    # The run: every fault, one after the other, over 3 minutes.
    "all": Scenario(
        chaos_s=180.0,
        tail_s=160.0,
        kill_every_s=15.0,
        broker_restart_at_s=20.0,
        postgres_stop=(50.0, 60.0),
        redis_stop=(130.0, 30.0),
    ),
    # One fault each, 20 s into the load, to measure what it costs alone.
    "crash": Scenario(chaos_s=60.0, tail_s=60.0, kills_at_s=(20.0,)),
    "broker": Scenario(chaos_s=60.0, tail_s=60.0, broker_restart_at_s=20.0),
    "postgres": Scenario(chaos_s=90.0, tail_s=60.0, postgres_stop=(20.0, 60.0)),
    "redis": Scenario(chaos_s=60.0, tail_s=60.0, redis_stop=(20.0, 30.0)),
}


@dataclass(frozen=True, slots=True)
class Windows:
    """The metrics windows of a run (shorter ones let a short run close them)."""

    tumbling_s: int = 60
    hopping_s: int = 120
    hopping_step_s: int = 60
    grace_s: int = 30


def chaos_settings(base: Settings, run: str, data_dir: Path, windows: Windows) -> Settings:
    """`base` on the run's own topics, consumer group, ports and secrets."""
    updates: dict[str, Any] = {
        "topic_prefix": f"chaos{run}-",
        "webhook": base.webhook.model_copy(
            update={
                f"secret_{family}": fresh_webhook_secret()
                for family in ("orders", "users", "auth", "providers")
            }
        ),
        "worker": base.worker.model_copy(
            update={
                "app_id": f"tributary-chaos-{run}",
                "web_port": free_port("127.0.0.1"),
                "data_dir": str(data_dir),
            }
        ),
        "operator": base.operator.model_copy(update={"token": SecretStr(f"chaos-{run}")}),
        "metrics": base.metrics.model_copy(
            update={
                "tumbling_s": windows.tumbling_s,
                "hopping_s": windows.hopping_s,
                "hopping_step_s": windows.hopping_step_s,
                "grace_s": windows.grace_s,
            }
        ),
        **sandboxed_sections(base, f"chaos-{run}"),
    }
    return base.model_copy(update=updates)


def outputs_of(settings: Settings) -> Outputs:
    catalog = TopicCatalog(settings.topic_prefix, settings.kafka)
    return Outputs(
        bootstrap=settings.kafka.bootstrap,
        partitions={
            "auth.events": catalog.for_topic("auth.events").partitions,
            **{
                base: catalog.analytics_output(base).partitions
                for base in ("analytics.orders", "analytics.auth", "analytics.events")
            },
        },
        topic_prefix=settings.topic_prefix,
        database_dsn=settings.database.url.get_secret_value(),
        redis_url=settings.redis.url.get_secret_value(),
        sandbox_url=f"http://{settings.sandbox.host}:{settings.sandbox.http_port}",
        tumbling_s=settings.metrics.tumbling_s,
        hopping_s=settings.metrics.hopping_s,
        hopping_step_s=settings.metrics.hopping_step_s,
        grace_s=settings.metrics.grace_s,
        burst_failures=settings.security.user_failures,
        burst_window_s=settings.security.user_window_s,
    )


class Pipeline:
    """Two workers of one group, the sandbox and the API, as child processes."""

    def __init__(self, settings: Settings, log_dir: Path, workers: int = 2) -> None:
        self.settings = settings
        self.log_dir = log_dir
        self.env = settings_env(settings)
        self.worker_envs = [self.env] + [
            self.env
            | {
                "TRIBUTARY_WORKER_WEB_PORT": str(free_port("127.0.0.1")),
                "TRIBUTARY_WORKER_DATA_DIR": str(log_dir / f"worker{n}-data"),
            }
            for n in range(1, workers)
        ]
        self.starts = [0] * workers
        self.workers = [self._worker(n) for n in range(workers)]
        self.sandbox = Child("sandbox", "sandbox", self.env, log_dir)
        self.api = Child("api", "api", self.env, log_dir)
        self.api_url = f"http://127.0.0.1:{settings.api.port}"
        self.worker_url = f"http://127.0.0.1:{settings.worker.web_port}"

    def _worker(self, n: int) -> Child:
        self.starts[n] += 1
        return Child(f"worker{n}-{self.starts[n]}", "agents", self.worker_envs[n], self.log_dir)

    def children(self) -> list[Child]:
        return [*self.workers, self.sandbox, self.api]

    def wait_ready(self, workers: list[Child] | None = None) -> None:
        deadline = time.monotonic() + READY_DEADLINE_S
        waiting = self.workers if workers is None else workers
        while not all(WORKER_READY in worker.log() for worker in waiting):
            for child in waiting:
                child.check()
            if time.monotonic() > deadline:
                raise RuntimeError(f"workers not ready within {READY_DEADLINE_S:.0f} s")
            time.sleep(0.25)

    def kill_and_restart(self, n: int) -> tuple[Child, int | None]:
        """SIGKILL worker `n` (no goodbye to the group) and start it again at once; with the
        status it had exited with on its own before the kill came (None: it was running)."""
        old = self.workers[n]
        exited = old.process.poll()
        if exited is None:
            os.kill(old.process.pid, signal.SIGKILL)
            old.process.wait()
        self.workers[n] = self._worker(n)
        return self.workers[n], exited

    def stop(self) -> None:
        for child in self.children():
            child.stop()

    async def metrics_clock(self) -> Any:
        """The aggregator's clock (watermark, closed up to, late drops), from whichever worker
        owns it: what explains a window that differs."""
        token = self.settings.operator.token
        headers = {"Authorization": f"Bearer {token.get_secret_value() if token else ''}"}
        url = f"{self.worker_url}/v1/tables/metrics_clock/clock"
        try:
            async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as r:
                return await r.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            return repr(exc)


@dataclass
class Run:
    scenario: Scenario
    pipeline: Pipeline
    faults: FaultLog = field(default_factory=FaultLog)
    rng: random.Random = field(default_factory=random.Random)

    async def kills(self, started: float) -> None:
        """SIGKILL a random worker at each kill time and start it again at once; each is back
        when its successor says it is ready (a later kill may hit it before)."""
        waits: list[asyncio.Task[None]] = []
        for at_s in self.scenario.kill_times():
            await asyncio.sleep(max(0.0, started + at_s - time.monotonic()))
            n = self.rng.randrange(len(self.pipeline.workers))
            began = time.time()
            worker, exited = self.pipeline.kill_and_restart(n)
            if exited is not None:
                self.faults.add(f"worker{n} found exited", began, f"with status {exited}")
            waits.append(asyncio.create_task(self._back(f"worker{n} SIGKILLed", began, worker)))
        await asyncio.gather(*waits)

    async def _back(self, what: str, began: float, worker: Child) -> None:
        deadline = time.monotonic() + READY_DEADLINE_S
        while WORKER_READY not in worker.log():
            if worker.process.poll() is not None:
                self.faults.add(what, began, "its successor was killed before it was ready")
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{worker.name} not ready within {READY_DEADLINE_S:.0f} s")
            await asyncio.sleep(0.25)
        self.faults.add(what, began, "back when its successor is ready")

    async def services(self, started: float) -> None:
        steps: list[tuple[float, Callable[[], Awaitable[None]]]] = []
        s = self.scenario
        if s.broker_restart_at_s is not None:
            steps.append((s.broker_restart_at_s, lambda: restart("kafka", self.faults)))
        if s.postgres_stop is not None:
            at_s, pg_down_s = s.postgres_stop
            steps.append((at_s, lambda: outage("postgres", pg_down_s, self.faults)))
        if s.redis_stop is not None:
            at_s, redis_down_s = s.redis_stop
            steps.append((at_s, lambda: outage("redis", redis_down_s, self.faults)))
        for at_s, step in sorted(steps, key=lambda item: item[0]):
            await asyncio.sleep(max(0.0, started + at_s - time.monotonic()))
            await step()


async def catch_up(outputs: Outputs, ledger: LoadLedger, deadline_s: float) -> float:
    """Wait until every acknowledged input shows in the outputs (or the deadline); seconds taken."""
    began = time.monotonic()
    closed = closed_by(outputs, ledger.acknowledged)
    while True:
        figures = Figures()
        await check_views(outputs, ledger.acknowledged, figures)
        unpublished = await check_windows(outputs, ledger.acknowledged, figures, closed)
        print(
            f"  catching up: {figures.lost} acknowledged inputs not in their final state yet, "
            f"{len(unpublished)} windows not published yet",
            flush=True,
        )
        if (figures.lost == 0 and not unpublished) or time.monotonic() - began > deadline_s:
            return time.monotonic() - began
        await asyncio.sleep(CATCH_UP_POLL_S)


def fault_costs(figures: Figures, faults: FaultLog, ledger: LoadLedger) -> list[str]:
    """Per fault: how long until it was over, how long webhooks were refused (answered other
    than 2xx, then retried by the load), and the ack->view time of the payments acknowledged
    from its start until 15 s after it."""
    lines = []
    for event in faults.events:
        until_s = event.back_s + 15
        hit = [
            latency
            for acked_at, latency in figures.paid_latency
            if event.began_s <= acked_at <= until_s
        ]
        refused = [at for at in ledger.refused_at_s if event.began_s <= at <= until_s]
        refusing = (
            f"{max(refused) - min(refused):.0f} s ({len(refused)} answers)" if refused else "0 s"
        )
        worst = f"{max(hit):.1f} s" if hit else "-"
        typical = f"{statistics.median(hit):.1f} s" if hit else "-"
        lines.append(
            f"  {event.what:<22} back after {event.back_s - event.began_s:5.1f} s; webhooks refused"
            f" for {refusing}; payments acknowledged meanwhile: {len(hit)}, ack->view p50"
            f" {typical}, max {worst}"
        )
    return lines


async def chaos(
    scenario: Scenario,
    windows: Windows,
    shape: LoadShape | None = None,
    catch_up_s: float = 300.0,
    base: Settings | None = None,
) -> tuple[Figures, FaultLog, dict[str, Any]]:
    """Run `scenario` against a fresh pipeline; the figures, the faults and the run's facts."""
    run = uuid.uuid4().hex[:8]
    log_dir = Path(tempfile.mkdtemp(prefix=f"chaos-{run}-"))
    settings = chaos_settings(base or Settings(), run, log_dir / "worker-data", windows)
    check_stoppable(scenario.services())
    await asyncio.to_thread(migrate.upgrade, settings.database)
    catalog = TopicCatalog(settings.topic_prefix, settings.kafka, settings.dispatch.retry_delays_s)
    await ensure_topics(settings.kafka, catalog.all())
    pipeline = Pipeline(settings, log_dir)
    facts: dict[str, Any] = {"run": run, "logs": str(log_dir)}
    try:
        print(f"starting two workers, the sandbox and the API (logs in {log_dir})", flush=True)
        await asyncio.to_thread(pipeline.wait_ready)
        load_shape = shape or LoadShape(duration_s=scenario.chaos_s + scenario.tail_s)
        secrets = {
            family: secret.get_secret_value()
            for family in ("orders", "users", "auth")
            if (secret := settings.webhook.secret_for(family)) is not None
        }
        driver = LoadDriver(pipeline.api_url, secrets, load_shape, run)
        chaos_run = Run(scenario, pipeline, rng=random.Random(run))  # noqa: S311 - picks a worker
        print(
            f"load for {load_shape.duration_s:.0f} s; faults in the first {scenario.chaos_s:.0f} s",
            flush=True,
        )
        started = time.monotonic()
        ledger, *_ = await asyncio.gather(
            driver.run_load(), chaos_run.kills(started), chaos_run.services(started)
        )
        facts["load_s"] = time.monotonic() - started
        for event in chaos_run.faults.events:
            print(f"  {event.what}: {event.detail}", flush=True)
        outputs = outputs_of(settings)
        facts["catch_up_s"] = await catch_up(outputs, ledger, catch_up_s)
        redis_back = [e.back_s for e in chaos_run.faults.events if e.what.startswith("redis")]
        redis_back_at = datetime.fromtimestamp(max(redis_back), UTC) if redis_back else None
        figures = await check(outputs, ledger.acknowledged, redis_back_at)
        facts["metrics_clock"] = await pipeline.metrics_clock()
        facts["ledger"] = ledger
        (log_dir / "ledger.json").write_text(json.dumps(ledger.to_json()))
        (log_dir / "metrics_clock.json").write_text(json.dumps(facts["metrics_clock"]))
        return figures, chaos_run.faults, facts
    finally:
        pipeline.stop()
        await asyncio.to_thread(
            delete_topics_blocking, settings.kafka, [settings.topic_prefix, settings.worker.app_id]
        )


def clock_summary(answer: Any) -> str:
    """The aggregator clock's counters (late drops, replays, duplicates, published...) without
    its per-partition maps, which run to kilobytes."""
    value = answer.get("value") if isinstance(answer, dict) else None
    if not isinstance(value, dict):
        return repr(answer)
    return json.dumps({k: v for k, v in value.items() if not isinstance(v, dict | list)})


def report(figures: Figures, faults: FaultLog, facts: dict[str, Any]) -> None:
    ledger: LoadLedger = facts["ledger"]
    print(f"\nchaos run {facts['run']} (logs and the ledger in {facts['logs']})")
    print(
        f"inputs sent {ledger.sent}, acknowledged {len(ledger.acknowledged)}, given up "
        f"{ledger.given_up}; answers {dict(sorted(ledger.answers.items()))}"
    )
    print(f"caught up {facts['catch_up_s']:.0f} s after the load ended")
    for line in figures.lines():
        print(line)
    print(f"aggregator clock: {clock_summary(facts.get('metrics_clock'))} (all of it in the logs)")
    print("what each fault cost:")
    for line in fault_costs(figures, faults, ledger):
        print(line)
    for name, found in (
        ("lost", figures.orders_lost + figures.users_lost),
        ("windows differing", figures.windows_differing),
        ("blocks missed", figures.blocks_missed),
    ):
        for line in found[:10]:
            print(f"  {name}: {line}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="all")
    parser.add_argument("--catch-up-s", type=float, default=300.0)
    args = parser.parse_args()
    os.environ.setdefault("TRIBUTARY_ENV", "dev")
    figures, faults, facts = asyncio.run(
        chaos(SCENARIOS[args.scenario], Windows(), catch_up_s=args.catch_up_s)
    )
    report(figures, faults, facts)
    return 0 if figures.all_zero else 1


if __name__ == "__main__":
    raise SystemExit(main())
