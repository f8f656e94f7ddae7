"""The version gate: the worker starts only on the faust-streaming, mode-streaming and aiokafka
the suite ran.

The runtime's corrections reach into their private names, which any release may change without
notice; a different version could then lose or repeat events quietly instead of failing. So the
three are pinned exactly in pyproject.toml and requirements.lock, and a test keeps
`SUITE_VERSIONS` equal to both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import metadata
from types import MappingProxyType

from streams.errors import UnsupportedRuntimeError

SUITE_VERSIONS: Mapping[str, str] = MappingProxyType(
    {
        "faust-streaming": "0.15.3",
        "mode-streaming": "0.7.1",
        "aiokafka": "0.14.0",
    }
)

LOCK_FILE = "requirements.lock"
INSTALL_COMMAND = f"python -m pip install --require-hashes -r {LOCK_FILE}"


def installed_version(distribution: str) -> str | None:
    """The installed version of `distribution`, or None when it is not installed."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def check_runtime_versions(
    version_of: Callable[[str], str | None] = installed_version,
) -> None:
    """Raise `UnsupportedRuntimeError` naming every distribution not at its suite version."""
    wrong: list[str] = []
    for name, expected in SUITE_VERSIONS.items():
        found = version_of(name)
        if found is None:
            wrong.append(f"{name} is not installed, {expected} expected")
        elif found != expected:
            wrong.append(f"{name} {found} is installed, {expected} expected")
    if wrong:
        raise UnsupportedRuntimeError(
            "the worker refuses to start: "
            + "; ".join(wrong)
            + ". The streaming runtime (streams/runtime) works only with these exact versions:"
            " install the locked ones into the worker's environment, from the repository root:"
            f" `{INSTALL_COMMAND}`."
        )
