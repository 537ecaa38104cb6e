"""`make demo` runs scripts/demo.py; this runs the same script in a fresh process and checks what it shows."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.e2e
@pytest.mark.reschedule_in_dag_test  # the demo's gate sensor is rescheduled inside dag.test()
def test_demo_runs_the_whole_product_offline() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AWS_"))}
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "demo.py"), "--time-scale", "0.5"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "status PROCESSING" in out
    assert "status COMPLETED" in out
    assert "Statistics (XCom 'statistics'): {'ProcessedRecordsCount':" in out
    assert "'ExportedRecordsCount': None}" in out  # the emulator's default is real SES's: not returned
    assert "records read by the report task:" in out
    assert "?<redacted>" in out
    assert "X-Amz-Signature" not in out
    assert "EMAIL_IDENTITY,SEND_VOLUME,DELIVERY_RATE" in out
    assert "Demo OK" in out
