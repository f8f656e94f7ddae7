"""Path ids checked before they reach PostgreSQL: an id no resource can have (a NUL byte, which
PostgreSQL refuses in text, or an over-long one) names nothing, so it is answered as not found
without a query."""

from __future__ import annotations

from pydantic import TypeAdapter, ValidationError

from schemas.orders import Identifier

_ID: TypeAdapter[str] = TypeAdapter(Identifier)


def is_identifier(value: str) -> bool:
    try:
        _ID.validate_python(value)
    except ValidationError:
        return False
    return True
