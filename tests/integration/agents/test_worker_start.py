"""A worker started while Kafka does not answer (a broker restarting, as in a chaos run) waits
for it (`worker.startup_wait_s`) and starts once it answers, instead of exiting.

The worker reaches the broker through a proxy that is not listening yet: every connection is
refused, as a restarting broker's are, until the test starts it."""

from __future__ import annotations

from pathlib import Path

from streams.runtime import free_port
from streams.settings import Settings
from tests.integration.agents.tcp_proxy import TcpProxy
from tests.integration.worker_process import (
    START_DEADLINE_S,
    WorkerProcess,
    eventually,
    make_worker_settings,
    own_topics,
)


async def test_a_worker_started_before_kafka_answers_waits_and_starts_once_it_does(
    stack_settings: Settings, tmp_path: Path
) -> None:
    with own_topics(make_worker_settings(stack_settings, tmp_path)) as settings:
        host, port = settings.kafka.bootstrap.split(",")[0].rsplit(":", 1)
        proxy = TcpProxy(free_port("127.0.0.1"), host, int(port))
        # Clients bootstrap through the proxy, then reach the broker it advertises directly.
        kafka = settings.kafka.model_copy(
            update={"bootstrap": f"127.0.0.1:{proxy.listen_port}", "request_timeout_s": 3.0}
        )
        worker = WorkerProcess(settings.model_copy(update={"kafka": kafka}), tmp_path / "w.log")
        try:
            with worker.running(must_exit_cleanly=True, ready=False):

                async def waiting() -> bool | None:
                    log = worker.log_tail(100_000)
                    return True if "worker start (" in log and "retry 1 in" in log else None

                await eventually(waiting, what="the start waiting for Kafka", worker=worker)
                await proxy.start()

                async def ready() -> bool | None:
                    return True if worker.is_ready() else None

                await eventually(
                    ready,
                    what="ready once Kafka answers",
                    worker=worker,
                    deadline_s=START_DEADLINE_S,
                )
        finally:
            await proxy.stop()
