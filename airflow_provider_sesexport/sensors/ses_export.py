"""Sensor that waits for an Amazon SES v2 export job to finish."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.sensors.base_aws import AwsBaseSensor
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields

from airflow_provider_sesexport._compat import (
    AirflowSensorTimeout,
    AirflowSkipException,
    PokeReturnValue,
    default_deferrable,
)
from airflow_provider_sesexport.exceptions import SesExportInputError, SesExportJobError
from airflow_provider_sesexport.hooks.ses_export import SesExportJobHook
from airflow_provider_sesexport.triggers.ses_export import defer_wait, resumed_by_a_later_try, summary_from_event
from airflow_provider_sesexport.utils.validation import validate_poll_interval

if TYPE_CHECKING:
    from airflow_provider_sesexport._compat import Context


class SesExportJobSensor(AwsBaseSensor[SesExportJobHook]):
    """
    Wait until an Amazon SES v2 export job is COMPLETED, FAILED or CANCELLED.

    COMPLETED finishes the task and pushes the job summary (plain JSON, no URL) as ``return_value``.
    FAILED raises :class:`~airflow_provider_sesexport.exceptions.SesExportJobFailedError` and CANCELLED
    :class:`~airflow_provider_sesexport.exceptions.SesExportJobCancelledError`, with AWS's message and
    without spending retries. Throttling and network errors that outlast botocore's retries only make
    that poke "not done". ``soft_fail`` skips on timeout only: a failed or cancelled job still fails.

    .. seealso::
        For more information on how to use this sensor, take a look at the guide:
        :doc:`/howto/sensor`

    :param job_id: the export job's id (templated), e.g. the ``return_value`` of the task that created it.
    :param poke_interval: seconds between polls (default 60, at least 1).
    :param mode: ``reschedule`` (default: holds no worker slot between polls) or ``poke``.
    :param deferrable: poke once, then wait on the triggerer
        (:class:`~airflow_provider_sesexport.triggers.ses_export.SesExportJobTrigger`) until the job
        finishes or ``timeout`` passes; same summary, errors and ``soft_fail`` behaviour as the other modes.
        Defaults to ``[operators] default_deferrable``.
    :param aws_conn_id: The Airflow connection used for AWS credentials.
        If this is ``None`` or empty then the default boto3 behaviour is used. If
        running Airflow in a distributed manner and aws_conn_id is None or
        empty, then default boto3 configuration would be used (and must be
        maintained on each worker node).
    :param region_name: AWS region_name. If not specified then the default boto3 behaviour is used.
    :param verify: Whether or not to verify SSL certificates. See:
        https://boto3.amazonaws.com/v1/documentation/api/latest/reference/core/session.html
    :param botocore_config: Configuration dictionary (key-values) for botocore client. See:
        https://botocore.amazonaws.com/v1/documentation/api/latest/reference/config.html
    """

    aws_hook_class: type[SesExportJobHook] = SesExportJobHook
    template_fields: Sequence[str] = aws_template_fields("job_id")
    ui_color = "#ffd89b"

    def __init__(
        self,
        *,
        job_id: str,
        poke_interval: float = 60,
        mode: str = "reschedule",
        deferrable: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, mode=mode, **kwargs)
        # after Airflow's own checks, which turn a timedelta into seconds
        validate_poll_interval(self.poke_interval, "poke_interval")
        self.job_id = job_id
        self.deferrable: bool = default_deferrable() if deferrable is None else deferrable

    def poke(self, context: Context) -> bool | PokeReturnValue:
        outcome = self.hook.poll_export_job(self.job_id, self.log)
        if outcome is None or not outcome.succeeded:
            return False
        return PokeReturnValue(is_done=True, xcom_value=outcome.summary)

    def execute(self, context: Context) -> Any:
        with _soft_fail_on_timeout_only(self):
            if not self.deferrable:
                return super().execute(context)
            result = self.poke(context)  # validates job_id before any request
            if isinstance(result, PokeReturnValue):
                return result.xcom_value
            self._defer(self.job_id, context)

    def _defer(self, job_id: str, context: Context) -> None:
        """Hand the wait to :class:`~airflow_provider_sesexport.triggers.ses_export.SesExportJobTrigger`."""
        defer_wait(self, job_id, float(self.poke_interval), float(self.timeout), context)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """
        Finish a deferred wait: return the job summary, or raise what poke mode raises.

        :param context: the task context.
        :param event: the trigger's event; one that an earlier try deferred for (Airflow 3.0 resumes a retry
            with it) starts the task afresh.
        """
        if resumed_by_a_later_try(context, event):
            assert event is not None
            self.log.info("Try %s deferred this wait; this try starts it afresh.", event["deferred_try"])
            return self.execute(context)  # type: ignore[no-any-return]
        summary = summary_from_event(event, AirflowSensorTimeout)
        self.log.info("SES export job %s: status %s", summary.get("job_id"), summary.get("job_status"))
        return summary

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        with _soft_fail_on_timeout_only(self):
            return super().resume_execution(next_method, next_kwargs, context)


@contextmanager
def _soft_fail_on_timeout_only(sensor: Any) -> Iterator[None]:
    """
    Undo Airflow's ``soft_fail`` conversion of a failed or cancelled job into a skip.

    Airflow's BaseSensorOperator turns every AirflowFailException into a skip when ``soft_fail`` is
    set; for an export gate a failed export must fail the task, so ``soft_fail`` skips on timeout only.
    """
    try:
        yield
    except AirflowSkipException as skip:
        # A failed or cancelled job, and input no request can succeed with, fail the task.
        failure = (SesExportJobError, SesExportInputError)
        if isinstance(skip.__cause__, failure) and not getattr(sensor, "never_fail", False):
            raise skip.__cause__ from None
        raise
