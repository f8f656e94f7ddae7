"""The rows the delivery store writes and the rows it reads name the same columns."""

from __future__ import annotations

from streams.stores.delivery_store import (
    DeliveryRow,
    DeliveryValues,
    TransitionRow,
    TransitionValues,
    notification_deliveries,
    notification_transitions,
)


def test_written_and_read_rows_have_the_same_columns() -> None:
    assert DeliveryValues._fields == tuple(DeliveryRow.model_fields)
    assert set(TransitionValues._fields) == set(TransitionRow.model_fields)


def test_written_rows_name_columns_of_their_tables() -> None:
    assert set(DeliveryValues._fields) <= set(notification_deliveries.c.keys())
    assert set(TransitionValues._fields) == set(notification_transitions.c.keys())
