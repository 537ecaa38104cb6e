"""A DAG file importing our operators must parse as cheaply as one importing an Amazon provider sensor."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# What a DAG file must not pay for when it imports our sensor, operators and transfers: a module (or package) name
# here may be neither newly loaded nor named by an import statement our modules run at import. Only heavy
# third-party modules, which the methods that use them import; the package's own modules are imported at the top
# of each module (the whole parse-time cost is a couple of milliseconds either way: benchmarks/import_cost.py).
HEAVY = (
    "requests",
    "aiobotocore",
    "aiohttp",  # aiobotocore's transport
    "airflow.providers.common.sql",
    "airflow.providers.postgres",
    "airflow.providers.sqlite",
    "psycopg2",
    "psycopg",
    "airflow.providers.amazon.aws.hooks.s3",
    "airflow.providers.openlineage",
    "airflow.providers.common.compat.openlineage",
    "openlineage",
    # test tooling: the emulator is its own distribution, never the provider's import
    "ses_export_emulator",
    "moto",
)
BASELINE = ("airflow.providers.amazon.aws.sensors.base_aws", "airflow.providers.amazon.aws.operators.base_aws")
DAG_FACING = (
    "airflow_provider_sesexport.sensors.ses_export",
    "airflow_provider_sesexport.operators.ses_export",
    "airflow_provider_sesexport.transfers.ses_export_to_s3",
    "airflow_provider_sesexport.transfers.ses_export_to_sql",
)

# argv: the package whose import statements are recorded, the baseline modules, "--", the measured modules.
# Recording the statements (not only sys.modules) catches a heavy import the baseline happened to load first.
_STATEMENT_PROBE = """
import builtins, importlib.util, json, sys
package, rest = sys.argv[1], sys.argv[2:]
split = rest.index("--")
for name in rest[:split]:
    __import__(name)
from botocore.loaders import Loader
before, statements, models = set(sys.modules), [], []
real_import, real_load = builtins.__import__, Loader.load_service_model

def recording_import(name, globals=None, locals=None, fromlist=(), level=0):
    importer = (globals or {}).get("__name__", "")
    if importer == package or importer.startswith(package + "."):
        target = importlib.util.resolve_name("." * level + name, globals["__package__"]) if level else name
        statements.extend([target] + [f"{target}.{item}" for item in fromlist or ()])
    return real_import(name, globals, locals, fromlist, level)

def recording_load(self, service_name, *args, **kwargs):
    models.append(service_name)
    return real_load(self, service_name, *args, **kwargs)

builtins.__import__, Loader.load_service_model = recording_import, recording_load
for name in rest[split + 1:]:
    __import__(name)
builtins.__import__, Loader.load_service_model = real_import, real_load
print(json.dumps({"new": sorted(set(sys.modules) - before), "statements": statements, "models": models}))
"""


def _probe(package: str, *modules: str, path: Path | None = None) -> dict[str, list[str]]:
    env = dict(os.environ)
    if path is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(path), env.get("PYTHONPATH", "")]))
    out = subprocess.run(
        [sys.executable, "-c", _STATEMENT_PROBE, package, *BASELINE, "--", *modules],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-4000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _heavy(names: list[str]) -> list[str]:
    return sorted({n for n in names if any(n == h or n.startswith(h + ".") for h in HEAVY)})


@pytest.fixture(scope="module")
def dag_facing() -> dict[str, list[str]]:
    return _probe("airflow_provider_sesexport", *DAG_FACING)


def test_dag_facing_modules_load_nothing_heavy_over_the_amazon_baseline(dag_facing: dict[str, list[str]]) -> None:
    assert set(DAG_FACING) <= set(dag_facing["new"])  # the probe really imported them after the baseline
    assert _heavy(dag_facing["new"]) == []


def test_dag_facing_modules_run_no_heavy_import_statement(dag_facing: dict[str, list[str]]) -> None:
    assert "airflow.providers.amazon.aws.hooks.base_aws.AwsBaseHook" in dag_facing["statements"]  # recorded
    assert _heavy(dag_facing["statements"]) == []


def test_dag_facing_modules_load_no_service_model(dag_facing: dict[str, list[str]]) -> None:
    assert dag_facing["models"] == []


def test_the_probe_catches_heavy_imports(tmp_path: Path) -> None:
    """A module importing ``requests`` (already loaded by Airflow on some stacks) and S3Hook is flagged."""
    (tmp_path / "heavy_dag_file.py").write_text(
        "import requests\nfrom airflow.providers.amazon.aws.hooks import s3\n"
        "import botocore.session\nbotocore.session.get_session().get_service_model('sesv2')\n"
        "from airflow_provider_sesexport.records import iter_records\n"  # our own small modules are not heavy
    )
    found = _probe("heavy_dag_file", "heavy_dag_file", path=tmp_path)
    assert _heavy(found["statements"]) == ["airflow.providers.amazon.aws.hooks.s3", "requests"]
    assert "airflow.providers.amazon.aws.hooks.s3" in _heavy(found["new"])
    assert found["models"] == ["sesv2"]


def test_compat_version_check_agrees_with_probing_the_task_sdk() -> None:
    from airflow_provider_sesexport._compat import AIRFLOW_V_3
    from tests.airflow_names import AIRFLOW_V_3 as TASK_SDK_PRESENT

    assert AIRFLOW_V_3 is TASK_SDK_PRESENT
