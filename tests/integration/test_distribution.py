"""The wheel `pip install .` builds holds the whole project, and not the provider sandbox.

The Docker image installs the project that way (not editable) and runs the installed packages, so
a module or data file the packaging configuration leaves out is missing there only: `tributary`
(in `streams.cli`) once was. The sandbox is a test double, run from the repository or the image's
working directory, never installed. Built from a copy of the packages and the sandbox beside them
(as in the repository), so the source tree stays free of build output.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from configparser import ConfigParser
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIND = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"][
    "find"
]
PACKAGES = tuple(pattern.removesuffix("*") for pattern in FIND["include"])
NOT_INSTALLED = "sandbox"
BUILD_TIMEOUT_S = 300.0


def source_files(root: Path, packages: tuple[str, ...] = PACKAGES) -> set[str]:
    """Every file of `packages`, as the wheel names it."""
    return {
        path.relative_to(root).as_posix()
        for package in packages
        for path in (root / package).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_the_wheel_holds_every_module_and_data_file_and_the_cli_but_not_the_sandbox(
    tmp_path: Path,
) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    for package in (*PACKAGES, NOT_INSTALLED):
        shutil.copytree(REPO / package, source / package, ignore=shutil.ignore_patterns("*.pyc"))
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", "dist", "."],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    [wheel] = (source / "dist").glob("tributary-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        [entry_points] = [name for name in names if name.endswith(".dist-info/entry_points.txt")]
        scripts = ConfigParser()
        scripts.read_string(archive.read(entry_points).decode())

    assert sorted(source_files(source) - names) == []
    assert NOT_INSTALLED not in PACKAGES
    assert source_files(source, (NOT_INSTALLED,))
    assert sorted(name for name in names if name.split("/")[0] == NOT_INSTALLED) == []
    module, _, _ = scripts["console_scripts"]["tributary"].partition(":")
    assert module.replace(".", "/") + "/__init__.py" in names
    assert "BuildBackendWarning" not in built.stderr, built.stderr
