"""Query parameters of the read endpoints: parsed, or an error naming the parameter."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from api import query
from streams.errors import ContractViolationError

AT = datetime(2026, 12, 5, 12, 30, tzinfo=UTC)


def field_of(error: pytest.ExceptionInfo[ContractViolationError]) -> str:
    [one] = error.value.errors
    return one.field


def test_a_cursor_this_api_issued_reads_back_as_its_position() -> None:
    cursor = query.encode_keyset(AT, "o-1")
    assert "=" not in cursor
    assert query.keyset({"cursor": cursor}) == (AT, "o-1")
    assert query.keyset({}) is None


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "%%%",
        "bm90LWpzb24",
        query.encode_keyset(AT.replace(tzinfo=None), "o-1"),
        "WzEsMl0",
        "W" * 600,
        base64.urlsafe_b64encode(b"[" * 300).decode(),
    ],
)
def test_any_other_cursor_is_refused_naming_it(cursor: str) -> None:
    with pytest.raises(ContractViolationError) as error:
        query.keyset({"cursor": cursor})
    assert field_of(error) == "cursor"


@pytest.mark.parametrize(("raw", "expected"), [(None, 50), ("1", 1), ("500", 500)])
def test_limit_within_bounds(raw: str | None, expected: int) -> None:
    params = {} if raw is None else {"limit": raw}
    assert query.limit(params, 50, 500) == expected


@pytest.mark.parametrize("raw", ["0", "501", "-1", "1.5", "ten", "", "²", "\u0661\u0660"])
def test_limit_out_of_bounds_is_refused(raw: str) -> None:
    with pytest.raises(ContractViolationError) as error:
        query.limit({"limit": raw}, 50, 500)
    assert field_of(error) == "limit"


def test_a_moment_needs_its_offset() -> None:
    assert query.moment({"from": "2026-12-05T12:30:00+00:00"}, "from") == AT
    assert query.moment({}, "from") is None
    assert query.moment({"from": "2026-12-05T13:30:00+01:00"}, "from") == AT
    for raw in ("2026-12-05T12:30:00", "yesterday", "0001-01-01T00:00:00+01:00"):
        with pytest.raises(ContractViolationError) as error:
            query.moment({"to": raw}, "to")
        assert field_of(error) == "to"


def test_a_choice_outside_the_set_is_refused() -> None:
    allowed = frozenset({"paid", "pending"})
    assert query.choice({"status": "paid"}, "status", allowed) == "paid"
    with pytest.raises(ContractViolationError, match="query") as error:
        query.choice({"status": "shipped"}, "status", allowed)
    assert field_of(error) == "status"
