from __future__ import annotations

import pytest

from schemas.contracts import BY_TOPIC
from streams.kafka.catalog import DAY_MS, TopicCatalog
from streams.settings import DispatchSettings, KafkaSettings

RETRY_DELAYS_S = DispatchSettings().retry_delays_s
FAMILY_TOPICS = {
    "users.events": "user id",
    "auth.events": "user id",
    "orders.events": "order id",
    "notifications.requests": "user id",
    "notifications.dispatch": "notification id",
    "notifications.status": "notification id",
    "notifications.receipts": "notification id",
    "notifications.suppressions": "user id",
}


def test_topic_names_carry_the_prefix_and_dead_letters_follow_their_source() -> None:
    catalog = TopicCatalog("t1-", KafkaSettings(), RETRY_DELAYS_S)
    assert catalog.orders_events.name == "t1-orders.events"
    assert catalog.dead_letters(catalog.orders_events).name == "t1-orders.events.dlq"
    expected = {f"t1-{base}" for base in FAMILY_TOPICS}
    expected |= {f"{name}.dlq" for name in expected}
    expected |= {f"t1-analytics.{name}" for name in ("events", "orders", "auth", "delivery")}
    expected |= {"t1-analytics.partials"}
    expected |= {f"t1-notifications.dispatch.retry-{d}s" for d in (1, 5, 30)}
    expected |= {"t1-notifications.dlq", "t1-notifications.templates"}
    expected |= {"t1-notifications.providers", "t1-notifications.provider-commands"}
    names = [spec.name for spec in catalog.all()]
    assert sorted(names) == sorted(expected)


def test_every_contract_topic_is_cataloged_with_its_key_and_value_subject() -> None:
    catalog = TopicCatalog("t1-", KafkaSettings())
    assert set(BY_TOPIC) == set(FAMILY_TOPICS)
    for base, key in FAMILY_TOPICS.items():
        spec = catalog.for_topic(base)
        assert (spec.name, spec.key) == (f"t1-{base}", key)
        assert spec.value_subject == BY_TOPIC[base].subject == f"{base}-value"
    assert catalog.for_topic("orders.events") == catalog.orders_events
    with pytest.raises(KeyError, match=r"orders\.events\.dlq"):
        catalog.for_topic("orders.events.dlq")


def test_dead_letters_keep_the_key_hold_raw_bytes_and_are_kept_longer() -> None:
    catalog = TopicCatalog("", KafkaSettings())
    for spec in catalog.families():
        dead = catalog.dead_letters(spec)
        assert dead.key == spec.key
        assert dead.value_subject is None
        assert dead.retention_ms > spec.retention_ms


def test_partitions_and_replication_come_from_the_kafka_settings() -> None:
    kafka = KafkaSettings(partitions=9, replication_factor=3)
    catalog = TopicCatalog("", kafka, RETRY_DELAYS_S)
    assert (catalog.partitions, catalog.replication_factor) == (9, 3)
    assert catalog.metrics_partials.partitions == 1  # one consumer folds every partition's
    # One consumer folds every partition's partials; breaker reports and commands are a few;
    # templates are loaded as one record batch.
    single = (
        catalog.metrics_partials,
        catalog.notifications_providers,
        catalog.notifications_provider_commands,
        catalog.templates,
    )
    for spec in single:
        assert spec.partitions == 1
    for spec in catalog.all():
        if spec in single:
            continue
        assert (spec.partitions, spec.replication_factor) == (9, 3)
        assert spec.configs["cleanup.policy"] == "delete"
        assert int(spec.configs["retention.ms"]) == spec.retention_ms >= 7 * DAY_MS


def test_analytics_outputs_carry_their_subjects_and_are_kept_a_month() -> None:
    catalog = TopicCatalog("t1-", KafkaSettings())
    outputs = {spec.name: spec for spec in catalog.analytics() if spec.value_subject}
    assert set(outputs) == {f"t1-analytics.{n}" for n in ("events", "orders", "auth", "delivery")}
    for name, spec in outputs.items():
        assert spec.value_subject == f"{name.removeprefix('t1-')}-value"
        assert spec.retention_ms == 30 * DAY_MS
    assert catalog.analytics_output("analytics.orders").name == "t1-analytics.orders"
    assert catalog.metrics_partials.value_subject is None


def test_the_retry_topics_are_named_by_the_dispatch_delays() -> None:
    catalog = TopicCatalog("t1-", KafkaSettings(), (0.5, 2))
    retries = [spec.name for spec in catalog.notification_retries()]
    assert retries == ["t1-notifications.dispatch.retry-0.5s", "t1-notifications.dispatch.retry-2s"]


def test_a_catalog_built_without_retry_delays_refuses_to_list_retry_topics() -> None:
    catalog = TopicCatalog("t1-", KafkaSettings())
    assert catalog.for_topic("notifications.dispatch").name == "t1-notifications.dispatch"
    with pytest.raises(LookupError, match="retry delays"):
        catalog.notification_retries()
    with pytest.raises(LookupError, match="retry delays"):
        catalog.all()


def test_topics_are_durable_and_demand_two_in_sync_replicas_from_three() -> None:
    for factor, in_sync in ((1, "1"), (2, "1"), (3, "2"), (5, "2")):
        kafka = KafkaSettings(replication_factor=factor)
        spec = TopicCatalog("", kafka).orders_events
        assert spec.configs["min.insync.replicas"] == in_sync
        assert spec.configs["unclean.leader.election.enable"] == "false"


def test_breaker_reports_are_compacted_and_commands_are_not() -> None:
    catalog = TopicCatalog("t1-", KafkaSettings())
    reports = catalog.notifications_providers
    assert (reports.name, reports.key) == ("t1-notifications.providers", "provider/worker")
    assert reports.configs["cleanup.policy"] == "compact"
    commands = catalog.notifications_provider_commands
    assert (commands.name, commands.key) == ("t1-notifications.provider-commands", "provider")
    assert commands.configs["cleanup.policy"] == "delete"


def test_the_templates_topic_is_compacted_and_kept_for_good() -> None:
    spec = TopicCatalog("t1-", KafkaSettings()).templates
    assert (spec.name, spec.key) == ("t1-notifications.templates", "template name/version")
    assert spec.configs["cleanup.policy"] == "compact"
    assert spec.configs["retention.ms"] == "-1"
    assert spec.value_subject == "notifications.templates-value"
    assert spec.partitions == 1  # the files' first load is one record batch, seen whole
