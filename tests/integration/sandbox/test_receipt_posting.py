"""Receipts leave the sandbox in batches, signed, and a batch the API refuses with 503 is posted
again, the same batch under the same webhook id."""

from __future__ import annotations

import asyncio
import json

from aiohttp import ClientSession

from tests.integration.sandbox.conftest import ReceiptReceiver
from tests.integration.sandbox.support import new_id, send_meta, send_sendgrid
from tests.integration.sandbox_process import SandboxProcess

SENDS = 300


async def test_receipts_are_batched(
    sandbox: SandboxProcess, receiver: ReceiptReceiver, http: ClientSession
) -> None:
    ids = [new_id() for _ in range(SENDS)]
    answers = await asyncio.gather(
        *(
            send_sendgrid(http, sandbox.http_url, f"user{n}@example.com", i)
            for n, i in enumerate(ids)
        )
    )
    assert {answer.status for answer in answers} == {202}
    wanted = set(ids)
    await receiver.wait_until(
        lambda: wanted <= {r["notification_id"] for p in receiver.posts for r in p.receipts},
        f"receipts for all {SENDS} sends",
    )
    posts = [p for p in receiver.posts if wanted & {r["notification_id"] for r in p.receipts}]
    receipts = [
        r["notification_id"] for p in posts for r in p.receipts if r["notification_id"] in wanted
    ]
    assert sorted(receipts) == sorted(ids), "one receipt per send, none twice"
    assert len(posts) < SENDS // 2, f"{SENDS} receipts came in {len(posts)} requests"
    assert all(len(p.receipts) <= 500 for p in posts)
    assert all(p.signature_error is None and p.provider == "sendgrid" for p in posts)


async def test_a_refused_batch_is_retried_under_the_same_webhook_id(
    sandbox: SandboxProcess, receiver: ReceiptReceiver, http: ClientSession
) -> None:
    receiver.refuse["meta"] = 2
    notification_id = new_id()
    assert (
        await send_meta(http, sandbox.http_url, "+4915112345678", notification_id)
    ).status == 200
    [receipt] = await receiver.receipts(notification_id)
    assert receipt["state"] == "delivered"
    refused = [p for p in receiver.refused if p.provider == "meta"]
    [accepted] = receiver.posts_with(notification_id)
    assert len(refused) == 2
    assert {p.webhook_id for p in refused} == {accepted.webhook_id}
    assert all(json.loads(p.body) == json.loads(accepted.body) for p in refused)
    async with http.get(f"{sandbox.http_url}/_sandbox/health") as answer:
        meta = (await answer.json())["receipts"]["meta"]
    assert meta["retries"] >= 2
    assert meta["last_error"] == "HTTP 503"
