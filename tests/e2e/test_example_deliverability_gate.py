"""The deliverability gate example in a real Airflow: a healthy day sends the campaign, a breaching day does not."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from tests.airflow_names import AIRFLOW_V_3
from tests.conftest import task_states
from tests.e2e.conftest import xcom

pytestmark = pytest.mark.e2e
UTC = dt.timezone.utc


def run_for(run_dag: Any, dag: Any, day: dt.date) -> Any:
    """A run with a logical date: it checks the UTC day before it (its data interval)."""
    logical = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(6), tzinfo=UTC)
    return run_dag(dag, **{"logical_date" if AIRFLOW_V_3 else "execution_date": logical})


@pytest.fixture
def gate(load_example_dag: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("SES_EXPORT_EXAMPLE_POKE_INTERVAL", "1")
    return load_example_dag("example_ses_deliverability_gate")


@pytest.mark.ses_export_emulator(time_scale=0.05)
def test_healthy_day_sends_the_campaign(gate: Any, run_dag: Any, ses_export_emulator: Any) -> None:
    day = dt.date(2026, 11, 10)
    ses_export_emulator.set_volumes("example.com", day.isoformat(), 20000, permanent_bounce=300, complaint=10)

    dr = run_for(run_dag, gate, day)

    assert task_states(dr) == {
        "metrics_source": "success",
        "create_export": "success",
        "wait_for_export": "success",
        "check_deliverability": "success",
        "send_campaign": "success",
    }
    (job,) = ses_export_emulator.jobs()
    source = ses_export_emulator.client().get_export_job(JobId=job["JobId"])["ExportDataSource"]["MetricsDataSource"]
    assert (source["StartDate"], source["EndDate"]) == (
        dt.datetime.combine(day, dt.time(), tzinfo=UTC),
        dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=UTC),
    )
    report = xcom(dr, "check_deliverability")
    assert report["healthy"] is True and report["job_id"] == job["JobId"]
    assert report["overall"] == {"send_volume": 20000.0, "bounce_rate": 0.015, "complaint_rate": 0.0005}
    assert xcom(dr, "send_campaign") == {"sent": True, "checked_job": job["JobId"]}


@pytest.mark.ses_export_emulator(time_scale=0.05)
def test_breaching_day_skips_the_campaign(gate: Any, run_dag: Any, ses_export_emulator: Any, task_logs: Any) -> None:
    day = dt.date(2026, 11, 11)
    ses_export_emulator.set_volumes("example.com", day.isoformat(), 20000, permanent_bounce=1300, complaint=30)

    dr = run_for(run_dag, gate, day)

    logs = task_logs()
    states = task_states(dr)
    assert states["check_deliverability"] == "skipped", states
    assert states["send_campaign"] == "skipped", states
    assert str(getattr(dr.state, "value", dr.state)) == "success"
    report = xcom(dr, "check_deliverability")
    print("XCom of the breaching day:", json.dumps(report, indent=1))
    assert report["healthy"] is False
    breach = {"group": {"EMAIL_IDENTITY": "example.com"}, "send_volume": 20000.0}
    assert report["breaches"] == [
        {"group": {}, "metric": "bounce", "rate": 0.065, "threshold": 0.05, "send_volume": 20000.0},
        {"group": {}, "metric": "complaint", "rate": 0.0015, "threshold": 0.001, "send_volume": 20000.0},
        {**breach, "metric": "bounce", "rate": 0.065, "threshold": 0.05},
        {**breach, "metric": "complaint", "rate": 0.0015, "threshold": 0.001},
    ]
    assert xcom(dr, "send_campaign") is None
    assert "EMAIL_IDENTITY=example.com: bounce rate 6.50% >= 5.00% (send volume 20,000)" in logs
