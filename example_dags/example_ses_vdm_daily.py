"""
### Daily Virtual Deliverability Manager (VDM) metrics exports, copied to S3 and loaded into a table

One metrics export per dimension (EMAIL_IDENTITY, CONFIGURATION_SET, ISP) x aggregation (VOLUME, RATE), started
with dynamic task mapping. Each export waits on the triggerer (`deferrable=True`: all waits in a triggerer share
one SES client and one poll cycle), then its results (statistics, a fresh download URL) are pushed to XCom, every
file is copied into your bucket with `SesExportToS3Operator` (streamed, fresh URL, record count checked) under
`ses/vdm-daily/<day>/export-<n>.csv`, a report task summarises them, and `SesExportToSqlOperator` loads the six
exports into one tidy metrics table (a re-run of a day replaces that day's rows).

**Which day.** The run's *export window* (`export_window` below, one rule for the exports and the keys):
- a run with a data interval, i.e. scheduled runs, backfills and manual runs with a logical date (the UI's
  trigger dialog sets "now" and the timetable infers the previous day): that interval, the previous UTC day;
- a run without one (Airflow 3, REST API `"logical_date": null`): the UTC day before the run's `run_after`.

Every key's `<day>` is the window's first day, the exports' `StartDate`; the table's `export_start` /
`export_end` columns are each job's own `StartDate` / `EndDate` as SES reports them. VDM keeps 60 days of data.

**What it needs.** An AWS connection `aws_default` allowed `ses:CreateExportJob`, `ses:GetExportJob`,
`ses:ListExportJobs` and `ses:CancelExportJob`, with VDM enabled on the account; a bucket
(`SES_EXPORT_EXAMPLE_BUCKET`) and a connection allowed to write to it (`SES_EXPORT_EXAMPLE_DEST_CONN_ID`, default
`aws_default`); a SQL connection (`SES_EXPORT_EXAMPLE_SQL_CONN_ID`, default `ses_exports_db`; PostgreSQL or
SQLite, the table `SES_EXPORT_EXAMPLE_METRICS_TABLE` is created on first use); a running triggerer;
`SES_EXPORT_EXAMPLE_POKE_INTERVAL`: seconds between polls (default 60). The `dimensions` param picks the values.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from airflow.timetables.interval import CronDataIntervalTimetable

try:  # Airflow 3
    from airflow.sdk import DAG, Param, task
except ImportError:  # Airflow 2
    from airflow import DAG  # type: ignore[assignment,no-redef]
    from airflow.decorators import task  # type: ignore[no-redef]
    from airflow.models.param import Param  # type: ignore[assignment,no-redef]

from airflow_provider_sesexport.operators.ses_export import SesCreateExportJobOperator, SesExportJobResultOperator
from airflow_provider_sesexport.transfers.ses_export_to_s3 import SesExportToS3Operator
from airflow_provider_sesexport.transfers.ses_export_to_sql import SesExportToSqlOperator

# Seconds between polls; the tests and `make demo` shorten it.
WAITER_DELAY = float(os.environ.get("SES_EXPORT_EXAMPLE_POKE_INTERVAL", "60"))
# Where the export files go: your bucket, through an Airflow AWS connection allowed to write to it.
BUCKET = os.environ.get("SES_EXPORT_EXAMPLE_BUCKET", "my-ses-exports")
DEST_CONN_ID = os.environ.get("SES_EXPORT_EXAMPLE_DEST_CONN_ID", "aws_default")
# Where the metrics are loaded: an Airflow SQL connection (postgres or sqlite here: the table is created on first use).
SQL_CONN_ID = os.environ.get("SES_EXPORT_EXAMPLE_SQL_CONN_ID", "ses_exports_db")
METRICS_TABLE = os.environ.get("SES_EXPORT_EXAMPLE_METRICS_TABLE", "ses_vdm_metrics")

#: Metrics exported per aggregation (at most 10 per export).
METRICS_BY_AGGREGATION: dict[str, list[str]] = {
    "VOLUME": ["SEND", "DELIVERY", "PERMANENT_BOUNCE", "TRANSIENT_BOUNCE", "COMPLAINT", "OPEN", "CLICK"],
    "RATE": ["DELIVERY", "PERMANENT_BOUNCE", "TRANSIENT_BOUNCE", "COMPLAINT", "OPEN", "CLICK"],
}


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
    dag_id="example_ses_vdm_daily",
    # Each run covers the previous UTC day. Not "@daily": Airflow 3 maps it to a timetable whose runs
    # have an empty data interval.
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=dt.datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    user_defined_macros={"export_window": export_window},
    doc_md=__doc__,
    params={
        "dimensions": Param(  # noqa: AIR311  Airflow 2.10/2.11 (MWAA images) have no airflow.sdk.Param
            {"EMAIL_IDENTITY": ["example.com"], "CONFIGURATION_SET": ["transactional"], "ISP": ["Gmail"]},
            type="object",
            description="Dimension name -> the values to export (1 to 10 each)",
        ),
    },
    tags=["example", "ses", "vdm"],
) as dag:

    @task
    def metrics_sources(params: dict[str, Any] | None = None, dag_run: Any = None) -> list[dict[str, Any]]:
        """One ``ExportDataSource`` per dimension x aggregation, for this run's export window."""
        assert params is not None
        start, end = export_window(dag_run)
        return [
            {
                "MetricsDataSource": {
                    "Dimensions": {dimension: list(values)},
                    "Namespace": "VDM",
                    "Metrics": [{"Name": name, "Aggregation": aggregation} for name in metrics],
                    # ISO-8601 strings: the operator accepts them as well as datetimes
                    "StartDate": start.isoformat(),
                    "EndDate": end.isoformat(),
                }
            }
            for dimension, values in sorted(params["dimensions"].items())
            for aggregation, metrics in METRICS_BY_AGGREGATION.items()
        ]

    # [START howto_operator_ses_create_export_job_deferrable]
    export_metrics = SesCreateExportJobOperator.partial(
        task_id="export_metrics",
        data_format="CSV",
        deferrable=True,
        waiter_delay=WAITER_DELAY,
        waiter_max_attempts=int(6 * 60 * 60 / max(WAITER_DELAY, 1)),
        retries=2,
        retry_delay=dt.timedelta(seconds=30),
    ).expand(export_data_source=metrics_sources())
    # [END howto_operator_ses_create_export_job_deferrable]

    @task
    def job_ids(ids: Any) -> list[str]:
        """The JobIds of every export, as one list to map the result task over."""
        return list(ids)

    # [START howto_operator_ses_export_job_result_mapped]
    ids = job_ids(export_metrics.output)
    export_results = SesExportJobResultOperator.partial(task_id="export_results").expand(job_id=ids)
    # [END howto_operator_ses_export_job_result_mapped]

    # One object per export under the exports' first day (their StartDate); the key is templated, so no Asset outlet
    # is declared here (see example_ses_export_to_s3.py for a literal destination downstream DAGs can schedule on).
    # [START howto_transfer_ses_export_to_s3_mapped]
    copy_to_s3 = SesExportToS3Operator.partial(
        task_id="copy_to_s3",
        s3_bucket=BUCKET,
        s3_key="ses/vdm-daily/{{ export_window(dag_run)[0] | ds }}/export-{{ ti.map_index }}.csv",
        dest_aws_conn_id=DEST_CONN_ID,
        replace=True,
    ).expand(job_id=ids)
    # [END howto_transfer_ses_export_to_s3_mapped]

    @task(multiple_outputs=False)  # one XCom: the report dict
    def report(summaries: list[dict[str, Any]], records: list[int]) -> dict[str, Any]:
        """
        Summarise the day's exports: the records each copied file holds, and the messages SES examined.

        SES's ``ProcessedRecordsCount`` counts the messages examined, not the rows written (real SES never
        returns ``ExportedRecordsCount``), so the records come from the copy, which counts the file itself.
        """
        per_job = {s["job_id"]: n for s, n in zip(summaries, records, strict=True)}  # both in map-index order
        processed = {s["job_id"]: s["statistics"]["ProcessedRecordsCount"] for s in summaries}
        print(f"{len(summaries)} VDM exports finished; records per job: {per_job}; messages examined: {processed}")
        return {"exports": len(summaries), "records": per_job, "processed_records": processed}

    report(export_results.output, copy_to_s3.output["records"])  # type: ignore[index]

    # The day's six exports into one metrics table, one row per dimension value x metric x aggregation.
    # [START howto_transfer_ses_export_to_sql]
    load_to_sql = SesExportToSqlOperator.partial(
        task_id="load_to_sql", table=METRICS_TABLE, sql_conn_id=SQL_CONN_ID, create_table=True
    ).expand(job_id=ids)
    copy_to_s3 >> load_to_sql
    # [END howto_transfer_ses_export_to_sql]
