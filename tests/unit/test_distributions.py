"""
The two distributions of this repository: the provider's wheel carries the provider alone, and the emulator
(``emulator/``, ``ses-export-emulator``) stands on its own, importing nothing of the provider it tests.

The wheels are built once per session from a copy of the tracked tree (no stale ``build/`` of a checkout can
slip into them), without build isolation, so no package index is reached.
"""

from __future__ import annotations

import ast
import email
import json
import os
import shutil
import subprocess
import sys
import zipfile
from configparser import ConfigParser
from pathlib import Path

import pytest
import setuptools

from tests.conftest import REPO

EMULATOR_SRC = REPO / "emulator" / "src" / "ses_export_emulator"
#: Top-level packages the emulator must never import: the provider under test, and Airflow (importing it
#: configures Airflow from the environment of that moment, before a test has set AIRFLOW_HOME).
FORBIDDEN = ("airflow_provider_sesexport", "airflow")
LEFT_BEHIND = shutil.ignore_patterns(
    ".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis", ".deployment"
)


class Wheel:
    """A built wheel's file list, entry points and metadata."""

    def __init__(self, path: Path) -> None:
        with zipfile.ZipFile(path) as archive:
            self.files = archive.namelist()
            info = next(name for name in self.files if name.endswith(".dist-info/METADATA"))
            self.metadata = email.message_from_bytes(archive.read(info))
            points = [name for name in self.files if name.endswith(".dist-info/entry_points.txt")]
            self.entry_points = ConfigParser(delimiters=("=",))
            self.entry_points.optionxform = str  # type: ignore[assignment,method-assign]
            if points:
                self.entry_points.read_string(archive.read(points[0]).decode())

    def requirement_names(self) -> list[str]:
        """The names of the Requires-Dist lines, without versions, markers or extras."""
        names = []
        for requirement in self.metadata.get_all("Requires-Dist") or []:
            name = requirement.split(";")[0].split("[")[0]
            names.append(name.split("<")[0].split(">")[0].split("=")[0].split("!")[0].strip().lower())
        return names

    def groups(self) -> dict[str, dict[str, str]]:
        """Entry-point groups, each name to its object reference."""
        return {group: dict(self.entry_points[group]) for group in self.entry_points.sections()}


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Wheel]:
    """Both wheels, built from a clean copy of the tree: ``{"provider": ..., "emulator": ...}``."""
    tree = tmp_path_factory.mktemp("tree") / "repo"
    shutil.copytree(REPO, tree, ignore=LEFT_BEHIND)
    out = tmp_path_factory.mktemp("wheels")
    # setuptools (71+) imports an installed `packaging` before its own vendored copy, and MWAA 2.10.3's constraints
    # pin one older than the 24.2 that setuptools 77+ needs for license expressions: the build (offline, without
    # isolation) gets setuptools' own dependencies first.
    vendored = Path(setuptools.__file__).parent / "_vendor"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(vendored), os.environ.get("PYTHONPATH")]))}
    for source in (tree, tree / "emulator"):
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "-q",
                "--no-deps",
                "--no-build-isolation",
                "-w",
                str(out),
                str(source),
            ],
            check=True,
            capture_output=True,
            timeout=300,
            env=env,
        )
    return {
        "provider": Wheel(next(out.glob("airflow_provider_sesexport-*.whl"))),
        "emulator": Wheel(next(out.glob("ses_export_emulator-*.whl"))),
    }


def test_the_provider_wheel_carries_the_provider_only(wheels: dict[str, Wheel]) -> None:
    wheel = wheels["provider"]
    packages = {name.split("/")[0] for name in wheel.files if not name.split("/")[0].endswith(".dist-info")}
    assert packages == {"airflow_provider_sesexport"}
    assert not [name for name in wheel.files if "emulator" in name or name.startswith("scripts/")]
    assert "airflow_provider_sesexport/hooks/ses_export.py" in wheel.files  # the listing is the real one
    assert wheel.groups() == {
        "apache_airflow_provider": {"provider_info": "airflow_provider_sesexport:get_provider_info"}
    }
    names = wheel.requirement_names()
    assert "apache-airflow-providers-amazon" in names
    assert "aiohttp" not in names and "ses-export-emulator" not in names


def test_the_emulator_wheel_brings_its_cli_and_pytest_plugin(wheels: dict[str, Wheel]) -> None:
    wheel = wheels["emulator"]
    packages = {name.split("/")[0] for name in wheel.files if not name.split("/")[0].endswith(".dist-info")}
    assert packages == {"ses_export_emulator"}
    assert {"ses_export_emulator/server.py", "ses_export_emulator/pytest_plugin.py"} <= set(wheel.files)
    assert wheel.groups() == {
        "console_scripts": {"ses-export-emulator": "ses_export_emulator.cli:main"},
        "pytest11": {"ses_export_emulator": "ses_export_emulator.pytest_plugin"},
    }
    assert wheel.metadata["Name"] == "ses-export-emulator"
    names = wheel.requirement_names()
    assert "aiohttp" in names and "botocore" in names
    assert not [name for name in names if "airflow" in name]


@pytest.mark.parametrize("name", ["provider", "emulator"])
def test_each_wheel_carries_the_apache_license_and_its_urls(wheels: dict[str, Wheel], name: str) -> None:
    wheel = wheels[name]
    # PEP 639: an SPDX expression and the license file itself, no deprecated license classifier.
    assert wheel.metadata["License-Expression"] == "Apache-2.0"
    assert wheel.metadata.get_all("License-File") == ["LICENSE"]
    assert [f for f in wheel.files if f.endswith(".dist-info/licenses/LICENSE")]
    assert wheel.metadata["License"] is None
    assert not [c for c in wheel.metadata.get_all("Classifier") or [] if c.startswith("License ::")]
    assert "Development Status :: 4 - Beta" in wheel.metadata.get_all("Classifier")
    urls = dict(url.split(", ", 1) for url in wheel.metadata.get_all("Project-URL") or [])
    assert set(urls) == {"Documentation", "Source", "Issues", "Changelog"}


def test_developer_tooling_is_no_published_extra(wheels: dict[str, Wheel]) -> None:
    # dev/test are PEP 735 dependency groups: they never reach the published metadata.
    assert sorted(wheels["provider"].metadata.get_all("Provides-Extra") or []) == ["async", "openlineage"]
    names = wheels["provider"].requirement_names()
    assert not {"pytest", "ruff", "mypy", "moto", "hypothesis"} & set(names)


def _imported_modules(path: Path) -> list[str]:
    """
    Every module an emulator source file imports, at any depth of the file.

    :param path: the source file.
    """
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(node.module)
    return found


def test_no_emulator_module_imports_the_provider_or_airflow() -> None:
    sources = sorted(EMULATOR_SRC.glob("*.py"))
    assert len(sources) > 10, sources  # the scan reads the emulator's real source
    offending = {
        f"{path.name}: {module}"
        for path in sources
        for module in _imported_modules(path)
        if module.split(".")[0] in FORBIDDEN
    }
    assert not offending


def test_the_scan_sees_a_nested_import(tmp_path: Path) -> None:
    planted = tmp_path / "planted.py"
    planted.write_text("def f():\n    from airflow_provider_sesexport.utils import export_layout\n")
    assert _imported_modules(planted) == ["airflow_provider_sesexport.utils"]


def test_importing_every_emulator_module_loads_neither_the_provider_nor_airflow() -> None:
    modules = [
        "ses_export_emulator",
        *(f"ses_export_emulator.{path.stem}" for path in sorted(EMULATOR_SRC.glob("*.py"))),
    ]
    modules.remove("ses_export_emulator.__init__")
    modules.remove("ses_export_emulator.__main__")  # runs the CLI
    probe = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    loaded = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert "ses_export_emulator" in loaded and "aiohttp" in loaded  # the server was imported for real
    assert loaded.isdisjoint(FORBIDDEN)
