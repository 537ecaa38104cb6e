"""
### Copy a daily SES VDM export into your own S3 bucket, and run a second DAG whenever a copy lands

`example_ses_export_to_s3` exports one UTC day of VDM metrics: create the export job, wait for it (sensor,
reschedule mode), then `SesExportToS3Operator` streams the file into
`s3://<bucket>/ses/vdm/<day>/email_identity.csv`, fetching a fresh download URL right before copying.

**Which day.** The run's *export window* (`export_window` below, one rule for the export and the key):
- a run with a data interval, i.e. scheduled runs, backfills and manual runs with a logical date (the UI's
  trigger dialog sets "now" and the timetable infers the previous day): that interval, the previous UTC day;
- a run without one (Airflow 3, REST API `"logical_date": null`): the UTC day before the run's `run_after`.

The key's `<day>` is the window's first day, the same date as the export's `StartDate`, so a manual run and the
scheduled run of the same day write the same key (never today's date over yesterday's data).

**What it needs.** An AWS connection `aws_default` allowed `ses:CreateExportJob`, `ses:GetExportJob`,
`ses:ListExportJobs` and `ses:CancelExportJob`, with VDM enabled on the account; a bucket
(`SES_EXPORT_EXAMPLE_BUCKET`) and a connection allowed to write to it (`SES_EXPORT_EXAMPLE_DEST_CONN_ID`, default
`aws_default`); `SES_EXPORT_EXAMPLE_POKE_INTERVAL`: seconds between polls (default 60).

**Downstream.** The key is templated, so the operator cannot declare it as an outlet by itself: the DAG declares
the prefix `s3://<bucket>/ses/vdm` as the outlet, and `example_ses_export_loader` is scheduled on it. Each event
carries the copied object's URI, size and record count in its `extra`.
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


def export_window(dag_run: Any) -> tuple[dt.datetime, dt.datetime]:
    """
    The UTC days a run exports, ``(start, end)``: midnight to midnight, end-exclusive, as SES wants them.

    The run's data interval when it has one; else (Airflow 3 runs triggered without a logical date) the day before
    ``run_after``, the time the run was triggered for. Airflow 2 runs always have a data interval.
    """
    if dag_run.data_interval_start is not None:
        return dag_run.data_interval_start, dag_run.data_interval_end
    end = dag_run.run_after.astimezone(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return end - dt.timedelta(days=1), end


with DAG(
    dag_id="example_ses_export_to_s3",
    # Each run covers the previous UTC day (Airflow 3 maps "@daily" to runs with an empty data interval).
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=dt.datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    user_defined_macros={"export_window": export_window},
    doc_md=__doc__,
    tags=["example", "ses", "vdm", "s3"],
) as dag:
    # [START howto_operator_ses_create_export_job]
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
                "StartDate": "{{ export_window(dag_run)[0].isoformat() }}",
                "EndDate": "{{ export_window(dag_run)[1].isoformat() }}",
            }
        },
        data_format="CSV",
        wait_for_completion=False,
    )
    # [END howto_operator_ses_create_export_job]

    # [START howto_sensor_ses_export_job_reschedule]
    wait_for_export = SesExportJobSensor(
        task_id="wait_for_export",
        job_id=create_export.output,
        mode="reschedule",
        poke_interval=POKE_INTERVAL,
        timeout=6 * 60 * 60,
    )
    # [END howto_sensor_ses_export_job_reschedule]

    # [START howto_transfer_ses_export_to_s3]
    copy_export = SesExportToS3Operator(
        task_id="copy_export",
        job_id=create_export.output,
        s3_bucket=BUCKET,
        s3_key="ses/vdm/{{ export_window(dag_run)[0] | ds }}/email_identity.csv",  # the export's StartDate day
        dest_aws_conn_id=DEST_CONN_ID,
        replace=True,  # a re-run of the same day overwrites that day's file (same data)
        outlets=[VDM_EXPORTS],
    )
    # [END howto_transfer_ses_export_to_s3]

    wait_for_export >> copy_export


with DAG(
    dag_id="example_ses_export_loader",
    schedule=[VDM_EXPORTS],
    start_date=dt.datetime(2026, 1, 1),
    catchup=False,
    doc_md=(
        "### Runs whenever `example_ses_export_to_s3` copies a day's export\n\n"
        "Scheduled on the Asset `s3://<bucket>/ses/vdm`; each event's `extra` names the copied object (`s3_uri`, whose "
        "date is the export's first day), its `size_bytes` and `records`. Needs nothing else; a run triggered by hand "
        "has no events and lists nothing."
    ),
    tags=["example", "ses", "vdm", "s3"],
) as loader_dag:

    @task
    def load_new_exports(**context: Any) -> list[dict[str, Any]]:
        """Here a real pipeline would load the new files (COPY INTO, Athena partition ...): list them."""
        # Airflow 2.10/2.11 (MWAA images) name the key triggering_dataset_events
        events = context.get("triggering_asset_events") or context.get("triggering_dataset_events") or {}  # noqa: AIR301
        copies = [dict(event.extra) for asset_events in events.values() for event in asset_events]
        for copy in copies:
            print(f"New SES export copy {copy.get('s3_uri')}: {copy.get('records')} records")
        return copies

    load_new_exports()
