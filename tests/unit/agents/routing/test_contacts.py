"""The contacts fold: users.events -> one contact record per user, erased on deletion."""

from __future__ import annotations

from agents.routing.contacts import Contact, fold_contact
from tests.unit.agents.notification_factories import USER, preferences, user_created, user_event


def test_created_sets_every_contact_point() -> None:
    contact = fold_contact(None, user_created())
    assert contact == Contact(
        user_id=USER,
        email="ada@example.com",
        phone="+33612345678",
        push_token="tok-1",
        locale="fr-FR",
        time_zone="Europe/Paris",
    )
    assert contact.recipient("email") == "ada@example.com"
    assert contact.recipient("sms") == contact.recipient("whatsapp") == "+33612345678"
    assert contact.recipient("push") == "tok-1"


def test_updates_change_only_what_they_carry_and_reset_verification() -> None:
    contact = fold_contact(None, user_created())
    contact = fold_contact(contact, user_event("user.verified", contact="email"))
    contact = fold_contact(contact, user_event("user.verified", contact="phone"))
    assert contact is not None
    assert (contact.email_verified, contact.phone_verified) == (True, True)
    contact = fold_contact(contact, user_event("user.updated", email="new@example.com"))
    assert contact is not None
    assert (contact.email, contact.email_verified, contact.phone_verified) == (
        "new@example.com",
        False,
        True,
    )
    assert contact.locale == "fr-FR"
    contact = fold_contact(contact, user_event("user.updated", phone_removed=True))
    assert contact is not None
    assert contact.phone is None
    assert contact.recipient("sms") is None
    contact = fold_contact(contact, user_event("user.updated", push_token="tok-2"))
    assert contact is not None
    assert contact.push_token == "tok-2"


def test_preferences_are_a_snapshot_and_critical_has_no_switch() -> None:
    contact = fold_contact(None, user_created())
    assert contact is not None
    assert contact.switched_on("orders", "sms") is None  # never set
    event = user_event(
        "user.preferences-updated",
        categories=preferences(orders_sms=False).model_dump(),
        quiet_hours={"start": "22:00", "end": "07:00"},
    )
    contact = fold_contact(contact, event)
    assert contact is not None
    assert contact.switched_on("orders", "sms") is False
    assert contact.switched_on("orders", "email") is True
    assert contact.switched_on("critical", "sms") is None
    assert contact.quiet_hours is not None
    assert Contact.from_table(contact.to_table()) == contact


def test_an_update_before_creation_starts_a_record() -> None:
    contact = fold_contact(None, user_event("user.updated", locale="en-GB"))
    assert contact == Contact(user_id=USER, locale="en-GB")


def test_deletion_erases() -> None:
    contact = fold_contact(None, user_created())
    assert fold_contact(contact, user_event("user.deleted", reason="gdpr")) is None
    assert fold_contact(None, user_event("user.deleted")) is None
