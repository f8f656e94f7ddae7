"""The repository's Python files, for tests that read the code itself (imports, boundaries)."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def python_sources() -> list[str]:
    """Every `.py` file git tracks or would track (untracked, not ignored), relative to the repo."""
    return subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.py"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
