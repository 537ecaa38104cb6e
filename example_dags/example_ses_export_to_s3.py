"""
Copy a daily SES VDM export into your own S3 bucket, and run a second DAG whenever a copy lands.

``example_ses_export_to_s3`` (daily, covering the previous UTC day): create the export job → wait for
it (sensor, reschedule mode) → ``SesExportToS3Operator`` streams the file into
``s3://<bucket>/ses/vdm/<ds>/email_identity.csv``. The operator fetches a fresh download URL right
before copying, so queueing delays never leave it with an expired URL.

The key is templated, so the operator cannot declare it as an outlet by itself: the DAG declares the
prefix ``s3://<bucket>/ses/vdm`` as the outlet, and ``example_ses_export_loader`` is scheduled on
it. Each event carries the copied object's URI, size and record count in its ``extra``.

Environment: ``SES_EXPORT_EXAMPLE_BUCKET`` (destination bucket), ``SES_EXPORT_EXAMPLE_DEST_CONN_ID``
(its connection; default ``aws_default``), ``SES_EXPORT_EXAMPLE_POKE_INTERVAL`` (seconds between polls).
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from airflow.timetables.interval import CronDataIntervalTimetable

try:  # Airflow 3
    from airflow.sdk import DAG, Asset, task
except ImportError:  # Airflow 2
    from airflow import DAG  # type: ignore[assignment,no-redef]
    from airflow.datasets import Dataset as Asset  # type: ignore[assignment,no-redef]
    from airflow.decorators import task  # type: ignore[no-redef]

from airflow_provider_sesexport.operators.ses_export import SesCreateExportJobOperator
from airflow_provider_sesexport.sensors.ses_export import SesExportJobSensor
from airflow_provider_sesexport.transfers.ses_export_to_s3 import SesExportToS3Operator

BUCKET = os.environ.get("SES_EXPORT_EXAMPLE_BUCKET", "my-ses-exports")
DEST_CONN_ID = os.environ.get("SES_EXPORT_EXAMPLE_DEST_CONN_ID", "aws_default")
POKE_INTERVAL = float(os.environ.get("SES_EXPORT_EXAMPLE_POKE_INTERVAL", "60"))

#: What downstream DAGs schedule on: every daily copy lands under this prefix.
VDM_EXPORTS = Asset(f"s3://{BUCKET}/ses/vdm")

with DAG(
    dag_id="example_ses_export_to_s3",
    # Each run covers the previous UTC day (Airflow 3 maps "@daily" to runs with an empty data interval).
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=dt.datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["example", "ses", "vdm", "s3"],
) as dag:
    create_export = SesCreateExportJobOperator(
        task_id="create_export",
        export_data_source={
            "MetricsDataSource": {
                "Dimensions": {"EMAIL_IDENTITY": ["example.com"]},
                "Namespace": "VDM",
                "Metrics": [
                    {"Name": "SEND", "Aggregation": "VOLUME"},
                    {"Name": "DELIVERY", "Aggregation": "VOLUME"},
                    {"Name": "COMPLAINT", "Aggregation": "RATE"},
                ],
                "StartDate": "{{ data_interval_start.isoformat() }}",
                "EndDate": "{{ data_interval_end.isoformat() }}",
            }
        },
        data_format="CSV",
        wait_for_completion=False,
    )

    wait_for_export = SesExportJobSensor(
        task_id="wait_for_export",
        job_id=create_export.output,
        mode="reschedule",
        poke_interval=POKE_INTERVAL,
        timeout=6 * 60 * 60,
    )

    copy_export = SesExportToS3Operator(
        task_id="copy_export",
        job_id=create_export.output,
        s3_bucket=BUCKET,
        s3_key="ses/vdm/{{ ds }}/email_identity.csv",
        dest_aws_conn_id=DEST_CONN_ID,
        replace=True,  # a re-run of the same day overwrites that day's file
        outlets=[VDM_EXPORTS],
    )

    wait_for_export >> copy_export


with DAG(
    dag_id="example_ses_export_loader",
    schedule=[VDM_EXPORTS],
    start_date=dt.datetime(2026, 1, 1),
    catchup=False,
    tags=["example", "ses", "vdm", "s3"],
) as loader_dag:

    @task
    def load_new_exports(**context: Any) -> list[dict[str, Any]]:
        """Here a real pipeline would load the new files (COPY INTO, Athena partition ...): list them."""
        events = context.get("triggering_asset_events") or context.get("triggering_dataset_events") or {}
        copies = [dict(event.extra) for asset_events in events.values() for event in asset_events]
        for copy in copies:
            print(f"New SES export copy {copy.get('s3_uri')}: {copy.get('records')} records")
        return copies

    load_new_exports()
