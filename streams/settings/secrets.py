"""Checks on the secrets of a root: no development value outside dev mode, no secret reused.

A process refuses to start (its root does not validate) when a secret holds a value published in
this repository (the Makefile's, the sandbox's, older code defaults) while `TRIBUTARY_ENV` is not
`dev`, or when one value serves two purposes (two webhook families, a family and the providers,
the operator token and a provider's credential): a leak of one must not open the others.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import SecretStr

# Every secret value this repository publishes; refused outside `TRIBUTARY_ENV=dev`. Keep it in
# step with the Makefile's `DEV_*` values (tests/unit/streams/settings/test_secrets.py checks).
DEVELOPMENT_VALUES = frozenset(
    {
        "whsec_ZGV2LW9ubHktd2ViaG9vay1zZWNyZXQtMzItYnl0ZXM=",
        "whsec_ZGV2LW9ubHktb3JkZXJzLXdlYmhvb2stc2VjcmV0LTMy",
        "whsec_ZGV2LW9ubHktdXNlcnMtd2ViaG9vay1zZWNyZXQtMzI=",
        "whsec_ZGV2LW9ubHktYXV0aC13ZWJob29rLXNlY3JldC0zMi0=",
        "whsec_ZGV2LW9ubHktcHJvdmlkZXJzLXJlY2VpcHRzLXNlY3I=",
        "dev-operator-token",
        "dev-sendgrid-key",
        "dev-twilio-token",
        "dev-fcm-token",
        "dev-meta-token",
    }
)

DEV = "dev"


def secret_problems(secrets: Mapping[str, SecretStr | None], env: str) -> list[str]:
    """What is wrong with `secrets` (setting name -> value), as messages naming the settings."""
    problems: list[str] = []
    owners: dict[str, list[str]] = {}
    for name, secret in secrets.items():
        if secret is None:
            continue
        value = secret.get_secret_value()
        owners.setdefault(value, []).append(name)
        if env != DEV and value in DEVELOPMENT_VALUES:
            problems.append(
                f"{name} holds a published development value; set a secret of your own "
                f"(or TRIBUTARY_ENV=dev on a development machine)"
            )
    for names in owners.values():
        if len(names) > 1:
            problems.append(f"{', '.join(names)} share one value; each needs its own secret")
    return problems
