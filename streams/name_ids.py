"""Name-based ids (RFC 4122 version 5, `uuid.uuid5`), made without its slow parts.

Every event the pipeline derives (a status, a dispatch, a receipt's event) has an id computed
from what caused it, so that work done again after a crash publishes the same ids, not new ones.
That is several ids per notification: `uuid.uuid5` spends about 8 µs on each, nearly all of it
in `UUID(bytes=..., version=5)` and `str()`, not in the SHA-1. These give exactly its values
(the same SHA-1, the version and variant bits set on the integer or the hex text): about 5 µs
for the `UUID`, 2 µs for its text.
"""

from __future__ import annotations

from hashlib import sha1
from uuid import NAMESPACE_URL, UUID

# The version nibble (bits 76-79) and the variant's two top bits (62-63), cleared then set to
# version 5 and the RFC 4122 variant (binary 10).
_CLEAR = ~((0xF << 76) | (0x3 << 62))
_SET = (5 << 76) | (0x2 << 62)
_VARIANT_DIGITS = "89ab"


class NameIds:
    """The ids of one namespace."""

    __slots__ = ("_prefix",)

    def __init__(self, namespace: UUID) -> None:
        self._prefix = namespace.bytes

    def uuid(self, name: str) -> UUID:
        """`uuid.uuid5(namespace, name)`."""
        digest = sha1(self._prefix + name.encode(), usedforsecurity=False).digest()
        return UUID(int=(int.from_bytes(digest[:16]) & _CLEAR) | _SET)

    def text(self, name: str) -> str:
        """`str(uuid.uuid5(namespace, name))`."""
        h = sha1(self._prefix + name.encode(), usedforsecurity=False).hexdigest()
        variant = _VARIANT_DIGITS[int(h[16], 16) & 3]
        return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{variant}{h[17:20]}-{h[20:32]}"


# The ids named by a `tributary:...` URL (receipts' events, webhooks' events without an id of
# their own, the statuses of receipts): one namespace, shared by the worker and the API.
URL_IDS = NameIds(NAMESPACE_URL)
