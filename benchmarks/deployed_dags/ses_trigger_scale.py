"""
The deployed-trigger benchmark's DAGs (``benchmarks/deployed_triggers.py``; not a user example): N mapped deferrable
waits on the export jobs listed in ``dag_run.conf["job_ids"]``.

* ``bench_ses_trigger_ours``: ``SesExportJobSensor(deferrable=True)`` (all waits of a triggerer share one poller);
* ``bench_ses_trigger_anchor``: an operator deferring to the anchor trigger (``ses_bench_anchor``, one client and one
  GetExportJob per wait per interval), as the Amazon provider's ``AwsBaseWaiterTrigger`` pattern does.

Both poll every :data:`POLL_INTERVAL` seconds.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

try:  # Airflow 3
    from airflow.sdk import DAG, BaseOperator, task
except ImportError:  # Airflow 2
    from airflow import DAG  # type: ignore[assignment,no-redef]
    from airflow.decorators import task  # type: ignore[no-redef]
    from airflow.models.baseoperator import BaseOperator  # type: ignore[assignment,no-redef]

from airflow_provider_sesexport.sensors.ses_export import SesExportJobSensor

OURS = "bench_ses_trigger_ours"
ANCHOR = "bench_ses_trigger_anchor"
WAIT_TASK = "wait"
#: Seconds between polls, both kinds of wait.
POLL_INTERVAL = 5


class AnchorWaitOperator(BaseOperator):
    """
    Defer straight to the anchor trigger (``AwsBaseWaiterTrigger`` style) and succeed on its ``success`` event.

    :param job_id: the export job's id (templated).
    :param waiter_delay: seconds between the waiter's GetExportJob calls.
    :param aws_conn_id: The Airflow connection used for AWS credentials.
    """

    template_fields = ("job_id",)

    def __init__(
        self, *, job_id: str, waiter_delay: int = POLL_INTERVAL, aws_conn_id: str = "aws_default", **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.job_id = job_id
        self.waiter_delay = waiter_delay
        self.aws_conn_id = aws_conn_id

    def execute(self, context: Any) -> None:
        from ses_bench_anchor import AnchorExportJobTrigger

        trigger = AnchorExportJobTrigger(
            job_id=self.job_id,
            waiter_delay=self.waiter_delay,
            waiter_max_attempts=100000,
            aws_conn_id=self.aws_conn_id,
        )
        self.defer(trigger=trigger, method_name="execute_complete")

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> str:
        """
        Succeed on the trigger's ``success`` event.

        :param context: the task context.
        :param event: the trigger's event.
        """
        if not event or event.get("status") != "success":
            raise RuntimeError(f"export job wait ended with {event!r}")
        return str(event.get("job_id"))


def _dag(dag_id: str) -> DAG:
    return DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=dt.datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=4,
        max_active_tasks=64,
        tags=["benchmark"],
    )


@task
def job_ids(dag_run: Any = None) -> list[str]:
    """The jobs to wait on: ``dag_run.conf["job_ids"]``."""
    return list(dag_run.conf["job_ids"])


with _dag(OURS) as ours_dag:
    SesExportJobSensor.partial(task_id=WAIT_TASK, deferrable=True, poke_interval=POLL_INTERVAL, timeout=3600).expand(
        job_id=job_ids()
    )

with _dag(ANCHOR) as anchor_dag:
    AnchorWaitOperator.partial(task_id=WAIT_TASK).expand(job_id=job_ids())
