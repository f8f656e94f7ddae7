"""`tributary tables`: its grammar, where it asks, and what each answer of the worker means."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from streams.cli.arguments import parse
from streams.cli.errors import UsageError
from streams.cli.tables import auth_headers, checked, entry_path, worker_url
from streams.errors import ServiceUnavailableError
from streams.settings import OperatorSettings, WorkerSettings

URL = "http://127.0.0.1:6066"


def test_tables_alone_lists_and_get_names_a_table_and_key() -> None:
    listed = parse(["tables"])
    assert (listed.command, listed.action, listed.worker_url) == ("tables", None, None)
    assert parse(["tables", "list"]).action == "list"
    got = parse(["tables", "--worker-url", "http://w:1", "get", "orders", "o-1"])
    assert (got.action, got.table, got.key, got.worker_url) == (
        "get",
        "orders",
        "o-1",
        "http://w:1",
    )
    after = parse(["tables", "get", "orders", "o-1", "--worker-url", "http://w:2"])
    assert after.worker_url == "http://w:2"


def test_get_without_a_key_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        parse(["tables", "get", "orders"])


def test_the_worker_url_defaults_to_the_configured_web_address() -> None:
    worker = WorkerSettings(web_host="10.0.0.5", web_port=7001)
    assert worker_url(worker, None) == "http://10.0.0.5:7001"
    assert worker_url(worker, "http://other:1/") == "http://other:1"


def test_the_token_comes_from_the_operator_settings_and_is_required() -> None:
    assert auth_headers(OperatorSettings(token=SecretStr("t0k"))) == {"Authorization": "Bearer t0k"}
    with pytest.raises(UsageError, match="TRIBUTARY_OPERATOR_TOKEN"):
        auth_headers(OperatorSettings(token=None))


def test_table_and_key_are_escaped_into_one_path_segment_each() -> None:
    assert entry_path("orders", "a/b c") == "/v1/tables/orders/a%2Fb%20c"


def test_answers_map_to_exit_reasons() -> None:
    assert checked(URL, 200, {"tables": []}) == {"tables": []}
    assert checked(URL, 404, {"detail": "no entry"}) is None
    with pytest.raises(UsageError, match="401"):
        checked(URL, 401, {"detail": "the operator token is not valid"})
    with pytest.raises(UsageError, match="403"):
        checked(URL, 403, None)
    with pytest.raises(ServiceUnavailableError) as raised:
        checked(URL, 503, None)
    assert raised.value.service == "worker"
