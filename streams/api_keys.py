"""API keys: their format, their scopes, and how a secret is hashed and checked.

A key reads `trb_<key id>_<secret>`. The id names the row (it is not secret, and it is what
`tributary keys list` and `revoke` show); the secret is 32 random bytes, shown once at creation,
of which only a SHA-256 hash is stored. A fast hash is enough: the secret is random and long, so
there is nothing to guess by brute force that a slow hash would protect; what it prevents is
that someone reading the table (or a backup) can use the keys. Hashes are compared in constant
time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal, get_args

Scope = Literal[
    "orders:read",
    "notifications:read",
    "users:read",
    "users:write",
    "stats:read",
    "ratelimits:check",
    "templates:write",
    "operator",
]
SCOPES: Final[tuple[Scope, ...]] = get_args(Scope)
PREFIX = "trb_"
_KEY = re.compile(r"trb_([a-z0-9]{12})_([A-Za-z0-9_-]{43})")


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored key, without its secret (only its hash)."""

    id: str
    name: str
    scopes: frozenset[Scope]
    secret_hash: bytes
    created_at: datetime
    revoked_at: datetime | None = None
    rate_per_s: float | None = None
    burst: int | None = None
    daily_quota: int | None = None

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "scopes": sorted(self.scopes),
            "created_at": self.created_at.isoformat(),
            "revoked_at": None if self.revoked_at is None else self.revoked_at.isoformat(),
            "rate_per_s": self.rate_per_s,
            "burst": self.burst,
            "daily_quota": self.daily_quota,
        }


@dataclass(frozen=True, slots=True)
class PresentedKey:
    id: str
    secret: str


def new_key() -> tuple[PresentedKey, str]:
    """A fresh id and secret, and the key as the client will send it."""
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return PresentedKey(key_id, secret), f"{PREFIX}{key_id}_{secret}"


def parse_key(text: str) -> PresentedKey | None:
    """The id and secret of a well-formed key, else None (nothing about why: it is refused)."""
    found = _KEY.fullmatch(text)
    return None if found is None else PresentedKey(found.group(1), found.group(2))


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def secret_matches(secret: str, stored_hash: bytes) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)


def parse_scopes(text: str) -> frozenset[Scope]:
    """`a,b` into scopes; raises ValueError naming the unknown ones."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = sorted(set(names) - set(SCOPES))
    if unknown or not names:
        raise ValueError(
            f"unknown scope(s) {', '.join(unknown) or '(none given)'}; known: {', '.join(SCOPES)}"
        )
    return frozenset(scope for scope in SCOPES if scope in names)
