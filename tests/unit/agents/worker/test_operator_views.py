"""Operator views' logic on a Faust app that is built, never started: sizes, merging, entries."""

from __future__ import annotations

import json
from typing import Any

import faust
import pytest
from faust.types import TP
from faust.web import View
from pydantic import SecretStr

from agents.worker.operator_views import entry_body, merge_tables, refusal
from agents.worker.table_sizes import key_partition, local_partition_sizes, windowed_entry
from streams.settings import OperatorSettings

PARTITIONS = 4
ME = "http://127.0.0.1:6066"
PEER = "http://127.0.0.1:6067"


@pytest.fixture
def app() -> faust.App:
    return faust.App("unit", broker="kafka://127.0.0.1:1", store="memory://", autodiscover=False)


def orders(app: faust.App) -> Any:
    return app.Table("orders", partitions=PARTITIONS, key_type=bytes, help="orders by id")


def test_keys_are_placed_like_the_java_client_places_them() -> None:
    # The Java client's murmur2 test vectors over 1000 partitions (kafka-python keeps them).
    keys = (b"", b"a", b"ab", b"abc", b"123456789", b"\x00 ")
    assert [key_partition(key, 1000) for key in keys] == [681, 524, 434, 107, 566, 742]


async def test_local_sizes_count_keys_of_owned_partitions_only_zeros_included(
    app: faust.App,
) -> None:
    table = orders(app)
    keys = [f"o-{n}".encode() for n in range(40)]
    for key in keys:
        table.data[key] = {"status": "paid"}
    topic = table.changelog_topic.get_topic_name()
    owned = [TP(topic, 0), TP(topic, 2), TP("other-changelog", 1)]
    expected = {
        partition: sum(1 for key in keys if key_partition(key, PARTITIONS) == partition)
        for partition in (0, 2)
    }
    assert local_partition_sizes(table, owned) == expected
    assert local_partition_sizes(table, []) == {}


async def test_merge_names_owners_and_sizes_and_leaves_the_unknown_null(app: faust.App) -> None:
    table = orders(app)
    topic = table.changelog_topic.get_topic_name()
    distribution = {ME: {topic: [0, 1]}, PEER: {topic: [2]}}
    sizes = {ME: {"orders": {0: 3, 1: 0}}}  # the peer did not answer
    [merged] = merge_tables([table], distribution, sizes, PARTITIONS)
    assert merged["name"] == "orders"
    assert merged["help"] == "orders by id"
    assert merged["windowed"] is False
    assert merged["partitions"] == [
        {"partition": 0, "worker": ME, "keys": 3},
        {"partition": 1, "worker": ME, "keys": 0},
        {"partition": 2, "worker": PEER, "keys": None},
        {"partition": 3, "worker": None, "keys": None},
    ]
    assert merged["keys"] is None

    sizes[PEER] = {"orders": {2: 4}}
    distribution[PEER][topic].append(3)
    sizes[PEER]["orders"][3] = 1
    [merged] = merge_tables([table], distribution, sizes, PARTITIONS)
    assert merged["keys"] == 8


async def test_an_entry_is_the_stored_value_by_the_url_key_as_bytes(app: faust.App) -> None:
    table = orders(app)
    table.data[b"o-1"] = {"status": "paid"}
    assert entry_body(table, "o-1", ME) == {
        "table": "orders",
        "key": "o-1",
        "worker": ME,
        "value": {"status": "paid"},
    }
    assert entry_body(table, "o-2", ME) is None


async def test_a_windowed_entry_lists_the_key_windows_newest_first_marking_the_current(
    app: faust.App,
) -> None:
    wrapper = app.Table("logins", default=int, partitions=PARTITIONS).tumbling(60, expires=600)
    table = wrapper.table
    window = table.window
    assert window is not None
    # Stored the way Faust stores them: (key, the window's range as Faust computes it).
    for at_s, count in ((10.0, 1), (70.0, 2), (125.0, 5)):
        table.data[("u-1", window.current(at_s))] = count
    table.data[("u-2", window.current(125.0))] = 9

    windows = windowed_entry(table, "u-1", now_s=130.0)
    assert windows == [
        {"start": 120.0, "end": 179.9, "current": True, "value": 5},
        {"start": 60.0, "end": 119.9, "current": False, "value": 2},
        {"start": 0.0, "end": 59.9, "current": False, "value": 1},
    ]
    assert windowed_entry(table, "u-1", now_s=130.0, limit=1) == windows[:1]
    assert windowed_entry(table, "nobody") is None
    body = entry_body(table, "u-2", ME)
    assert body is not None
    assert [window["value"] for window in body["windows"]] == [9]
    # A stored (key, window) pair counts in the partition of its key, as lookups route.
    topic = table.changelog_topic.get_topic_name()
    sizes = local_partition_sizes(table, [TP(topic, p) for p in range(PARTITIONS)])
    assert sum(sizes.values()) == 4


class FakeRequest:
    def __init__(self, authorization: str | None) -> None:
        self.headers = {} if authorization is None else {"Authorization": authorization}


def refused(app: faust.App, token: str | None, authorization: str | None) -> Any:
    operator = OperatorSettings(token=token and SecretStr(token))
    request: Any = FakeRequest(authorization)
    return refusal(View(app, app.web), request, operator)


async def test_operator_views_need_the_bearer_token(app: faust.App) -> None:
    assert refused(app, "s3cret", "Bearer s3cret") is None

    for authorization in (None, "Bearer wrong", "Basic s3cret"):
        response = refused(app, "s3cret", authorization)
        assert response.status == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert response.content_type == "application/problem+json"
        assert json.loads(response.body)["status"] == 401

    disabled = refused(app, None, "Bearer anything")
    assert disabled.status == 403
    assert "WWW-Authenticate" not in disabled.headers
    assert json.loads(disabled.body)["title"] == "Forbidden"
