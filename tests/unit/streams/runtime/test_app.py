"""The Faust app factory and helpers; building an app opens no connection."""

from __future__ import annotations

import asyncio
from pathlib import Path

import faust
import pytest
from faust.types.tuples import Message
from pydantic import ValidationError

from streams.runtime.app import broker_urls, changelog_specs, create_faust_app
from streams.runtime.batch_agent import describe_event, event_scope
from streams.runtime.changelog_writes import ChangelogWrites
from streams.runtime.topics import raw_topic
from streams.settings import WorkerProcessSettings
from tests.unit.streams.runtime.recording_send import RecordingSend


def test_each_bootstrap_host_becomes_a_kafka_url() -> None:
    assert broker_urls("a:9092, b:9093,") == ["kafka://a:9092", "kafka://b:9093"]
    with pytest.raises(ValueError, match="no host"):
        broker_urls(" , ")


def test_the_app_is_configured_from_the_settings() -> None:
    settings = WorkerProcessSettings.model_validate(
        {
            "kafka": {"bootstrap": "k1:9092,k2:9092", "partitions": 3, "replication_factor": 2},
            "worker": {
                "app_id": "orders-test",
                "web_host": "127.0.0.1",
                "web_port": 6123,
                "store": "memory://",
                "data_dir": "/srv/tributary-data",
                "standby_replicas": 2,
                "send_timeout_s": 12.5,
                "changelog_flush_interval_s": 0.25,
            },
        }
    )
    app = create_faust_app(settings)
    conf = app.conf
    assert conf.id == "orders-test"
    assert [str(url) for url in conf.broker] == ["kafka://k1:9092", "kafka://k2:9092"]
    assert str(conf.store) == "memory:"
    assert conf.datadir == Path("/srv/tributary-data/orders-test")
    assert (conf.web_port, str(conf.canonical_url)) == (6123, "http://127.0.0.1:6123")
    assert (conf.topic_partitions, conf.topic_replication_factor) == (3, 2)
    assert conf.autodiscover is False
    assert conf.table_standby_replicas == 2
    assert conf.producer_request_timeout == 12.5
    assert app.changelog_writes.flush_interval_s == 0.25


def test_two_apps_are_independent_objects() -> None:
    settings = WorkerProcessSettings.model_validate({"worker": {"web_port": 6124}})
    assert create_faust_app(settings) is not create_faust_app(settings)


def test_web_port_zero_picks_a_free_port_and_advertises_it() -> None:
    conf = create_faust_app(WorkerProcessSettings.model_validate({"worker": {"web_port": 0}})).conf
    assert conf.web_port > 0
    assert conf.canonical_url.port == conf.web_port


def test_a_raw_topic_passes_bytes_through_untouched() -> None:
    app = create_faust_app(WorkerProcessSettings.model_validate({"worker": {"web_port": 6125}}))
    topic = raw_topic(app, "p-orders.events")
    assert topic.get_topic_name() == "p-orders.events"
    key, value = topic.prepare_key(b"o-1", None)[0], topic.prepare_value(b"\x00{", None)[0]
    assert (key, value) == (b"o-1", b"\x00{")


def test_a_consumed_record_becomes_the_configured_event_class() -> None:
    """The class is looked up once (`TributaryApp.create_event`), still the one configured."""

    class AuditedEvent(faust.Event):  # type: ignore[misc]  # faust's Event is untyped here
        pass

    app = create_faust_app(WorkerProcessSettings.model_validate({"worker": {"web_port": 6127}}))
    app.conf.Event = AuditedEvent
    message = Message("p-orders.events", 2, 7, 0.0, 0, None, b"o-1", b"{}", None)
    first = app.create_event(b"o-1", b"{}", None, message)
    second = app.create_event(b"o-2", b"[]", None, message)
    assert type(first) is AuditedEvent
    assert type(second) is AuditedEvent
    assert (first.app, first.key, first.value, first.message) == (app, b"o-1", b"{}", message)
    assert (second.key, second.value) == (b"o-2", b"[]")


def test_event_scope_makes_the_event_current_for_table_writes_and_then_restores() -> None:
    app = create_faust_app(WorkerProcessSettings.model_validate({"worker": {"web_port": 6126}}))
    message = Message("p-orders.events", 4, 99, 0.0, 0, None, b"o-1", b"{}", None)
    event = faust.Event(app, b"o-1", b"{}", None, message)
    assert faust.current_event() is None
    with event_scope(event):
        assert faust.current_event() is event
        assert describe_event(event).partition == 4
    assert faust.current_event() is None


def test_an_inner_event_scope_restores_the_outer_one_even_when_it_raises() -> None:
    app = create_faust_app(WorkerProcessSettings.model_validate({"worker": {"web_port": 6128}}))
    outer, inner = (
        faust.Event(app, key, b"{}", None, Message("t", p, 1, 0.0, 0, None, key, b"{}", None))
        for key, p in ((b"o-1", 1), (b"o-2", 2))
    )
    seen: list[object] = []

    def fail_inside() -> None:
        with event_scope(inner):
            seen.append(faust.current_event())
            raise ValueError("inner")

    with event_scope(outer):
        with pytest.raises(ValueError, match="inner"):
            fail_inside()
        assert faust.current_event() is outer
    assert seen == [inner]
    assert faust.current_event() is None


def test_each_table_changelog_is_declared_compacted_with_the_table_partitions() -> None:
    settings = WorkerProcessSettings.model_validate(
        {"kafka": {"partitions": 4}, "worker": {"app_id": "app-x", "web_port": 6127}}
    )
    app = create_faust_app(settings)
    app.Table("counts", partitions=2)
    app.Table("totals")
    specs = {spec.name: spec for spec in changelog_specs(app, settings.kafka)}
    assert {name: spec.partitions for name, spec in specs.items()} == {
        "app-x-counts-changelog": 2,
        "app-x-totals-changelog": 4,
    }
    assert specs["app-x-counts-changelog"].configs["cleanup.policy"] == "compact"
    assert specs["app-x-counts-changelog"].configs["retention.ms"] == "-1"


def test_a_table_with_a_retention_has_its_changelog_deleted_by_time_too() -> None:
    settings = WorkerProcessSettings.model_validate(
        {"kafka": {"partitions": 4}, "worker": {"app_id": "app-x", "web_port": 6127}}
    )
    app = create_faust_app(settings)
    app.Table("sends", retention_s=3 * 24 * 3600)
    app.Table("seen", retention_s=3600)
    specs = {spec.name: spec.configs for spec in changelog_specs(app, settings.kafka)}
    sends, seen = specs["app-x-sends-changelog"], specs["app-x-seen-changelog"]
    assert sends["cleanup.policy"] == seen["cleanup.policy"] == "compact,delete"
    assert sends["retention.ms"] == str(3 * 24 * 3600 * 1000)
    # Kafka deletes whole segments, never the one being written: a segment rolls at least
    # daily, and as often as the retention when it is shorter.
    assert sends["segment.ms"] == str(24 * 3600 * 1000)
    assert seen["retention.ms"] == seen["segment.ms"] == str(3600 * 1000)
    # Faust's own declaration of the topic says the same.
    topic = app.tables["sends"].changelog_topic
    assert (topic.deleting, topic.compacting, topic.retention) == (True, True, 3 * 24 * 3600.0)


def test_a_retention_below_a_second_is_refused() -> None:
    app = create_faust_app(WorkerProcessSettings.model_validate({"worker": {"web_port": 6127}}))
    with pytest.raises(ValueError, match="retention_s"):
        app.Table("sends", retention_s=0)


@pytest.mark.parametrize(
    ("generation", "flow_active", "acknowledged"),
    [
        (3, True, True),  # the consumer's current generation, flowing: acknowledged
        (2, True, False),  # fetched before the last rebalance: to be read again
        (3, False, False),  # a rebalance or a stop under way: to be read again
    ],
)
def test_an_event_the_consumer_moved_on_from_is_not_acknowledged(
    generation: int, flow_active: bool, acknowledged: bool
) -> None:
    app = create_faust_app(WorkerProcessSettings.model_validate({"worker": {"web_port": 6128}}))
    app.consumer_generation_id = 3
    if flow_active:
        app.flow_control.resume()
    else:
        app.flow_control.suspend()
    message = Message(
        "p-orders.events", 4, 99, 0.0, 0, None, b"o-1", b"{}", None, generation_id=generation
    )
    event = app.create_event(b"o-1", b"{}", None, message)
    assert event.ack() is acknowledged
    assert message.acked is acknowledged


def test_the_worker_advertises_its_own_url_never_a_wildcard_bind_address() -> None:
    """Other workers send the operator token to the advertised URL: 0.0.0.0 is no address of
    this worker (on another host it is that host)."""
    for host in ("0.0.0.0", "::", "[::]"):
        with pytest.raises(ValidationError, match="advertised_url"):
            WorkerProcessSettings.model_validate({"worker": {"web_host": host}})
    with pytest.raises(ValidationError, match="advertised_url"):
        WorkerProcessSettings.model_validate({"worker": {"advertised_url": "http://0.0.0.0:6066"}})
    settings = WorkerProcessSettings.model_validate(
        {
            "worker": {
                "web_host": "0.0.0.0",
                "web_port": 6126,
                "advertised_url": "http://worker-3.internal:6126",
            }
        }
    )
    conf = create_faust_app(settings).conf
    assert str(conf.canonical_url) == "http://worker-3.internal:6126"
    assert conf.web_bind == "0.0.0.0"


async def test_a_rebalance_writes_the_held_table_changes_before_faust_revokes_anything() -> None:
    """Until the worker rejoins nobody else owns its partitions: written later, a held change
    could land in a changelog after its next owner's newer one."""
    send = RecordingSend()
    app = create_faust_app(WorkerProcessSettings.model_validate({"worker": {"store": "memory://"}}))
    app.changelog_writes = ChangelogWrites(send, flush_interval_s=60)
    table = app.Table("orders", partitions=1)
    message = Message("p-orders.events", 0, 1, 0.0, 0, None, b"o-1", b"{}", None)
    with event_scope(faust.Event(app, b"o-1", b"{}", None, message)):
        table[b"o-1"] = {"status": "paid"}
    revoked: list[str] = []
    app.tables.on_partitions_revoked = lambda partitions: revoked.append(  # type: ignore[method-assign]
        f"tables revoked after {len(send.sent)} write(s)"
    )
    revoking = asyncio.ensure_future(app._on_partitions_revoked(set()))
    await asyncio.wait_for(send.started.wait(), timeout=5)
    assert revoked == []  # Faust's revocation waits for the write to be acknowledged
    send.release.set()
    await asyncio.wait_for(revoking, timeout=5)
    assert revoked == ["tables revoked after 1 write(s)"]
