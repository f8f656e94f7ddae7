"""A worker told to stop while its group rebalances: it exits cleanly within its deadline and
leaves the group (the others need not wait for its session to time out), and the worker that
joined forwards what comes after.

Made certain rather than left to timing by the small real worker of `stalling_worker`: armed
with `pause-stop`, its stop waits, the app already stopping, until a second worker's joining has
rebalanced the group into it.
"""

from __future__ import annotations

import signal
from pathlib import Path

from streams.settings import Settings
from tests.integration.kafka_io import group_members, kafka_producer
from tests.integration.streams.runtime.stalling_process import StallingWorker, all_forwarded, logged
from tests.integration.streams.runtime.stalling_worker import PAUSE_STOP_PREFIX, STOP_PAUSED
from tests.integration.worker_process import another_worker

RECORDS_AFTER = 30


async def test_a_worker_stopped_while_its_group_rebalances_exits_and_leaves_the_group(
    stall_settings: Settings, tmp_path: Path
) -> None:
    settings = stall_settings
    topic = f"{settings.topic_prefix}stall.in"
    pause_stop = PAUSE_STOP_PREFIX + str(settings.worker.web_port).encode()
    first = StallingWorker(settings, tmp_path / "first.log")
    with first.running(must_exit_cleanly=True):
        async with kafka_producer(settings) as producer:
            await producer.send_and_wait(topic, pause_stop)
        await logged(first, "next stop: pause")
        first.process.send_signal(signal.SIGTERM)
        await logged(first, STOP_PAUSED)
        # Its joining rebalances the group into the first worker's stop.
        second = StallingWorker(
            another_worker(settings, tmp_path / "second-data"), tmp_path / "second.log"
        )
        with second.running(must_exit_cleanly=True, ready=False):
            await logged(first, "partitions revoked while stopping")
            assert first.stop() == 0, f"first worker, stopped mid-rebalance:\n{first.log_tail()}"
            members = await group_members(settings, settings.worker.app_id)
            assert len(members) == 1, f"the first worker did not leave:\n{first.log_tail()}"
            second.wait_ready()
            after = [f"after-{n}".encode() for n in range(RECORDS_AFTER)]
            async with kafka_producer(settings) as producer:
                for value in after:
                    await producer.send_and_wait(topic, value)
            await all_forwarded(settings, after, second)
