"""The providers' circuit breakers on the real stack: a sendgrid outage (the sandbox's switch)
opens sendgrid's breaker in a real worker; `/v1/providers` (the API, reading what the worker's
reports materialized) and the worker's readiness show it; it goes half-open by itself, closes
after two successful probes once the outage ends; and a reset through the API closes an open one.

No durations are asserted: every state is polled for with a deadline. The API is served from a
thread on the worker's settings (same topics, same database).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer

from streams.settings import Settings
from tests.integration.agents.conftest import sandboxed_worker_settings
from tests.integration.agents.dispatch_support import (
    TopicTap,
    dispatch_value,
    new_notification_id,
    set_outage,
    statuses,
    when,
)
from tests.integration.kafka_io import topic_catalog
from tests.integration.sandbox_process import SandboxProcess
from tests.integration.worker_process import (
    OPERATOR_HEADERS,
    WorkerProcess,
    another_worker,
    eventually,
    own_topics,
    running_worker,
)

# Three failures once three sends were seen open it; it stays open long enough to be seen open
# by a poll on a busy machine, and two probes close it.
THRESHOLD = 3
OPEN_S = 6.0
RECIPIENT = "ada.lovelace@example.com"


@pytest.fixture(scope="module")
def worker_settings(
    stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    # Receipts go nowhere: they are not under test.
    settings = sandboxed_worker_settings(
        stack_settings,
        tmp_path_factory.mktemp("worker-data"),
        retry_delays_s=(0.2, 0.5),
        timeout_s=5.0,
        breaker_failure_threshold=THRESHOLD,
        breaker_min_requests=THRESHOLD,
        breaker_open_s=OPEN_S,
        breaker_half_open_successes=2,
        breaker_report_s=0.2,
    )
    with own_topics(settings):
        yield settings


@pytest.fixture(scope="module")
def worker(sandbox: SandboxProcess, worker: WorkerProcess) -> WorkerProcess:
    """The module's worker (conftest's), started once the sandbox answers."""
    return worker


class Breakers:
    """The API's and the worker's views of sendgrid's breaker in this module's worker."""

    def __init__(self, api_url: str, worker: WorkerProcess, settings: Settings) -> None:
        self.api_url = api_url
        self.worker = worker
        # As the worker names itself in its reports: its app, then its web address.
        self.name = f"{settings.worker.app_id}@{worker.web_url}"

    async def listing(self) -> dict[str, Any]:
        async with (
            aiohttp.ClientSession(headers=OPERATOR_HEADERS) as http,
            http.get(f"{self.api_url}/v1/providers") as answer,
        ):
            assert answer.status == 200, await answer.text()
            body: dict[str, Any] = await answer.json()
            return body

    async def sendgrid(self) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """sendgrid's merged view and this worker's report of it, once it has reported."""
        body = await self.listing()
        [view] = [p for p in body["providers"] if p["name"] == "sendgrid"]
        mine = [w for w in view["workers"] if w["worker"] == self.name]
        return (view, mine[0]) if mine else None

    async def reaches(self, *states: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """Once this worker's report of sendgrid is in one of `states`."""

        async def probe() -> tuple[dict[str, Any], dict[str, Any]] | None:
            found = await self.sendgrid()
            return found if found is not None and found[1]["state"] in states else None

        what = f"sendgrid {' or '.join(states)} in /v1/providers"
        return await eventually(probe, what=what, worker=self.worker)

    async def readiness(self) -> dict[str, Any]:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{self.worker.web_url}/health/ready") as answer,
        ):
            assert answer.status == 200, await answer.text()
            body: dict[str, Any] = await answer.json()
            return body

    async def ready_as(self, status: str) -> dict[str, Any]:
        async def probe() -> dict[str, Any] | None:
            body = await self.readiness()
            return body if body["status"] == status else None

        return await eventually(probe, what=f"worker readiness {status}", worker=self.worker)


@pytest.fixture
def breakers(api_url: str, worker: WorkerProcess, worker_settings: Settings) -> Breakers:
    return Breakers(api_url, worker, worker_settings)


async def send_email(producer: AIOKafkaProducer, settings: Settings) -> str:
    notification_id = new_notification_id()
    topic = topic_catalog(settings).for_topic("notifications.dispatch").name
    value = dispatch_value(notification_id, "email", RECIPIENT)
    await producer.send_and_wait(topic, value, key=notification_id.encode())
    return notification_id


def sent_through(tap: TopicTap, notification_id: str) -> str | None:
    sent = [s.provider for s in statuses(tap, notification_id) if s.state == "sent"]
    return sent[0] if sent else None


async def sent(tap: TopicTap, notification_id: str, worker: WorkerProcess) -> str:
    await eventually(
        when(lambda: sent_through(tap, notification_id) is not None),
        what=f"{notification_id} sent",
        worker=worker,
    )
    provider = sent_through(tap, notification_id)
    assert provider is not None
    return provider


async def settled(tap: TopicTap, notification_id: str, worker: WorkerProcess) -> None:
    def done() -> bool:
        return any(s.state in ("sent", "failed") for s in statuses(tap, notification_id))

    await eventually(when(done), what=f"{notification_id} sent or failed", worker=worker)


async def open_sendgrid(
    producer: AIOKafkaProducer,
    settings: Settings,
    sandbox: SandboxProcess,
    tap: TopicTap,
    breakers: Breakers,
    *states: str,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """An outage, and sends until sendgrid's breaker opens. Each is settled (sent through smtp
    once the breaker opened, or failed if its attempts ran out first) before the breaker is
    looked at, so that no retry is left to reach sendgrid later."""
    await set_outage(sandbox.http_url, "sendgrid", down=True)
    ids = [await send_email(producer, settings) for _ in range(THRESHOLD)]
    for notification_id in ids:
        await settled(tap, notification_id, breakers.worker)
    return await breakers.reaches(*(states or ("open",)))


async def test_an_outage_opens_the_breaker_then_half_open_then_two_probes_close_it(
    worker: WorkerProcess,
    sandbox: SandboxProcess,
    producer: AIOKafkaProducer,
    status_tap: TopicTap,
    worker_settings: Settings,
    breakers: Breakers,
) -> None:
    assert (await breakers.readiness())["status"] == "ready"
    try:
        view, mine = await open_sendgrid(producer, worker_settings, sandbox, status_tap, breakers)
        assert view["state"] == "open"
        assert mine["consecutive_failures"] >= THRESHOLD
        assert mine["requests_in_window"] >= THRESHOLD
        assert mine["opened_at"] is not None
        assert mine["current"] is True
        # The provider's own error text, without the recipient it was sent to.
        assert "503" in mine["last_error"]
        assert "sandbox outage" in mine["last_error"]
        assert RECIPIENT not in str(await breakers.listing())
        assert "sendgrid" in (await breakers.listing())["degraded"]
        ready = await breakers.ready_as("degraded")
        assert "sendgrid" in ready["checks"]["providers"]

        # Half-open by itself once the open time is over; still degraded while it is.
        await breakers.reaches("half-open")
        assert "sendgrid half-open" in (await breakers.readiness())["checks"]["providers"]
    finally:
        await set_outage(sandbox.http_url, "sendgrid", down=False)

    # Two successful probes (one at a time: each send waits for the one before) close it.
    probes = [await sent(status_tap, await send_email(producer, worker_settings), worker)]
    probes.append(await sent(status_tap, await send_email(producer, worker_settings), worker))
    assert probes == ["sendgrid", "sendgrid"]
    _, mine = await breakers.reaches("closed")
    assert mine["consecutive_failures"] == 0
    assert mine["opened_at"] is None
    assert (await breakers.ready_as("ready"))["checks"]["providers"] == "ok"


async def test_a_reset_through_the_api_closes_an_open_breaker_in_the_worker(
    worker: WorkerProcess,
    sandbox: SandboxProcess,
    producer: AIOKafkaProducer,
    status_tap: TopicTap,
    worker_settings: Settings,
    breakers: Breakers,
) -> None:
    try:
        # Half-open is as good: a reset closes it too (and a busy machine may see it so first).
        await open_sendgrid(
            producer, worker_settings, sandbox, status_tap, breakers, "open", "half-open"
        )
        await breakers.ready_as("degraded")
        async with (
            aiohttp.ClientSession(headers=OPERATOR_HEADERS) as http,
            http.post(f"{breakers.api_url}/v1/providers/sendgrid/reset") as answer,
        ):
            assert answer.status == 202, await answer.text()
            body = await answer.json()
        assert (body["status"], body["provider"], body["command"]) == (
            "accepted",
            "sendgrid",
            "reset",
        )
        assert body["topic"] == topic_catalog(worker_settings).notifications_provider_commands.name
        assert body["offset"] >= 0
        # Closed while the outage still lasts: the operator's word, not a probe, closed it.
        _, mine = await breakers.reaches("closed")
        assert mine["opened_at"] is None
        await breakers.ready_as("ready")
    finally:
        await set_outage(sandbox.http_url, "sendgrid", down=False)


async def reports_of(breakers: Breakers) -> dict[str, str]:
    """sendgrid's state in each current worker report, by worker."""
    body = await breakers.listing()
    [view] = [p for p in body["providers"] if p["name"] == "sendgrid"]
    return {w["worker"]: w["state"] for w in view["workers"] if w["current"]}


async def test_a_reset_reaches_every_worker_of_the_group(
    worker: WorkerProcess,
    sandbox: SandboxProcess,
    producer: AIOKafkaProducer,
    status_tap: TopicTap,
    worker_settings: Settings,
    breakers: Breakers,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A second worker joins the group; an outage opens sendgrid's breaker in both (each sends
    its own partitions' notifications; open or already half-open); one reset closes both."""
    data_dir = tmp_path_factory.mktemp("second-worker-data")
    second_settings = another_worker(worker_settings, data_dir)
    log_path = tmp_path_factory.mktemp("second-worker") / "worker.log"
    with running_worker(second_settings, log_path) as second:
        names = {breakers.name, f"{second_settings.worker.app_id}@{second.web_url}"}
        try:
            await set_outage(sandbox.http_url, "sendgrid", down=True)

            async def both_open() -> bool | None:
                # One more email each time, settled before the next (none left to retry later):
                # sent through smtp, or failed once its attempts ran out on a closed sendgrid.
                await settled(status_tap, await send_email(producer, worker_settings), worker)
                found = await reports_of(breakers)
                refusing = ("open", "half-open")
                return True if all(found.get(name) in refusing for name in names) else None

            await eventually(both_open, what="sendgrid not closed in both workers", worker=second)
            async with (
                aiohttp.ClientSession(headers=OPERATOR_HEADERS) as http,
                http.post(f"{breakers.api_url}/v1/providers/sendgrid/reset") as answer,
            ):
                assert answer.status == 202, await answer.text()

            async def both_closed() -> bool | None:
                found = await reports_of(breakers)
                return True if all(found.get(name) == "closed" for name in names) else None

            await eventually(both_closed, what="sendgrid closed in both workers", worker=second)
            assert (await breakers.listing())["status"] == "ok"
        finally:
            await set_outage(sandbox.http_url, "sendgrid", down=False)


async def test_bad_resets_are_problems_naming_what_is_wrong(breakers: Breakers) -> None:
    async with aiohttp.ClientSession() as http:
        url = f"{breakers.api_url}/v1/providers/pigeon/reset"
        async with http.post(url, headers=OPERATOR_HEADERS) as answer:
            assert answer.status == 404
            assert answer.content_type == "application/problem+json"
            problem = await answer.json()
        assert problem["field"] == "name"
        assert "pigeon" in problem["detail"]
        async with http.post(f"{breakers.api_url}/v1/providers/sendgrid/reset") as answer:
            assert answer.status == 401
            assert answer.content_type == "application/problem+json"
        async with http.get(f"{breakers.api_url}/v1/providers") as answer:
            assert answer.status == 401
