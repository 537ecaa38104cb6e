"""DAG builders and emulator helpers shared by the fault-table modules."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

from tests.reliability.conftest import nominal

START = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def metrics_source(day: dt.date = dt.date(2026, 10, 31)) -> dict[str, Any]:
    """A valid ``ExportDataSource`` for a one-day VDM metrics export."""
    start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc)
    return {
        "MetricsDataSource": {
            "Dimensions": {"EMAIL_IDENTITY": ["example.com"]},
            "Namespace": "VDM",
            "Metrics": [{"Name": "SEND", "Aggregation": "VOLUME"}],
            "StartDate": start,
            "EndDate": start + dt.timedelta(days=1),
        }
    }


def create_job(emu: Any) -> str:
    """Create an export job on the emulator directly (not through the code under test)."""
    return emu.client().create_export_job(ExportDataSource=metrics_source(), ExportDestination={"DataFormat": "CSV"})[
        "JobId"
    ]


def gate_dag(
    dag_id: str,
    job_id: str,
    *,
    with_result: bool = True,
    sensor_kwargs: dict[str, Any] | None = None,
    result_kwargs: dict[str, Any] | None = None,
) -> Any:
    """``wait`` (SesExportJobSensor) >> ``result`` (SesExportJobResultOperator), nominal 5 s pokes."""
    from airflow_provider_sesexport.operators.ses_export import SesExportJobResultOperator
    from airflow_provider_sesexport.sensors.ses_export import SesExportJobSensor
    from tests.airflow_names import DAG

    kwargs: dict[str, Any] = {
        "poke_interval": nominal(5),
        "timeout": nominal(1200),
        "retries": 2,
        "retry_delay": dt.timedelta(seconds=0),
    }
    kwargs.update(sensor_kwargs or {})
    with DAG(dag_id, schedule=None, start_date=START, catchup=False) as dag:
        wait = SesExportJobSensor(task_id="wait", job_id=job_id, **kwargs)
        if with_result:
            result = SesExportJobResultOperator(
                task_id="result", job_id=job_id, retries=2, retry_delay=dt.timedelta(seconds=0), **(result_kwargs or {})
            )
            wait >> result
    return dag


def after(seconds: float, action: Callable[[], Any]) -> threading.Timer:
    """Run ``action`` from a timer thread after ``seconds`` wall-clock seconds."""
    timer = threading.Timer(seconds, action)
    timer.daemon = True
    timer.start()
    return timer


def state_of(ti: Any) -> str | None:
    state = ti.state
    return None if state is None else str(getattr(state, "value", state))
