"""The operator endpoints' bearer token check, shared by the API and the worker's web views.

Both servers guard operator surfaces (table views, lifting blocks) with the same token, so the
check lives here, below both. A deployment without a token gets 403 rather than an open door.
"""

from __future__ import annotations

import hmac

from pydantic import SecretStr

from streams.errors import TributaryError

BEARER = "bearer"


class OperatorAuthError(TributaryError):
    """The caller is not an operator: 401 (no or wrong token) or 403 (operator access is off)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def check_bearer(authorization: str | None, token: SecretStr | None) -> None:
    """Raise unless `authorization` is `Bearer <token>`; compared in constant time."""
    if token is None:
        raise OperatorAuthError(403, "operator endpoints are disabled: no operator token is set")
    if not authorization:
        raise OperatorAuthError(401, "an Authorization: Bearer <operator token> header is required")
    scheme, _, presented = authorization.partition(" ")
    if scheme.lower() != BEARER or not presented.strip():
        raise OperatorAuthError(401, "the Authorization header must be 'Bearer <operator token>'")
    expected = token.get_secret_value().encode()
    if not hmac.compare_digest(presented.strip().encode(), expected):
        raise OperatorAuthError(401, "the operator token is not valid")
