"""Guarding the API's operator endpoints; the token check itself is `streams.operator_auth`."""

from __future__ import annotations

from aiohttp import hdrs, web

from api.keys import SETTINGS
from streams.operator_auth import check_bearer


def require_operator(request: web.Request) -> None:
    """Raise `OperatorAuthError` (answered 401/403 by the problem middleware) for a non-operator."""
    check_bearer(request.headers.get(hdrs.AUTHORIZATION), request.app[SETTINGS].operator.token)
