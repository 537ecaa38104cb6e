"""Operators for Amazon SES v2 export jobs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields

from airflow_provider_sesexport._compat import (
    ResumableJobMixin,
    default_deferrable,
    job_record,
    job_record_until_the_task_ends,
    recorded_job_id,
    resume_job,
)
from airflow_provider_sesexport.exceptions import (
    SesExportJobAlreadyFinishedError,
    SesExportJobError,
    SesExportJobNotFoundError,
)
from airflow_provider_sesexport.hooks.ses_export import SesExportJobHook
from airflow_provider_sesexport.operators._create_export import create_in_free_slot, source_type_of
from airflow_provider_sesexport.triggers.export_slot import SesExportSlotTrigger
from airflow_provider_sesexport.triggers.ses_export import (
    defer_wait,
    resumed_by_a_later_try,
    summary_from_event,
    try_number_of,
)
from airflow_provider_sesexport.utils import aws_errors
from airflow_provider_sesexport.utils.export_job import (
    INTERMEDIATE_STATES,
    SUCCESS_STATES,
    TERMINAL_STATES,
    s3_url_of,
)
from airflow_provider_sesexport.utils.export_slots import SlotWait
from airflow_provider_sesexport.utils.redaction import redact_url
from airflow_provider_sesexport.utils.validation import (
    CreateExportJobRequest,
    build_create_export_job_request,
    validate_deadline,
    validate_integer,
    validate_poll_interval,
    validate_seconds,
)

if TYPE_CHECKING:
    from airflow_provider_sesexport._compat import Context

#: What :meth:`SesCreateExportJobOperator.get_job_status` reports for a JobId SES does not know.
NOT_FOUND = "NOT_FOUND"
#: What it reports for a job recorded before the task instance was cleared (a Clear starts a new export).
RECORDED_BEFORE_CLEAR = "RECORDED_BEFORE_CLEAR"


class SesExportJobResultOperator(AwsBaseOperator[SesExportJobHook]):
    """
    Read a finished SES v2 export job and hand its results to downstream tasks through XCom.

    Calls GetExportJob once. On COMPLETED it pushes the XCom keys ``statistics`` (AWS's
    ``ProcessedRecordsCount`` / ``ExportedRecordsCount``, a missing count is null), ``s3_url`` (the
    full pre-signed URL), ``s3_url_expires_at`` (ISO-8601 UTC, five minutes after GetExportJob
    returned it), ``job_id`` and ``job_status``, and returns the job summary. FAILED and CANCELLED
    raise the same typed errors as :class:`~airflow_provider_sesexport.sensors.ses_export.SesExportJobSensor`;
    a job that has not finished raises :class:`~airflow_provider_sesexport.exceptions.SesExportJobError`.

    The ``s3_url`` expires five minutes after this task read it: a downstream task that may start
    later should call ``SesExportJobHook.get_export_download_url`` itself (or use
    ``SesExportToS3Operator``) instead of using the pushed URL.

    :param job_id: the export job's id (templated).
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

    def __init__(self, *, job_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job_id = job_id

    def execute(self, context: Context) -> dict[str, Any]:
        job_id = self.job_id
        job, outcome = self.hook.get_completed_export_job(job_id, self.log)
        summary = outcome.summary
        s3_url = s3_url_of(job)
        ti = context["ti"]
        ti.xcom_push(key="statistics", value=summary["statistics"])
        ti.xcom_push(key="s3_url", value=s3_url)
        ti.xcom_push(key="s3_url_expires_at", value=summary["s3_url_expires_at"])
        ti.xcom_push(key="job_id", value=summary["job_id"])
        ti.xcom_push(key="job_status", value=summary["job_status"])
        self.log.info(
            "SES export job %s: statistics %s, export file %s (URL valid until %s)",
            job_id,
            summary["statistics"],
            redact_url(s3_url),
            summary["s3_url_expires_at"],
        )
        return summary


class SesCreateExportJobOperator(ResumableJobMixin, AwsBaseOperator[SesExportJobHook]):
    """
    Start an Amazon SES v2 export job (CreateExportJob) and, by default, wait until it is COMPLETED.

    Returns the JobId (XCom ``return_value``). When it waits, the job summary (plain JSON, no URL) is
    pushed under the XCom key ``export_job``; FAILED and CANCELLED raise the same typed errors as
    :class:`~airflow_provider_sesexport.sensors.ses_export.SesExportJobSensor`.

    The request is checked against botocore's ``sesv2`` model before it is sent, and errors name the
    field. With ``durable`` (the default) a retried or resumed try reuses the job an earlier
    try of the same task instance started (unless it FAILED or was CANCELLED, or no longer exists)
    instead of starting a second export; a reused COMPLETED job is not exported again. A Clear of the
    task instance starts a new export. The JobId is recorded (with the task instance's ``max_tries``,
    which Airflow raises on every Clear) the moment CreateExportJob returns, and only that record is
    ever reused: a job another task or DAG run started, even for the same data source, never is. On
    Airflow 3.3+ this is Airflow's ``ResumableJobMixin``: the record is ``task_state_store``'s key
    ``ses_export_job_id``. On older
    Airflow it is an Airflow Variable named after the DAG, run, task and map index
    (``sesexport_job.<dag_id>.<task_id>.<map_index>.<digest>``), removed when the task instance ends
    (it succeeds, or fails with no retry left); a killed worker leaves it for the retry.
    CreateExportJob's limit of one call per second is left to botocore's retries: a throttled call
    (``TooManyRequestsException``) is retried in botocore's ``standard`` retry mode (5 retries) unless
    ``botocore_config`` or the connection's ``config_kwargs`` set ``retries``; to start many exports at once
    (dynamic task mapping, say), set ``{"retries": {"mode": "adaptive", "max_attempts": 10}}`` there. A create
    still throttled after those attempts fails with a
    :class:`~airflow_provider_sesexport.exceptions.SesExportJobError` that says so (retries apply).

    **No free export slot.** SES limits unfinished export jobs per source type (about 20) and refuses one more
    with ``LimitExceededException`` ("There are too many <METRICS_DATA> export jobs running ..."). The operator
    then waits for a slot instead of failing: it tries again after a jittered exponential backoff (about 2 s,
    doubling, capped at ``waiter_delay``), logging one line per attempt with the number of unfinished jobs of
    that source type (ListExportJobs; "an unknown number" without ``ses:ListExportJobs``), for at most
    ``slot_wait_timeout`` seconds since the first refusal; then it fails with
    :class:`~airflow_provider_sesexport.exceptions.SesExportNoSlotError` (retries apply). In deferrable mode
    that wait happens on the triggerer (:class:`~airflow_provider_sesexport.triggers.export_slot.SesExportSlotTrigger`
    watches the unfinished jobs) and the task resumes in a worker to create the job, so the job's id is kept
    as above and a retry never starts a second export.

    Killing the task cancels the job it is still waiting for, always one this task instance started (never
    another task's export of the same data): ``on_kill`` while it waits in a worker, and, while the wait is
    deferred, the trigger's ``on_kill`` when a user marks the task failed or successful or clears it (never
    on a triggerer restart). Airflow calls a trigger's ``on_kill`` only
    from 3.3 on: on Airflow 2.10 to 3.2 a deferred job keeps running when its task is killed (cancel it
    with ``SesExportJobHook.cancel_export_job``). A job that finished in the meantime (SES: "Cannot cancel an
    export job that has a <COMPLETED> status.") is logged as such; it is not an error.

    :param export_data_source: ``ExportDataSource`` as the API takes it (templated): exactly one of
        ``MetricsDataSource`` or ``MessageInsightsDataSource``. ``StartDate``/``EndDate`` accept
        datetimes, dates and ISO-8601 strings such as ``"{{ data_interval_start }}"``.
    :param data_format: ``CSV`` (default) or ``JSON`` (templated).
    :param wait_for_completion: wait until the job finishes (default True).
    :param waiter_delay: seconds between polls while waiting (default 30, at least 1).
    :param waiter_max_attempts: polls before giving up (default 120, one hour at the default delay).
    :param deferrable: wait on the triggerer instead of in a worker slot. Defaults to
        ``[operators] default_deferrable``.
    :param durable: reuse the job an earlier try started (default True). ``False`` starts a new export
        on every try.
    :param slot_wait_timeout: seconds to wait for a free export slot while SES refuses CreateExportJob with
        "too many export jobs running" (default 3600), counted from the first refusal; ``0`` fails at once.
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
    template_fields: Sequence[str] = aws_template_fields("export_data_source", "data_format")
    template_fields_renderers: dict[str, str] = {"export_data_source": "json"}
    ui_color = "#ffd89b"

    #: Key of the recorded JobId (``task_state_store`` on Airflow 3.3+, part of the Variable's digest before).
    #: Renaming it would make tries already under way start a second export.
    external_id_key = "ses_export_job_id"

    def __init__(
        self,
        *,
        export_data_source: dict[str, Any],
        data_format: str = "CSV",
        wait_for_completion: bool = True,
        waiter_delay: float = 30,
        waiter_max_attempts: int = 120,
        deferrable: bool | None = None,
        durable: bool = True,
        slot_wait_timeout: float = 3600,
        **kwargs: Any,
    ) -> None:
        # durable is named here (not left to **kwargs) so default_args reach it on every Airflow version
        super().__init__(durable=durable, **kwargs)
        self.export_data_source = export_data_source
        self.data_format = data_format
        self.wait_for_completion = wait_for_completion
        self.waiter_delay = waiter_delay
        self.waiter_max_attempts = waiter_max_attempts
        self.deferrable: bool = default_deferrable() if deferrable is None else deferrable
        self.slot_wait_timeout = slot_wait_timeout
        #: the job this try waits for (what on_kill cancels); None once the wait is over
        self.job_id: str | None = None
        self._request: CreateExportJobRequest | None = None
        self._started: str | None = None  # the job this try created
        self._export_job_id: str | None = None  # the job this try returns
        self._slots: SlotWait | None = None  # the wait for a free export slot, once SES refused a create

    def _check_waiter_arguments(self) -> None:
        validate_poll_interval(self.waiter_delay, "waiter_delay")
        validate_integer(self.waiter_max_attempts, "waiter_max_attempts", 1)
        validate_seconds(self.slot_wait_timeout, "slot_wait_timeout")

    def execute(self, context: Context) -> str:
        with job_record_until_the_task_ends(self, context):
            return self._run(context)

    def _run(self, context: Context) -> str:
        """Create the job, or reuse the one this task instance recorded (:func:`resume_job`), and wait for it."""
        self._request = build_create_export_job_request(self.export_data_source, self.data_format)
        self._check_waiter_arguments()
        self._started = self._export_job_id = None
        resume_job(self, context)
        assert self._export_job_id is not None
        return self._export_job_id

    def _use(self, job_id: str) -> None:
        if job_id != self._started:
            self.log.info("Reusing SES export job %s: an earlier try started this same export.", job_id)
        self._export_job_id = job_id

    def _wait(self, job_id: str, context: Context) -> None:
        summary = self.hook.wait_for_export_job(job_id, self.waiter_delay, self.waiter_max_attempts)
        context["ti"].xcom_push(key="export_job", value=summary)

    def _slot_wait(self, started_at: str | None = None, attempts: int = 0) -> SlotWait:
        """The wait for a free export slot (attempts so far and their start come back from a deferral)."""
        assert self._request is not None
        return SlotWait(
            source_type=source_type_of(self._request),
            timeout=float(self.slot_wait_timeout),
            cap=float(self.waiter_delay),
            started_at=validate_deadline(started_at, "started_at"),
            attempts=attempts,
        )

    def _defer_slot_wait(self, slots: SlotWait, unfinished: int | None, context: Context) -> None:
        """Deferrable mode: wait for a free slot on the triggerer, then resume in :meth:`execute_after_slot_wait`."""
        assert slots.started_at is not None
        self.defer(
            trigger=SesExportSlotTrigger(
                source_type=slots.source_type,
                started_at=slots.started_at,
                attempts=slots.attempts,
                unfinished=unfinished,
                slot_wait_timeout=slots.timeout,
                max_pause=slots.cap,
                aws_conn_id=self.aws_conn_id,
                region_name=self.region_name,
                verify=self.verify,
                botocore_config=self.botocore_config,
                deferred_try=try_number_of(context),
            ),
            method_name="execute_after_slot_wait",
            timeout=dt.timedelta(seconds=slots.seconds_left()) + dt.timedelta(minutes=5),
        )

    def execute_after_slot_wait(self, context: Context, event: dict[str, Any] | None = None) -> str:
        """
        Resume after the triggerer's wait for a free export slot: try CreateExportJob again (the whole
        :meth:`execute`, so a job an earlier try started is still reused), or fail once ``slot_wait_timeout``
        is used up.

        :param context: the task context.
        :param event: the :class:`~airflow_provider_sesexport.triggers.export_slot.SesExportSlotTrigger` event.
        """
        with job_record_until_the_task_ends(self, context):
            if resumed_by_a_later_try(context, event):  # Airflow 3.0: an earlier try's event; start afresh
                return self._run(context)
            if not isinstance(event, dict) or event.get("status") not in ("free", "timeout"):
                message = event.get("message") if isinstance(event, dict) else None
                raise SesExportJobError(f"Waiting for a free SES export slot failed: {message or event!r}")
            self._request = build_create_export_job_request(self.export_data_source, self.data_format)
            self._slots = self._slot_wait(event.get("started_at"), int(event.get("attempts") or 0))
            if event["status"] == "timeout":
                raise self._slots.exhausted()
            return self._run(context)

    # -- ResumableJobMixin (its execute_resumable calls these on Airflow 3.3+, resume_job below 3.3)
    def submit_job(self, context: Context) -> dict[str, Any]:
        """Start the export job (CreateExportJob), waiting for a free export slot; return its record."""
        assert self._request is not None, "execute builds the request first"
        if self._slots is None:
            self._slots = self._slot_wait()
        hand_off = partial(self._defer_slot_wait, context=context) if self.deferrable else None
        job_id = create_in_free_slot(self.hook, self._request, self._slots, self.log, hand_off)
        self.log.info("Started SES export job %s", job_id)
        self.job_id = self._started = job_id
        return job_record(job_id, context)

    def get_job_status(self, external_id: Any, context: Context) -> str:
        """
        The recorded job's ``JobStatus``, ``NOT_FOUND`` when SES no longer knows the JobId, or
        ``RECORDED_BEFORE_CLEAR`` when the record is not this task instance's since its last Clear.
        """
        job_id = recorded_job_id(external_id, context)
        if job_id is None:
            self.log.info("The recorded job was started before this task instance was cleared: not reusing it.")
            return RECORDED_BEFORE_CLEAR
        try:
            return str(self.hook.get_export_job(job_id).get("JobStatus"))
        except SesExportJobNotFoundError:
            return NOT_FOUND

    def is_job_active(self, status: str) -> bool:
        """Whether the job can still be waited for (a status this provider does not know counts as running)."""
        return status not in TERMINAL_STATES and status not in (NOT_FOUND, RECORDED_BEFORE_CLEAR)

    def is_job_succeeded(self, status: str) -> bool:
        """Whether the job is COMPLETED."""
        return status in SUCCESS_STATES

    def poll_until_complete(self, external_id: Any, context: Context) -> None:
        """Wait for the job, in this worker or deferred to the triggerer (unless ``wait_for_completion`` is off)."""
        job_id = str(external_id["job_id"])
        self._use(job_id)
        self.job_id = job_id
        if not self.wait_for_completion:
            return
        if self.deferrable:
            # cancel_on_kill: this task started the job (or an earlier try of it did)
            defer_wait(
                self,
                job_id,
                float(self.waiter_delay),
                float(self.waiter_delay) * self.waiter_max_attempts,
                context,
                cancel_on_kill=True,
            )
        self._wait(job_id, context)
        self.job_id = None  # finished: nothing left for on_kill to cancel

    def get_job_result(self, external_id: Any, context: Context) -> str:
        """
        The JobId. For a job an earlier try already saw COMPLETED (the mixin skips the wait), push its summary too.

        :param external_id: the job's record (:func:`~airflow_provider_sesexport._compat.job_record`).
        :param context: the task context.
        """
        job_id = str(external_id["job_id"])
        if self._export_job_id != job_id:
            self._use(job_id)
            if self.wait_for_completion:
                self._wait(job_id, context)  # one GetExportJob: the job is COMPLETED
        return job_id

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> str:
        """
        Finish a deferred wait: push the summary under ``export_job`` and return the JobId.

        :param context: the task context.
        :param event: the trigger's event; one that an earlier try deferred for (Airflow 3.0 resumes a retry
            with it) starts the task afresh.
        """
        with job_record_until_the_task_ends(self, context):
            if resumed_by_a_later_try(context, event):
                assert event is not None
                self.log.info("Try %s deferred this wait; this try starts afresh.", event["deferred_try"])
                return self._run(context)

            summary = summary_from_event(event, SesExportJobError)
            context["ti"].xcom_push(key="export_job", value=summary)
            self.log.info("SES export job %s: status %s", summary["job_id"], summary["job_status"])
            return str(summary["job_id"])

    def on_kill(self) -> None:
        """Cancel the export job this task is waiting for, if it is still running (a finished one is only logged)."""
        job_id = self.job_id
        if not job_id:
            return
        try:
            status = self.hook.get_export_job(job_id).get("JobStatus")
            if status in INTERMEDIATE_STATES:
                self.hook.cancel_export_job(job_id)
                self.log.info("Cancelled SES export job %s (was %s).", job_id, status)
        except SesExportJobAlreadyFinishedError as exc:
            self.log.info("SES export job %s finished (%s) before it could be cancelled.", job_id, exc.job_status)
        except Exception as exc:
            self.log.warning("Could not cancel SES export job %s: %s", job_id, aws_errors.describe(exc))
