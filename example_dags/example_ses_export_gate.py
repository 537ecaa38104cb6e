"""
### Gate a pipeline on an SES v2 export job that something else started

The sensor waits in reschedule mode (no worker slot held between polls), the result operator pushes `statistics`
and `s3_url` to XCom, and the report task reads the file's records while the URL is fresh.

**Where the job id comes from.** The system that started the export: CreateExportJob returns it (`JobId`), and
`aws sesv2 list-export-jobs` lists recent ones. Against a local emulator (`make deployment` prints its endpoint,
region and credentials): `aws sesv2 create-export-job --endpoint-url <endpoint> --region us-east-1
--export-data-source '{"MetricsDataSource": {"Dimensions": {"EMAIL_IDENTITY": ["example.com"]}, "Namespace": "VDM",
"Metrics": [{"Name": "SEND", "Aggregation": "VOLUME"}], "StartDate": "<yesterday>T00:00:00Z",
"EndDate": "<today>T00:00:00Z"}}' --export-destination DataFormat=CSV`.

**How to run it.** Trigger with the job id as the `job_id` param: the UI's trigger form asks for it, or
`airflow dags trigger example_ses_export_gate --conf '{"job_id": "..."}'`, or the REST API with
`"conf": {"job_id": "..."}`. A run without one is refused when triggered. The run's dates play no part: any kind of
run waits for the job it is given.

**What it needs.** An AWS connection `aws_default` allowed `ses:GetExportJob` (the download URL is pre-signed);
`SES_EXPORT_EXAMPLE_POKE_INTERVAL`: seconds between polls (default 60).
"""

from __future__ import annotations

import datetime as dt
import os
import urllib.request
from typing import Any

try:  # Airflow 3
    from airflow.sdk import DAG, Param, task
except ImportError:  # Airflow 2
    from airflow import DAG  # type: ignore[assignment,no-redef]
    from airflow.decorators import task  # type: ignore[no-redef]
    from airflow.models.param import Param  # type: ignore[assignment,no-redef]

from airflow_provider_sesexport.operators.ses_export import SesExportJobResultOperator
from airflow_provider_sesexport.sensors.ses_export import SesExportJobSensor
from airflow_provider_sesexport.utils.redaction import redact_url

# Seconds between polls; the tests and `make demo` shorten it.
POKE_INTERVAL = float(os.environ.get("SES_EXPORT_EXAMPLE_POKE_INTERVAL", "60"))

with DAG(
    dag_id="example_ses_export_gate",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1),
    catchup=False,
    # No default: a trigger without a job id is refused (the UI's form asks for it; the REST API answers 400).
    params={
        "job_id": Param(  # noqa: AIR311  Airflow 2.10/2.11 (MWAA images) have no airflow.sdk.Param
            type="string", minLength=1, description="The JobId of the SES export job to wait for"
        )
    },
    doc_md=__doc__,
    tags=["example", "ses"],
) as dag:
    # [START howto_sensor_ses_export_job]
    wait_for_export = SesExportJobSensor(
        task_id="wait_for_export",
        job_id="{{ params.job_id }}",
        poke_interval=POKE_INTERVAL,
        timeout=6 * 60 * 60,
    )
    # [END howto_sensor_ses_export_job]

    # [START howto_operator_ses_export_job_result]
    export_result = SesExportJobResultOperator(task_id="export_result", job_id="{{ params.job_id }}")
    # [END howto_operator_ses_export_job_result]

    # [START howto_operator_ses_export_job_result_url]
    @task(multiple_outputs=False)  # one XCom: the report dict
    def report(summary: dict, statistics: dict, ti: Any = None) -> dict:
        """Use the export: read its records while the URL is fresh (any of the four layouts SES writes).

        The URL is pulled here, not passed as an argument: a task's arguments are stored as its rendered fields
        (metadata DB, UI), and the URL is a bearer credential.
        """
        from airflow_provider_sesexport.records import iter_records

        s3_url = ti.xcom_pull(task_ids="export_result", key="s3_url")
        # [END howto_operator_ses_export_job_result_url]

        records, first = 0, None
        with urllib.request.urlopen(s3_url, timeout=60) as response:  # the URL lives five minutes
            for record in iter_records(
                response, source_type=summary["export_source_type"], data_format=summary["data_format"]
            ):
                first = first or record
                records += 1
        # SES's ProcessedRecordsCount counts the messages it examined, not the records in the file
        # (and real SES never returns ExportedRecordsCount): count the file itself.
        print(f"Export file {redact_url(s3_url)}: {records} records; SES statistics {statistics}")
        print(f"  first record: {first}")
        return {"records": records, "processed_records": statistics["ProcessedRecordsCount"]}

    wait_for_export >> export_result
    report(
        summary=export_result.output,
        statistics=export_result.output["statistics"],  # type: ignore[index]
    )
