"""Name-based ids are exactly RFC 4122 version-5 UUIDs, as `uuid.uuid5` makes them."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from streams.name_ids import NameIds

NAMESPACES = st.sampled_from([uuid.NAMESPACE_URL, uuid.NAMESPACE_DNS]) | st.uuids()


@given(NAMESPACES, st.text(max_size=120))
def test_an_id_is_uuid5_of_its_namespace_and_name(namespace: uuid.UUID, name: str) -> None:
    ids = NameIds(namespace)
    assert ids.uuid(name) == uuid.uuid5(namespace, name)
    assert ids.text(name) == str(uuid.uuid5(namespace, name))


def test_an_id_is_a_version_5_rfc_4122_uuid() -> None:
    made = NameIds(uuid.NAMESPACE_URL).uuid("tributary:receipt:sendgrid:abc:delivered")
    assert (made.version, made.variant) == (5, uuid.RFC_4122)
