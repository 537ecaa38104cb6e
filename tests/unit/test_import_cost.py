"""A DAG file importing our operators must parse as cheaply as one importing an Amazon provider sensor."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY_PREFIXES = ("aiobotocore", "aiohttp", "airflow_provider_sesexport.emulator", "moto", "requests_toolbelt")

_PROBE = """
import json, sys
before = set(sys.modules)
for name in sys.argv[1:]:
    __import__(name)
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def _imported_by(*modules: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, "airflow", *modules], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


def test_dag_facing_modules_import_nothing_heavy() -> None:
    ours = _imported_by(
        "airflow_provider_sesexport.sensors.ses_export",
        "airflow_provider_sesexport.operators.ses_export",
        "airflow_provider_sesexport.triggers.ses_export",
        "airflow_provider_sesexport.transfers.ses_export_to_s3",
    )
    baseline = _imported_by("airflow.providers.amazon.aws.sensors.s3", "airflow.providers.amazon.aws.operators.s3")
    extra_heavy = sorted(m for m in ours - baseline if m.startswith(HEAVY_PREFIXES))
    assert extra_heavy == []
    assert "airflow_provider_sesexport.sensors.ses_export" in ours  # the probe really imported our modules
