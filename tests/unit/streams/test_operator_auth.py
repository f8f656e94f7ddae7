"""The operator token check: the right token passes, anything else is 401, no token is 403."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from streams.operator_auth import OperatorAuthError, check_bearer
from streams.settings import (
    ApiProcessSettings,
    CliProcessSettings,
    WorkerProcessSettings,
)

TOKEN = SecretStr("s3cret-operator-token")


def test_the_right_bearer_token_passes() -> None:
    check_bearer("Bearer s3cret-operator-token", TOKEN)
    check_bearer("bearer   s3cret-operator-token ", TOKEN)


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer ", "Basic s3cret-operator-token", "Bearer wrong", "s3cret"],
)
def test_anything_else_is_unauthorized(header: str | None) -> None:
    with pytest.raises(OperatorAuthError) as caught:
        check_bearer(header, TOKEN)
    assert caught.value.status == 401


def test_without_a_configured_token_operator_access_is_off() -> None:
    with pytest.raises(OperatorAuthError) as caught:
        check_bearer("Bearer anything", None)
    assert caught.value.status == 403


@pytest.mark.parametrize(
    "root",
    [WorkerProcessSettings, ApiProcessSettings, CliProcessSettings],
    ids=lambda r: r.__name__,
)
def test_the_token_comes_from_tributary_operator_token(
    monkeypatch: pytest.MonkeyPatch,
    root: type[WorkerProcessSettings | ApiProcessSettings | CliProcessSettings],
) -> None:
    """The worker checks it, the API checks it, the CLI sends it: one variable for all three."""
    monkeypatch.setenv("TRIBUTARY_OPERATOR_TOKEN", "from-env")
    settings = root()
    token = settings.operator.token
    assert token is not None
    assert token.get_secret_value() == "from-env"
    assert "from-env" not in repr(settings)
