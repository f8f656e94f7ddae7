from __future__ import annotations

import copy
from datetime import time
from typing import Any

import pytest
from pydantic import ValidationError

from schemas import examples
from schemas.users import (
    USER_EVENT_TYPES,
    CategoryPreferences,
    UserCreated,
    UserDeleted,
    UserEvent,
    UserPreferencesUpdated,
    UserVerified,
    UserWebhook,
)


def _body(event_type: str = "user.created", **user_changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(examples.webhook_body(event_type))
    body["user"].update(user_changes)
    return body


def _failing_fields(body: dict[str, Any]) -> set[str]:
    with pytest.raises(ValidationError) as caught:
        UserWebhook.model_validate(body)
    return {".".join(str(p) for p in error["loc"]) for error in caught.value.errors()}


@pytest.mark.parametrize("event_type", USER_EVENT_TYPES)
def test_every_user_type_is_accepted_with_the_key_in_user_id(event_type: str) -> None:
    parsed = UserWebhook.model_validate(_body(event_type))
    assert parsed.type == event_type
    assert parsed.user.user_id == "usr_42"


def test_the_user_object_is_the_payload_model_of_the_type() -> None:
    assert type(UserWebhook.model_validate(_body("user.created")).user) is UserCreated
    assert type(UserWebhook.model_validate(_body("user.verified")).user) is UserVerified
    assert type(UserWebhook.model_validate(_body("user.deleted")).user) is UserDeleted


def test_look_alike_payloads_follow_the_type_not_the_shape() -> None:
    # {"id"} alone fits user.verified and user.deleted alike; the type decides.
    body = {"type": "user.deleted", "occurred_at": examples.OCCURRED_AT, "user": {"id": "u1"}}
    assert type(UserWebhook.model_validate(body).user) is UserDeleted
    body["type"] = "user.verified"
    assert type(UserWebhook.model_validate(body).user) is UserVerified


def test_every_failing_field_is_named_as_it_is_in_the_body() -> None:
    body = _body(email="not-an-email", phone="0612", locale="fr_FR!", time_zone="Mars/Olympus")
    del body["user"]["id"]
    assert _failing_fields(body) == {
        "user.id",
        "user.email",
        "user.phone",
        "user.locale",
        "user.time_zone",
    }


def test_the_key_is_named_id_in_the_body_so_user_id_is_unknown_there() -> None:
    body = _body()
    body["user"]["user_id"] = body["user"].pop("id")
    assert _failing_fields(body) == {"user.id", "user.user_id"}


def test_an_unknown_type_is_reported_alone() -> None:
    # Which fields the user object lacks depends on the type, so guessing would only mislead.
    body = {**_body(email="not-an-email"), "type": "user.exploded"}
    assert _failing_fields(body) == {"type"}


def test_a_user_object_that_is_not_an_object_is_reported() -> None:
    assert _failing_fields({**_body(), "user": "usr_42"}) == {"user"}


def test_an_update_must_change_something_and_not_contradict_itself() -> None:
    empty = {"type": "user.updated", "occurred_at": examples.OCCURRED_AT, "user": {"id": "u"}}
    assert _failing_fields(empty) == {"user"}
    contradictory = _body("user.updated", phone="+33612345678", phone_removed=True)
    assert _failing_fields(contradictory) == {"user"}
    removal = {**empty, "user": {"id": "u", "phone_removed": True}}
    assert UserWebhook.model_validate(removal).user.phone_removed is True  # type: ignore[union-attr]


def test_preferences_are_a_snapshot_with_strict_switches_unset_ones_being_defaults() -> None:
    body = _body("user.preferences-updated")
    del body["user"]["categories"]["marketing"]["sms"]
    body["user"]["categories"]["orders"]["push"] = "yes"
    assert _failing_fields(body) == {"user.categories.orders.push"}
    del body["user"]["categories"]["orders"]["push"]
    event = UserWebhook.model_validate(body).user
    assert isinstance(event, UserPreferencesUpdated)
    assert event.categories is not None
    assert event.categories.marketing is not None
    assert event.categories.marketing.sms is None  # not set: the default
    reset = _body("user.preferences-updated")
    reset["user"]["categories"] = reset["user"]["quiet_hours"] = None
    assert UserWebhook.model_validate(reset).user == UserPreferencesUpdated(user_id="usr_42")


def test_the_critical_category_cannot_be_switched_off_because_it_cannot_be_expressed() -> None:
    body = _body("user.preferences-updated")
    body["user"]["categories"]["critical"] = dict.fromkeys(
        ("email", "sms", "push", "whatsapp"), False
    )
    assert _failing_fields(body) == {"user.categories.critical"}
    categories = UserPreferencesUpdated.model_fields["categories"].annotation
    assert categories == CategoryPreferences | None
    assert "critical" not in CategoryPreferences.model_fields


@pytest.mark.parametrize(
    ("quiet_hours", "failing"),
    [
        ({"start": "22:00", "end": "22:00"}, {"user.quiet_hours"}),
        ({"start": "22:00:30", "end": "07:00"}, {"user.quiet_hours.start"}),
        ({"start": "22:00+02:00", "end": "07:00"}, {"user.quiet_hours.start"}),
        (
            {"start": "22:00", "end": "07:00", "time_zone": "Nowhere"},
            {"user.quiet_hours.time_zone"},
        ),
        ({"start": "25:00", "end": "07:00"}, {"user.quiet_hours.start"}),
    ],
)
def test_quiet_hours_are_whole_minutes_of_wall_clock_time(
    quiet_hours: dict[str, Any], failing: set[str]
) -> None:
    assert _failing_fields(_body("user.preferences-updated", quiet_hours=quiet_hours)) == failing


def test_quiet_hours_may_span_midnight_and_default_to_the_users_time_zone() -> None:
    body = _body("user.preferences-updated", quiet_hours={"start": "22:30", "end": "06:00"})
    user = UserWebhook.model_validate(body).user
    assert isinstance(user, UserPreferencesUpdated)
    assert user.quiet_hours is not None
    assert (user.quiet_hours.start, user.quiet_hours.end) == (time(22, 30), time(6, 0))
    assert user.quiet_hours.time_zone is None


def test_the_envelope_refuses_a_payload_of_another_type() -> None:
    event = examples.event("user.deleted")
    with pytest.raises(ValidationError) as caught:
        UserEvent.model_validate({**dict(event), "event_type": "user.verified"})
    assert [error["loc"] for error in caught.value.errors()] == [("payload",)]
    assert "user.verified needs a UserVerified, not UserDeleted" in str(caught.value)


def test_the_envelope_validates_payload_dicts_by_event_type() -> None:
    event = examples.event("user.created")
    data = event.model_dump()
    data["payload"]["email"] = "nope"
    with pytest.raises(ValidationError) as caught:
        UserEvent.model_validate(data)
    assert [error["loc"] for error in caught.value.errors()] == [("payload", "email")]


def test_naive_timestamps_and_unknown_fields_are_rejected() -> None:
    assert _failing_fields({**_body(), "occurred_at": "2026-11-21T10:15:00"}) == {"occurred_at"}
    assert _failing_fields(_body(nickname="ada")) == {"user.nickname"}
