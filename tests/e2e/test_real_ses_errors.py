"""
What real SES refuses, in a real Airflow against the emulator over HTTP (its default, real-SES behaviour):
an account without VDM (fact 5) fails the create task on its first try, without spending retries, and says
how to enable VDM; a metrics range that is not midnight to midnight UTC (fact 4) fails before any request.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest

from airflow_provider_sesexport.operators.ses_export import SesCreateExportJobOperator
from tests.airflow_names import AIRFLOW_V_3, DAG, daily_data_interval_schedule
from tests.conftest import task_states
from tests.e2e.conftest import try_number

pytestmark = pytest.mark.e2e

INTERVAL_START = dt.datetime(2026, 10, 30, tzinfo=dt.timezone.utc)
AT = {"logical_date" if AIRFLOW_V_3 else "execution_date": INTERVAL_START + dt.timedelta(days=1)}
VDM_COMMAND = "aws sesv2 put-account-vdm-attributes --vdm-attributes VdmEnabled=ENABLED"


def metrics_source(start: str, end: str) -> dict[str, Any]:
    return {
        "MetricsDataSource": {
            "Dimensions": {"ISP": ["Gmail"]},
            "Namespace": "VDM",
            "Metrics": [{"Name": "SEND", "Aggregation": "VOLUME"}],
            "StartDate": start,
            "EndDate": end,
        }
    }


DAILY = metrics_source("{{ data_interval_start }}", "{{ data_interval_end }}")


def create_dag(dag_id: str, source: dict[str, Any], **kwargs: Any) -> Any:
    with DAG(
        dag_id=dag_id, schedule=daily_data_interval_schedule(), start_date=dt.datetime(2026, 1, 1), catchup=False
    ) as dag:
        SesCreateExportJobOperator(
            task_id="create",
            export_data_source=source,
            waiter_delay=1,
            waiter_max_attempts=50,
            retries=2,
            retry_delay=dt.timedelta(seconds=0),
            **kwargs,
        )
    return dag


@pytest.mark.ses_export_emulator(vdm_enabled=False)
@pytest.mark.parametrize("deferrable", [False, True], ids=["sync", "deferrable"])
def test_account_without_vdm_fails_on_the_first_try_and_says_how_to_enable_it(
    run_dag: Any, ses_export_emulator: Any, task_logs: Any, deferrable: bool
) -> None:
    dr = run_dag(create_dag(f"e2e_no_vdm_{deferrable}", DAILY, deferrable=deferrable), **AT)

    assert task_states(dr) == {"create": "failed"}
    assert try_number(dr, "create") == 1  # retries=2, none spent
    logs = task_logs()
    assert "SesExportVdmNotEnabledError" in logs
    assert f"{VDM_COMMAND} --region {ses_export_emulator.region}" in logs
    assert "To use this feature you must enable Virtual Deliverability Manager" in logs  # AWS's words, kept
    create = ses_export_emulator.stats()["operations"]["CreateExportJob"]
    assert (create["requests"], create["client_errors"]) == (1, 1)  # one refusal, not retried by botocore either
    assert ses_export_emulator.jobs() == []


@pytest.mark.ses_export_emulator(vdm_enabled=False)
def test_the_same_dag_runs_once_vdm_is_enabled(run_dag: Any, ses_export_emulator: Any) -> None:
    """The fix the error names is the only change needed: the emulator's VDM switch stands in for the CLI call."""
    dag = create_dag("e2e_vdm_enabled_later", DAILY, deferrable=False)
    assert task_states(run_dag(dag, **AT)) == {"create": "failed"}

    ses_export_emulator.set_vdm(enabled=True)
    # a new run: the data interval of the day after
    later = {key: value + dt.timedelta(days=1) for key, value in AT.items()}
    assert task_states(run_dag(dag, **later)) == {"create": "success"}
    assert len(ses_export_emulator.jobs()) == 1


@pytest.mark.parametrize(
    ("start", "end", "named"),
    [
        # an hourly-looking range: not whole days
        ("2026-10-30T06:00:00+00:00", "{{ data_interval_end }}", "export_data_source.MetricsDataSource.StartDate"),
        # midnight in a DAG's local time zone is not midnight UTC
        ("2026-10-30T00:00:00+01:00", "2026-10-31T00:00:00+01:00", "export_data_source.MetricsDataSource.StartDate"),
        (
            "{{ data_interval_start }}",
            "{{ data_interval_end.replace(hour=12) }}",
            "export_data_source.MetricsDataSource.EndDate",
        ),
    ],
    ids=["start-6h", "local-midnight", "end-noon"],
)
def test_partial_day_metrics_range_fails_before_any_request(
    run_dag: Any, ses_export_emulator: Any, task_logs: Any, start: str, end: str, named: str
) -> None:
    dag_id = "e2e_partial_day_" + re.sub(r"[^A-Za-z0-9]", "_", f"{start}_{end}")
    dr = run_dag(create_dag(dag_id, metrics_source(start, end), deferrable=False), **AT)

    assert task_states(dr) == {"create": "failed"}
    assert try_number(dr, "create") == 1
    logs = task_logs()
    assert f"Invalid {named}=" in logs and "expected midnight UTC" in logs
    assert "'{{ data_interval_start }}' / '{{ data_interval_end }}'" in logs
    stats = ses_export_emulator.stats()
    assert stats["operations"]["CreateExportJob"]["requests"] == 0
    assert stats["total_requests"] == 0


def test_message_insights_range_at_any_time_of_day_is_sent(run_dag: Any, ses_export_emulator: Any) -> None:
    """The midnight rule is the metrics exports' only: a Message Insights export runs with the same times."""
    source = {
        "MessageInsightsDataSource": {"StartDate": "2026-10-30T06:00:00+00:00", "EndDate": "2026-10-30T18:30:00Z"}
    }
    dr = run_dag(create_dag("e2e_insights_any_time", source, deferrable=False), **AT)

    assert task_states(dr) == {"create": "success"}
    assert ses_export_emulator.stats()["operations"]["CreateExportJob"]["succeeded"] == 1
