"""
The fault drills' DAGs (``tests/deployment/test_drills.py``), deployed beside the examples by ``make deploy-test``.

Each task that a drill kills has a retry, as a production DAG's tasks do; the retry delays are short so a drill
takes seconds, except where the drill must act between a failed try and its retry.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

try:  # Airflow 3
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2
    from airflow import DAG  # type: ignore[assignment,no-redef]
    from airflow.decorators import task  # type: ignore[no-redef]

from airflow_provider_sesexport.operators.ses_export import SesCreateExportJobOperator
from airflow_provider_sesexport.sensors.ses_export import SesExportJobSensor
from airflow_provider_sesexport.transfers.ses_export_to_s3 import SesExportToS3Operator

START = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
#: Seconds between polls, in the worker and in the triggerer.
POLL = 2
SOURCE = {
    "MetricsDataSource": {
        "Dimensions": {"EMAIL_IDENTITY": ["drills.example.com"]},
        "Namespace": "VDM",
        "Metrics": [{"Name": "SEND", "Aggregation": "VOLUME"}],
        "StartDate": "2026-11-01T00:00:00+00:00",
        "EndDate": "2026-11-02T00:00:00+00:00",
    }
}
RETRY: dict[str, Any] = {"retries": 1, "retry_delay": dt.timedelta(seconds=2)}

with DAG("drill_pipeline", schedule=None, start_date=START, catchup=False, tags=["drill"]):
    created = SesCreateExportJobOperator(
        task_id="create", export_data_source=SOURCE, wait_for_completion=False, **RETRY
    )
    waited = SesExportJobSensor(
        task_id="wait", job_id=created.output, mode="reschedule", poke_interval=POLL, timeout=3600, **RETRY
    )
    copied = SesExportToS3Operator(
        task_id="copy", job_id=created.output, s3_bucket=os.environ["SES_EXPORT_EXAMPLE_BUCKET"],
        s3_key="drills/{{ ts_nodash }}.csv", **RETRY,
    )  # fmt: skip
    waited >> copied

with DAG("drill_create_in_worker", schedule=None, start_date=START, catchup=False, tags=["drill"]):
    SesCreateExportJobOperator(
        task_id="create", export_data_source=SOURCE, waiter_delay=POLL, waiter_max_attempts=1800, **RETRY
    )

with DAG("drill_same_source", schedule=None, start_date=START, catchup=False, tags=["drill"]):
    # two tasks exporting exactly the same data, each waiting in a worker: the drill kills one of them
    for task_id in ("first", "second"):
        SesCreateExportJobOperator(
            task_id=task_id, export_data_source=SOURCE, waiter_delay=POLL, waiter_max_attempts=1800, **RETRY
        )

with DAG("drill_create_deferred", schedule=None, start_date=START, catchup=False, tags=["drill"]):
    # the drill lifts its fault between the failed try and the retry: a delay it can act in
    SesCreateExportJobOperator(
        task_id="create", export_data_source=SOURCE, waiter_delay=POLL, waiter_max_attempts=1800, deferrable=True,
        retries=1, retry_delay=dt.timedelta(seconds=15),
    )  # fmt: skip

with DAG("drill_deferred_waits", schedule=None, start_date=START, catchup=False, max_active_tasks=128, tags=["drill"]):

    @task
    def job_ids(**context: Any) -> list[str]:
        """The jobs to wait for, from the run's conf (``{"job_ids": [...]}``)."""
        return list(context["dag_run"].conf["job_ids"])

    SesExportJobSensor.partial(task_id="wait", deferrable=True, poke_interval=POLL, timeout=3600).expand(
        job_id=job_ids()
    )
