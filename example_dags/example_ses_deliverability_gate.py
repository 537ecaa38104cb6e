"""
### A deliverability gate: send today's campaign only if yesterday's bounce and complaint rates are safe

SES places an account under review when its bounce rate reaches 5% or its complaint rate 0.1%, and may pause
sending at 10% / 0.5% (SES developer guide, reputation metrics). This DAG checks the previous UTC day before it sends:

1. `create_export`: a VDM metrics export of the day per email identity (`SEND`, `PERMANENT_BOUNCE` and `COMPLAINT`
   volumes), for the identities in the `identities` param;
2. `wait_for_export`: waits on the triggerer (`deferrable=True`: no worker slot held while SES works);
3. `check_deliverability`: `SesDeliverabilityCheckOperator` computes each identity's bounce and complaint rates
   (and the whole day's, send-volume weighted) and compares them with SES's review thresholds; identities that
   sent fewer than 100 messages are reported but never stop the campaign;
4. `send_campaign`: a placeholder for your sending task. It runs only when the check passes.

**Why `on_breach="skip"`.** A breach is not a broken pipeline: the data is fine, the answer is "do not send
today". So the check is skipped, `send_campaign` is skipped with it (its trigger rule waits for success), and the
run ends without a failure to retry or clear; the check's log and its XCom (`breaches`) say why. To be paged on a
breach instead, use `on_breach="fail"` with an `on_failure_callback` (e.g. the Amazon provider's `SnsNotifier`):
the failure's message lists every breach, and no retries are spent on it.

**Which day.** The whole UTC day before the end of the run's data interval: the run scheduled at 06:00 UTC checks
the day that ended at midnight (so do backfills and manual runs with a logical date); a run without a data interval
(Airflow 3, REST API `"logical_date": null`): the UTC day before the run's `run_after`.

**What it needs.** An AWS connection `aws_default` allowed `ses:CreateExportJob`, `ses:GetExportJob`,
`ses:ListExportJobs` and `ses:CancelExportJob`, with VDM enabled on the account; a running triggerer;
`SES_EXPORT_EXAMPLE_POKE_INTERVAL`: seconds between polls (default 60).
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

from airflow_provider_sesexport.operators.ses_deliverability import SesDeliverabilityCheckOperator
from airflow_provider_sesexport.operators.ses_export import SesCreateExportJobOperator
from airflow_provider_sesexport.sensors.ses_export import SesExportJobSensor

# Seconds between polls; the tests and `make demo` shorten it.
POKE_INTERVAL = float(os.environ.get("SES_EXPORT_EXAMPLE_POKE_INTERVAL", "60"))


def export_window(dag_run: Any) -> tuple[dt.datetime, dt.datetime]:
    """
    The UTC day a run checks, ``(start, end)``: midnight to midnight, end-exclusive, as SES wants it.

    The whole UTC day before the end of the run's data interval (the run at 06:00 checks the day that ended six hours
    before); else (Airflow 3 runs triggered without a logical date) the day before ``run_after``. Airflow 2 runs
    always have a data interval.
    """
    when = dag_run.data_interval_end if dag_run.data_interval_end is not None else dag_run.run_after
    end = when.astimezone(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return end - dt.timedelta(days=1), end


with DAG(
    dag_id="example_ses_deliverability_gate",
    # Every morning at 06:00 UTC, before the campaign; each run checks the previous UTC day.
    schedule=CronDataIntervalTimetable("0 6 * * *", timezone="UTC"),
    start_date=dt.datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    params={
        "identities": Param(  # noqa: AIR311  Airflow 2.10/2.11 (MWAA images) have no airflow.sdk.Param
            ["example.com"],
            type="array",
            items={"type": "string"},
            minItems=1,
            maxItems=10,
            description="The email identities (domains or addresses) the campaign sends from",
        ),
    },
    tags=["example", "ses", "vdm", "deliverability"],
) as dag:

    @task(multiple_outputs=False)
    def metrics_source(params: dict[str, Any] | None = None, dag_run: Any = None) -> dict[str, Any]:
        """The day's metrics export per email identity: the volumes the rates are computed from."""
        assert params is not None
        start, end = export_window(dag_run)
        return {
            "MetricsDataSource": {
                "Dimensions": {"EMAIL_IDENTITY": list(params["identities"])},
                "Namespace": "VDM",
                "Metrics": [
                    {"Name": "SEND", "Aggregation": "VOLUME"},
                    {"Name": "PERMANENT_BOUNCE", "Aggregation": "VOLUME"},
                    {"Name": "COMPLAINT", "Aggregation": "VOLUME"},
                ],
                "StartDate": start.isoformat(),
                "EndDate": end.isoformat(),
            }
        }

    create_export = SesCreateExportJobOperator(
        task_id="create_export",
        export_data_source=metrics_source(),  # type: ignore[arg-type]
        data_format="CSV",
        wait_for_completion=False,
    )

    wait_for_export = SesExportJobSensor(
        task_id="wait_for_export",
        job_id=create_export.output,
        deferrable=True,
        poke_interval=POKE_INTERVAL,
        timeout=6 * 60 * 60,
    )

    # [START howto_operator_ses_deliverability_check]
    check_deliverability = SesDeliverabilityCheckOperator(
        task_id="check_deliverability",
        job_id=create_export.output,
        max_bounce_rate=0.05,  # SES's review thresholds (the defaults)
        max_complaint_rate=0.001,
        min_send_volume=100,  # identities that sent less are reported, never a breach
        on_breach="skip",  # a breach skips this task and send_campaign; the run does not fail
    )
    # [END howto_operator_ses_deliverability_check]

    @task(multiple_outputs=False)
    def send_campaign(report: dict[str, Any]) -> dict[str, Any]:
        """Placeholder for the campaign send: runs only when the check passed."""
        overall = report["overall"]
        print(f"Deliverability is healthy (overall {overall}): sending today's campaign.")
        return {"sent": True, "checked_job": report["job_id"]}

    wait_for_export >> check_deliverability
    send_campaign(check_deliverability.output)  # type: ignore[arg-type]
