"""Trigger that waits for an Amazon SES v2 export job on the triggerer, sharing one client and one poll cycle."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_sesexport.exceptions import SesExportJobError, SesExportJobNotFoundError
from airflow_provider_sesexport.triggers import poller as _poller
from airflow_provider_sesexport.utils import aws_errors
from airflow_provider_sesexport.utils.export_job import (
    FINISHED_OUTCOMES,
    INTERMEDIATE_STATES,
    ExportJobOutcome,
    raise_for_outcome,
    to_iso,
    utcnow,
)
from airflow_provider_sesexport.utils.validation import validate_deadline, validate_job_id, validate_poll_interval

#: Event statuses this trigger emits: a finished job's outcome, or why the wait ended without one.
EVENT_STATUSES = (*FINISHED_OUTCOMES, "timeout", "error")


class SesExportJobTrigger(BaseTrigger):
    """
    Wait on the triggerer until an SES v2 export job is COMPLETED, FAILED or CANCELLED, or a deadline passes.

    Every trigger in one triggerer process that uses the same connection, region, ``verify`` and
    ``botocore_config`` shares one aiobotocore client and one poll cycle (``ListExportJobs`` for the
    in-flight jobs, ``GetExportJob`` only for the jobs that left them); see
    :mod:`airflow_provider_sesexport.triggers.poller`. Throttling slows polling down, it never ends a wait.

    Emits one event ``{"status": ..., "job_id": ..., ...}``: ``success`` (with ``summary``), ``failed``
    and ``cancelled`` (with ``summary``, AWS's ``message`` and the redacted ``failed_records_url``),
    ``timeout`` (the deadline passed) or ``error`` (e.g. the job does not exist; with ``message``).

    With ``cancel_on_kill``, :meth:`on_kill` cancels the job when its task is killed while deferred.

    :param job_id: the export job's id.
    :param poll_interval: seconds between polls of this job (at least 1); other waits keep their own.
    :param timeout_at: ISO-8601 deadline (absolute, so it survives a triggerer restart); None waits forever.
    :param aws_conn_id: The Airflow connection used for AWS credentials.
    :param region_name: AWS region_name. If not specified then the default boto3 behaviour is used.
    :param verify: Whether or not to verify SSL certificates.
    :param botocore_config: Configuration dictionary (key-values) for botocore client.
    :param cancel_on_kill: cancel the job if it is still running when a user kills the deferred task
        (default False). Only a task that started the job sets it: a sensor never cancels a job.
    :param deferred_try: the ``try_number`` of the task that deferred, echoed in the event (see
        :func:`resumed_by_a_later_try`).
    """

    def __init__(
        self,
        *,
        job_id: str,
        poll_interval: float = 30,
        timeout_at: str | dt.datetime | None = None,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
        cancel_on_kill: bool = False,
        deferred_try: int | None = None,
    ) -> None:
        super().__init__()
        self.job_id: str = validate_job_id(job_id)
        self.poll_interval: float = validate_poll_interval(poll_interval, "poll_interval")
        deadline = validate_deadline(timeout_at, "timeout_at")
        self.timeout_at: str | None = to_iso(deadline) if isinstance(timeout_at, dt.datetime) else timeout_at
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.verify = verify
        self.botocore_config = botocore_config
        self.cancel_on_kill = cancel_on_kill
        self.deferred_try = deferred_try

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{self.__class__.__module__}.{self.__class__.__qualname__}",
            {
                "job_id": self.job_id,
                "poll_interval": self.poll_interval,
                "timeout_at": self.timeout_at,
                "aws_conn_id": self.aws_conn_id,
                "region_name": self.region_name,
                "verify": self.verify,
                "botocore_config": self.botocore_config,
                "cancel_on_kill": self.cancel_on_kill,
                "deferred_try": self.deferred_try,
            },
        )

    def _seconds_left(self) -> float | None:
        if self.timeout_at is None:
            return None
        deadline = validate_deadline(self.timeout_at, "timeout_at")
        assert deadline is not None
        return max(0.0, (deadline - utcnow()).total_seconds())

    async def run(self) -> AsyncIterator[TriggerEvent]:
        spec = _poller.ClientSpec.of(self.aws_conn_id, self.region_name, self.verify, self.botocore_config)
        poller = _poller.get_poller(spec)
        future = poller.subscribe(self.job_id, self.poll_interval)
        try:
            left = self._seconds_left()
            if left is None:
                event = await future
            else:
                try:
                    event = await asyncio.wait_for(future, left)
                except asyncio.TimeoutError:
                    event = {
                        "status": "timeout",
                        "job_id": self.job_id,
                        "message": f"SES export job {self.job_id!r} did not finish by {self.timeout_at}",
                    }
        finally:
            poller.unsubscribe(self.job_id, future)
        await poller.wait_closed()  # the last waiter out closes the shared client before its event goes out
        self.log.info("SES export job %s: wait ended with %s", self.job_id, event["status"])
        yield TriggerEvent(naming_the_deferred_try(event, self.deferred_try))

    async def on_kill(self) -> None:
        """
        With ``cancel_on_kill``: cancel the job if it is still CREATED or PROCESSING.

        The triggerer calls this (Airflow 3.3+) only when a user marks the deferred task failed or
        successful or clears it; never on a triggerer restart or redistribution, a trigger timeout or
        the end of the wait. By then :meth:`run` has left the shared poller, so this opens a client of its own.
        Errors are logged, not raised: the task's state does not depend on them. A job that finished in the
        meantime (SES refuses the cancel: "Cannot cancel an export job that has a <COMPLETED> status.") is an
        info line.
        """
        if not self.cancel_on_kill:
            return
        spec = _poller.ClientSpec.of(self.aws_conn_id, self.region_name, self.verify, self.botocore_config)
        try:
            client, close = await _poller.current_seams().open_client(spec)
            try:
                status = (await client.get_export_job(JobId=self.job_id)).get("JobStatus")
                if status not in INTERMEDIATE_STATES:
                    self.log.info("SES export job %s is %s: nothing to cancel.", self.job_id, status)
                    return
                await client.cancel_export_job(JobId=self.job_id)
                self.log.info("Cancelled SES export job %s (was %s): its task was killed.", self.job_id, status)
            finally:
                await close()
        except Exception as exc:
            finished = aws_errors.finished_status_of_cancel_refusal(
                aws_errors.error_code(exc), aws_errors.error_message(exc)
            )
            if finished is not None:
                self.log.info("SES export job %s finished (%s) before it could be cancelled.", self.job_id, finished)
                return
            self.log.warning("Could not cancel SES export job %s: %s", self.job_id, aws_errors.describe(exc))


def defer_wait(
    task: Any,
    job_id: str,
    poll_interval: float,
    timeout: float,
    context: Any,
    *,
    cancel_on_kill: bool = False,
) -> None:
    """
    Defer ``task`` (our sensor or create operator) to a :class:`SesExportJobTrigger` on its connection.

    The task resumes in its ``execute_complete``; the event says which try deferred (:func:`resumed_by_a_later_try`).
    The trigger ends the wait itself at the deadline (a ``timeout``
    event that ``soft_fail`` can skip on); Airflow's own deferral timeout is only a backstop should the trigger
    never answer.

    :param task: the task deferring; its ``aws_conn_id``, ``region_name``, ``verify`` and ``botocore_config`` are used.
    :param job_id: the export job's id.
    :param poll_interval: seconds between polls.
    :param timeout: seconds from now until the wait ends with ``timeout``.
    :param context: the task context.
    :param cancel_on_kill: see :class:`SesExportJobTrigger`.
    """
    deadline = dt.timedelta(seconds=timeout)
    task.defer(
        trigger=SesExportJobTrigger(
            job_id=job_id,
            poll_interval=poll_interval,
            timeout_at=utcnow() + deadline,
            aws_conn_id=task.aws_conn_id,
            region_name=task.region_name,
            verify=task.verify,
            botocore_config=task.botocore_config,
            cancel_on_kill=cancel_on_kill,
            deferred_try=try_number_of(context),
        ),
        method_name="execute_complete",
        timeout=deadline + dt.timedelta(minutes=5),
    )


def try_number_of(context: Any) -> int | None:
    """The running try's ``try_number`` (what a trigger's ``deferred_try`` echoes back).

    :param context: the task context.
    """
    return getattr(context.get("ti"), "try_number", None)


def naming_the_deferred_try(event: dict[str, Any], deferred_try: int | None) -> dict[str, Any]:
    """A trigger's ``event`` with the ``deferred_try`` it was given (unchanged when there is none), for
    :func:`resumed_by_a_later_try` to read back.

    :param event: the event payload.
    :param deferred_try: the ``try_number`` of the task that deferred.
    """
    return {**event, "deferred_try": deferred_try} if deferred_try else event


def resumed_by_a_later_try(context: Any, event: dict[str, Any] | None) -> bool:
    """
    Whether this resumption belongs to an earlier try: Airflow 3.0 (seen on 3.0.6, in a deployment as in
    ``dag.test()``) keeps a failed deferred try's ``next_method`` and event for the retry, which would fail again
    on the old event; such a retry must start afresh (``execute``), as Airflow 3.2+ and 2.x do.

    :param context: the task context.
    :param event: the trigger's event (``deferred_try``: the try that deferred, from :func:`defer_wait`).
    """
    current = try_number_of(context)
    deferred_try = event.get("deferred_try") if isinstance(event, dict) else None
    return deferred_try is not None and current is not None and current != deferred_try


def summary_from_event(event: dict[str, Any] | None, timeout_error: type[Exception]) -> dict[str, Any]:
    """
    Turn a :class:`SesExportJobTrigger` event into the job summary, raising what poke mode raises.

    A finished job's event carries its outcome (:meth:`ExportJobOutcome.to_event`): ``success`` returns the
    summary, ``failed`` and ``cancelled`` raise through
    :func:`~airflow_provider_sesexport.utils.export_job.raise_for_outcome`. ``timeout`` raises
    ``timeout_error``, a missing job :class:`~airflow_provider_sesexport.exceptions.SesExportJobNotFoundError`
    and anything else :class:`~airflow_provider_sesexport.exceptions.SesExportJobError`.

    :param event: the event payload.
    :param timeout_error: the exception class to raise on ``timeout`` (the sensor's timeout error, say).
    """
    if not isinstance(event, dict) or event.get("status") not in EVENT_STATUSES:
        raise SesExportJobError(f"Unexpected event from SesExportJobTrigger: {event!r}")
    status, job_id = event["status"], str(event.get("job_id"))
    if status in FINISHED_OUTCOMES:
        outcome = ExportJobOutcome.from_event(event)
        raise_for_outcome(outcome)
        return outcome.summary
    if status == "timeout":
        raise timeout_error(event.get("message") or f"SES export job {job_id!r} did not finish in time")
    if aws_errors.means_job_not_found(event.get("error_code"), event.get("message")):
        raise SesExportJobNotFoundError(job_id, event.get("message"), event.get("aws_conn_id"), event.get("region"))
    raise SesExportJobError(f"Waiting for SES export job {job_id!r} failed: {event.get('message')}")
