"""A preferences patch merged into the current snapshot: only what it names changes."""

from __future__ import annotations

from datetime import time
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.preferences import PreferencesPatch, patched
from schemas.users import CategoryPreferences, QuietHours

CURRENT = CategoryPreferences.model_validate(
    {"marketing": {"email": False, "sms": False}, "orders": {"whatsapp": True}}
)
QUIET = QuietHours(start=time(22), end=time(7))


def apply(change: dict[str, Any]) -> tuple[CategoryPreferences | None, QuietHours | None]:
    return patched(CURRENT, QUIET, PreferencesPatch.model_validate(change))


def test_only_named_switches_change() -> None:
    categories, quiet = apply({"categories": {"marketing": {"email": True}}})
    assert categories is not None
    assert categories.marketing is not None
    assert (categories.marketing.email, categories.marketing.sms) == (True, False)
    assert categories.orders == CURRENT.orders
    assert quiet == QUIET


def test_null_unsets_a_switch_a_category_or_everything() -> None:
    categories, _ = apply({"categories": {"marketing": {"sms": None}, "orders": None}})
    assert categories is not None
    assert categories.marketing is not None
    assert (categories.marketing.email, categories.marketing.sms) == (False, None)
    assert categories.orders is None
    assert apply({"categories": None}) == (None, QUIET)


def test_quiet_hours_are_replaced_or_removed_only_when_named() -> None:
    assert apply({})[1] == QUIET
    assert apply({"quiet_hours": None})[1] is None
    new = apply({"quiet_hours": {"start": "23:00", "end": "06:30"}})[1]
    assert new == QuietHours(start=time(23), end=time(6, 30))


def test_from_no_preferences_the_patch_is_the_whole_snapshot() -> None:
    patch = PreferencesPatch.model_validate({"categories": {"security": {"push": False}}})
    categories, quiet = patched(None, None, patch)
    assert categories == CategoryPreferences.model_validate({"security": {"push": False}})
    assert quiet is None


@pytest.mark.parametrize(
    "change",
    [{"categories": {"critical": {}}}, {"locale": "fr"}, {"categories": {"orders": {"fax": True}}}],
)
def test_unknown_fields_are_refused(change: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        PreferencesPatch.model_validate(change)
