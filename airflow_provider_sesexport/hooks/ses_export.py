"""Hook for Amazon SES v2 export jobs."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from botocore.config import Config
from botocore.exceptions import ClientError

from airflow_provider_sesexport.exceptions import SesExportJobError
from airflow_provider_sesexport.hooks._download import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_TIMEOUT,
    ExportStream,
)
from airflow_provider_sesexport.records import ExportCheck, iter_records
from airflow_provider_sesexport.utils import aws_errors
from airflow_provider_sesexport.utils.caller import find_operator_class_name, with_frame_walk
from airflow_provider_sesexport.utils.export_job import (
    FAILURE_STATES,
    INTERMEDIATE_STATES,
    SUCCESS_STATES,
    ExportJobOutcome,
    observe_export_job,
    s3_url_of,
    url_expires_at,
    utcnow,
)
from airflow_provider_sesexport.utils.redaction import mask_url
from airflow_provider_sesexport.utils.validation import (
    CreateExportJobRequest,
    build_create_export_job_request,
    build_list_export_jobs_request,
    validate_integer,
    validate_job_id,
    validate_poll_interval,
)

#: Used when neither the hook's ``config`` nor the connection's ``config_kwargs`` configure retries:
#: botocore's standard mode retries TooManyRequestsException (HTTP 429), 5xx and network errors with
#: jittered exponential backoff.
DEFAULT_RETRIES: dict[str, Any] = {"mode": "standard", "max_attempts": 5}


#: Jobs per ListExportJobs page when listing the unfinished jobs (ListExportJobs' largest page).
UNFINISHED_PAGE_SIZE = 100


def unfinished_jobs_requests(source_type: str | None = None) -> list[dict[str, Any]]:
    """
    The ListExportJobs requests that together list every unfinished (CREATED or PROCESSING) export job.

    CREATED comes first: a job that moves on between the two listings then shows up in PROCESSING.

    :param source_type: only jobs of this ``ExportSourceType``; None for every type.
    """
    scope = {} if source_type is None else {"ExportSourceType": source_type}
    return [{**scope, "JobStatus": status, "PageSize": UNFINISHED_PAGE_SIZE} for status in sorted(INTERMEDIATE_STATES)]


def _next_page(request: dict[str, Any], response: dict[str, Any]) -> dict[str, Any] | None:
    """The request for the page after ``response``, or None after the last page (botocore has no paginator for it)."""
    token = response.get("NextToken")
    return {**request, "NextToken": token} if token else None


def iter_export_jobs(
    list_export_jobs: Callable[..., dict[str, Any]], requests: Iterable[dict[str, Any]]
) -> Iterator[dict[str, Any]]:
    """
    Yield the job summaries of every page of each ListExportJobs request, following ``NextToken``.

    :param list_export_jobs: a boto3 ``sesv2`` client's ``list_export_jobs``.
    :param requests: the requests, each listed to its last page in turn.
    """
    for first in requests:
        request: dict[str, Any] | None = first
        while request is not None:
            response = list_export_jobs(**request)
            yield from response.get("ExportJobs", ())
            request = _next_page(request, response)


async def aiter_export_jobs(
    list_export_jobs: Callable[..., Awaitable[dict[str, Any]]], requests: Iterable[dict[str, Any]]
) -> AsyncIterator[dict[str, Any]]:
    """
    The async twin of :func:`iter_export_jobs`, for an aiobotocore client's ``list_export_jobs``.

    :param list_export_jobs: an aiobotocore ``sesv2`` client's ``list_export_jobs``.
    :param requests: the requests, each listed to its last page in turn.
    """
    for first in requests:
        request: dict[str, Any] | None = first
        while request is not None:
            response = await list_export_jobs(**request)
            for job in response.get("ExportJobs", ()):
                yield job
            request = _next_page(request, response)


#: The loggers botocore (and aiobotocore) write a response's body to, at DEBUG.
_BODY_LOGGERS = ("botocore.parsers", "aiobotocore.parsers")


def _mask_answer_urls(response_dict: dict[str, Any], **kwargs: Any) -> None:
    """
    botocore ``before-parse`` handler: while botocore logs response bodies (DEBUG), register a GetExportJob answer's
    pre-signed URLs with the secrets masker before the body is logged.

    Only then: every registration recompiles the masker's pattern of every value registered so far, so the
    triggerer, one process for days, would pay more for each job it ever saw (task processes register anyway,
    in :func:`~airflow_provider_sesexport.utils.export_job.observe_export_job`).

    :param response_dict: the raw HTTP response (``body`` is the JSON document).
    """
    if not any(logging.getLogger(name).isEnabledFor(logging.DEBUG) for name in _BODY_LOGGERS):
        return
    try:
        job = json.loads(response_dict.get("body") or b"{}")
    except ValueError:
        return
    if isinstance(job, dict):
        mask_url((job.get("ExportDestination") or {}).get("S3Url"))
        mask_url((job.get("FailureInfo") or {}).get("FailedRecordsS3Url"))


#: The handler's id on a client's events (registered once however often a client is handed out).
_MASK_HANDLER_ID = "airflow-provider-sesexport-mask-answer-urls"


def mask_answer_urls(client: Any) -> Any:
    """
    Make ``client`` (a boto3 or an entered aiobotocore ``sesv2`` client) register GetExportJob answers' pre-signed
    URLs with the secrets masker before botocore parses them, so botocore's DEBUG log of the body is masked too.

    :param client: the client.
    :return: the client.
    """
    events = getattr(getattr(client, "meta", None), "events", None)  # None: an aiobotocore client's creator
    if events is not None:
        events.register("before-parse.sesv2.GetExportJob", _mask_answer_urls, unique_id=_MASK_HANDLER_ID)
    return client


#: How long a URL the caller already has must still be valid to serve a download's first request (of five minutes).
URL_REUSE_MARGIN = dt.timedelta(minutes=4)


class SesExportDownloadMixin:
    """
    Download methods of :class:`SesExportJobHook`: the machinery behind them (``requests``, resuming,
    ``s3://`` reads) lives in :mod:`airflow_provider_sesexport.hooks._download`, which is given what it needs (a URL
    refresher, the S3 client, the timeouts) and calls nothing else of the hook.

    ``download_timeout`` is ``(connect, read)`` seconds for https downloads; ``download_retry_delay``
    the first pause after a network error (doubled on each failure in a row).
    """

    download_timeout: tuple[float, float] = DEFAULT_TIMEOUT
    download_retry_delay: float = 1.0
    download_max_attempts: int = DEFAULT_MAX_ATTEMPTS
    _export_s3_hook_cache: Any = None

    # Provided by AwsBaseHook.
    log: logging.Logger
    aws_conn_id: str | None
    region_name: str | None
    verify: bool | str | None
    config: Config

    def get_export_job(self, job_id: str) -> dict[str, Any]:  # pragma: no cover - implemented by the hook
        raise NotImplementedError

    def get_completed_export_job(self, job_id: str, logger: Any = None) -> tuple[dict[str, Any], ExportJobOutcome]:
        """
        GetExportJob now: the job and its outcome, which must be COMPLETED.

        Logs the poll line. FAILED and CANCELLED raise the sensor's typed errors; a job that has not finished
        raises :class:`~airflow_provider_sesexport.exceptions.SesExportJobError` telling to put
        ``SesExportJobSensor`` upstream. The result operator, the copy and the loader all read a job this way.

        :param job_id: the export job's id.
        :param logger: where the poll line goes (the calling task's logger, say); defaults to the hook's.
        """
        job = self.get_export_job(job_id)
        outcome = observe_export_job(job_id, job, logger or self.log)
        if not outcome.succeeded:
            raise SesExportJobError(
                f"SES export job {job_id!r} has not finished (status {outcome.job_status}): put "
                "SesExportJobSensor upstream of this task so it runs once the job is COMPLETED."
            )
        return job, outcome

    def _fresh_export_url(
        self, job_id: str, job: dict[str, Any] | None = None, retrieved_at: dt.datetime | None = None
    ) -> tuple[str, dt.datetime, dict[str, Any]]:
        """
        GetExportJob now: ``(url, expires_at, job)``; the job must be COMPLETED. A COMPLETED ``job`` received at
        ``retrieved_at`` stands in for the call while its URL has ``URL_REUSE_MARGIN`` left.
        """
        if job is not None and retrieved_at is not None and job.get("JobStatus") in SUCCESS_STATES:
            url = s3_url_of(job)
            if url and (expires_at := url_expires_at(url, retrieved_at)) - utcnow() >= URL_REUSE_MARGIN:
                mask_url(url)
                return url, expires_at, job
        retrieved_at = utcnow()  # before the call: the URL expires no earlier than five minutes after this
        job, _ = self.get_completed_export_job(job_id)
        url = s3_url_of(job)
        if not url:
            raise SesExportJobError(f"SES export job {job_id!r} is COMPLETED but GetExportJob returned no S3Url.")
        return url, url_expires_at(url, retrieved_at), job

    def get_export_download_url(self, job_id: str) -> tuple[str, dt.datetime]:
        """
        Return a fresh download URL of a COMPLETED export job and when it expires.

        Calls GetExportJob now: the URL is valid for five minutes from this call. It is a bearer
        credential (registered with the secrets masker here): do not log it or push it to XCom.

        :param job_id: the export job's id.
        :return: ``(url, expires_at)``; ``url`` is https pre-signed or ``s3://bucket/key``,
            ``expires_at`` a timezone-aware UTC datetime.
        """
        url, expires_at, _ = self._fresh_export_url(job_id)
        return url, expires_at

    def open_export_stream(
        self,
        job_id: str,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        max_attempts: int | None = None,
        job: dict[str, Any] | None = None,
        retrieved_at: dt.datetime | None = None,
    ) -> ExportStream:
        """
        Fetch a fresh URL for a COMPLETED export job and return the stream of its file's bytes.

        The :class:`ExportStream` also tells the job response, the file size, ETag and progress.

        :param job_id: the export job's id.
        :param chunk_size: bytes per chunk.
        :param max_attempts: failed attempts in a row before giving up (default ``download_max_attempts``).
        :param job: a GetExportJob response the caller received moments ago, at ``retrieved_at`` (taken before the
            call): its URL serves the first request instead of a new GetExportJob while it has ``URL_REUSE_MARGIN``
            of its five minutes left; later requests (a dropped connection, a refused URL) fetch fresh ones.
        :param retrieved_at: when the caller asked for ``job``.
        """
        stream = ExportStream(
            job_id,
            _ExportUrls(self, job_id, job, retrieved_at),
            lambda: self._export_s3_hook().get_conn(),
            log=self.log,
            timeout=self.download_timeout,
            verify=self._download_verify(),
            chunk_size=chunk_size,
            max_attempts=max_attempts or self.download_max_attempts,
            retry_delay=self.download_retry_delay,
        )
        return stream.open()

    def stream_export(self, job_id: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
        """
        Yield the bytes of a COMPLETED export job's file, in chunks of ``chunk_size``, in constant memory.

        An expired or rejected URL, or a dropped connection, is retried with a fresh URL from a new
        GetExportJob, resuming with ``Range`` where the server allows it.

        :param job_id: the export job's id.
        :param chunk_size: bytes per chunk (the last one may be shorter).
        """
        with self.open_export_stream(job_id, chunk_size=chunk_size) as stream:
            yield from stream

    def iter_export_records(
        self,
        job_id: str,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        parse_timestamps: bool = True,
        job: dict[str, Any] | None = None,
        retrieved_at: dt.datetime | None = None,
    ) -> Iterator[dict[str, Any]]:
        """
        Yield the records of a COMPLETED export job's file, one dict per record, in constant memory.

        The file is streamed as by :meth:`stream_export` (fresh URL, resumed downloads) and read in
        the layout the job names (``ExportSourceType``, ``ExportDestination.DataFormat``); values are
        normalised as :func:`~airflow_provider_sesexport.records.iter_records` describes.

        :param job_id: the export job's id.
        :param chunk_size: bytes per downloaded chunk.
        :param parse_timestamps: False keeps Message Insights timestamps as the file's text.
        :param job: a GetExportJob response received moments ago, at ``retrieved_at``: see :meth:`open_export_stream`.
        :param retrieved_at: when the caller asked for ``job``.
        :raises SesExportContentError: the download is not an export file of the job's ``DataFormat`` (checked
            on its content type and first bytes by :class:`~airflow_provider_sesexport.records.ExportCheck`).
        :raises SesExportRecordsError: the file is not in the layout the job names.
        """
        with self.open_export_stream(job_id, chunk_size=chunk_size, job=job, retrieved_at=retrieved_at) as stream:
            yield from iter_records(
                ExportCheck(stream).checked(stream),
                source_type=stream.job.get("ExportSourceType"),
                data_format=(stream.job.get("ExportDestination") or {}).get("DataFormat"),
                parse_timestamps=parse_timestamps,
            )

    def download_export(self, job_id: str, path: str | os.PathLike[str], chunk_size: int = DEFAULT_CHUNK_SIZE) -> int:
        """
        Download a COMPLETED export job's file to ``path`` (written to ``path.part``, renamed when complete,
        removed if the download fails).

        :param job_id: the export job's id.
        :param path: the local file to write.
        :param chunk_size: bytes per write.
        :return: the number of bytes written.
        """
        target = Path(path)
        partial = target.with_name(target.name + ".part")
        try:
            with self.open_export_stream(job_id, chunk_size=chunk_size) as stream, partial.open("wb") as out:
                for chunk in stream:
                    out.write(chunk)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        os.replace(partial, target)
        self.log.info("Downloaded SES export job %s: %d bytes to %s", job_id, stream.bytes_read, target)
        return stream.bytes_read

    # -- helpers ------------------------------------------------------------------------------
    def _download_verify(self) -> bool | str:
        """``verify`` for https downloads: the hook's setting (True unless it says otherwise)."""
        verify = self.verify
        return True if verify is None else verify

    def _export_s3_hook(self) -> Any:
        """The Amazon provider's S3Hook on this hook's connection, for ``s3://`` export URLs."""
        hook = getattr(self, "_export_s3_hook_cache", None)
        if hook is None:
            from airflow.providers.amazon.aws.hooks.s3 import S3Hook

            hook = with_frame_walk(
                S3Hook(aws_conn_id=self.aws_conn_id, region_name=self.region_name, verify=self.verify)
            )
            self._export_s3_hook_cache = hook
        return hook


class SesExportJobHook(AwsBaseHook, SesExportDownloadMixin):
    """
    Interact with Amazon SES v2 export jobs (Virtual Deliverability Manager and Message Insights exports).

    Provide thin wrapper around :external+boto3:py:class:`boto3.client("sesv2") <SESV2.Client>`.

    Additional arguments (such as ``aws_conn_id``) may be specified and
    are passed down to the underlying AwsBaseHook.

    .. seealso::
        - :class:`airflow.providers.amazon.aws.hooks.base_aws.AwsBaseHook`
    """

    INTERMEDIATE_STATES: frozenset[str] = INTERMEDIATE_STATES
    SUCCESS_STATES: frozenset[str] = SUCCESS_STATES
    FAILURE_STATES: frozenset[str] = FAILURE_STATES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["client_type"] = "sesv2"
        super().__init__(*args, **kwargs)

    #: The user agent's ``Caller/`` found without ``inspect.stack()`` (:mod:`~airflow_provider_sesexport.utils.caller`).
    _find_operator_class_name = staticmethod(find_operator_class_name)

    def get_client_type(self, *args: Any, **kwargs: Any) -> Any:
        """
        The ``sesv2`` client (see ``AwsBaseHook``), whose GetExportJob answers have their pre-signed URLs registered
        with the secrets masker before botocore parses them: botocore's DEBUG log of the response body is masked too.
        """
        return mask_answer_urls(super().get_client_type(*args, **kwargs))

    @property
    def config(self) -> Config:
        """Botocore config: the user's, with standard-mode retries added unless the user set retries."""
        config = super().config or Config()
        if config.retries is None:
            config = config.merge(Config(retries=dict(DEFAULT_RETRIES)))
        return config

    @cached_property
    def waiter_path(self) -> Path:  # type: ignore[override]
        return Path(__file__).parents[1] / "waiters" / "sesv2.json"

    def translate_error(self, exc: ClientError, job_id: str | None = None) -> Exception:
        """
        This provider's exception for a modeled SES error
        (:func:`~airflow_provider_sesexport.utils.aws_errors.translate`), naming this hook's connection id and
        the region its client sends to.

        :param exc: the error.
        :param job_id: the job the request was about, if any.
        """
        return aws_errors.translate(exc, job_id, region=self.conn.meta.region_name, aws_conn_id=self.aws_conn_id)

    def get_export_job(self, job_id: str) -> dict[str, Any]:
        """
        Describe an export job.

        .. seealso::
            - :external+boto3:py:meth:`SESV2.Client.get_export_job`

        :param job_id: the export job's id.
        :return: the GetExportJob response without ``ResponseMetadata``.
        """
        validate_job_id(job_id)
        try:
            response = self.conn.get_export_job(JobId=job_id)
        except ClientError as exc:
            raise self.translate_error(exc, job_id) from exc
        response.pop("ResponseMetadata", None)
        return response

    def get_export_job_status(self, job_id: str) -> str:
        """
        Return the export job's ``JobStatus``.

        :param job_id: the export job's id.
        """
        return self.get_export_job(job_id)["JobStatus"]

    def create_export_job(self, export_data_source: dict[str, Any], data_format: str = "CSV") -> str:
        """
        Start an export job.

        .. seealso::
            - :external+boto3:py:meth:`SESV2.Client.create_export_job`

        :param export_data_source: ``ExportDataSource`` as the API takes it
            (``MetricsDataSource`` or ``MessageInsightsDataSource``).
        :param data_format: ``CSV`` or ``JSON``.
        :return: the new job's id.
        """
        return self.submit_export_job(build_create_export_job_request(export_data_source, data_format))

    def submit_export_job(self, request: CreateExportJobRequest) -> str:
        """
        Send a CreateExportJob request built, and so validated, by
        :func:`~airflow_provider_sesexport.utils.validation.build_create_export_job_request`.

        An account without Virtual Deliverability Manager raises
        :class:`~airflow_provider_sesexport.exceptions.SesExportVdmNotEnabledError` (no retries; says how to enable it).
        Throttling (one call per second per account) is retried by botocore's retry mode (see :attr:`config`);
        still throttled after its attempts, :class:`~airflow_provider_sesexport.exceptions.SesExportJobError`.

        :param request: the request.
        :return: the new job's id.
        """
        client = self.conn
        aws_errors.stop_retrying_no_free_slot(client)  # no free slot: the create operator waits for one itself
        try:
            response = client.create_export_job(**request)
        except ClientError as exc:
            if aws_errors.error_code(exc) in aws_errors.THROTTLING_CODES:
                retries = client.meta.config.retries or {}  # botocore keeps max_attempts + 1 as total_max_attempts
                raise SesExportJobError(
                    f"CreateExportJob was still throttled after {retries.get('total_max_attempts', 'all its')} "
                    f"attempts in botocore's {retries.get('mode', 'legacy')!r} retry mode: "
                    f"{aws_errors.describe(exc)}. SES allows one CreateExportJob call per second per account; to "
                    'start many exports at once, set {"retries": {"mode": "adaptive", "max_attempts": 10}} in the '
                    "operator's botocore_config or the connection's config_kwargs."
                ) from exc
            raise self.translate_error(exc) from exc
        return response["JobId"]

    def cancel_export_job(self, job_id: str) -> None:
        """
        Cancel an export job that has not finished.

        .. seealso::
            - :external+boto3:py:meth:`SESV2.Client.cancel_export_job`

        :param job_id: the export job's id.
        """
        validate_job_id(job_id)
        try:
            self.conn.cancel_export_job(JobId=job_id)
        except ClientError as exc:
            raise self.translate_error(exc, job_id) from exc

    def list_export_jobs(
        self,
        export_source_type: str | None = None,
        job_status: str | None = None,
        page_size: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """
        Yield export job summaries, following ``NextToken`` across pages.

        .. seealso::
            - :external+boto3:py:meth:`SESV2.Client.list_export_jobs`

        :param export_source_type: only jobs of this ``ExportSourceType`` (``METRICS_DATA`` or
            ``MESSAGE_INSIGHTS``).
        :param job_status: only jobs in this ``JobStatus``.
        :param page_size: jobs per page.
        """
        # Validated now, not when the caller starts iterating.
        return self._list_jobs([build_list_export_jobs_request(export_source_type, job_status, page_size)])

    def list_unfinished_export_jobs(self, source_type: str | None = None) -> Iterator[dict[str, Any]]:
        """
        Yield the summaries of every CREATED or PROCESSING export job (see :func:`unfinished_jobs_requests`).

        :param source_type: only jobs of this ``ExportSourceType``; None for every type.
        """
        return self._list_jobs(unfinished_jobs_requests(source_type))

    def _list_jobs(self, requests: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        try:
            yield from iter_export_jobs(self.conn.list_export_jobs, requests)
        except ClientError as exc:
            raise self.translate_error(exc) from exc

    def poll_export_job(self, job_id: str, logger: Any = None) -> ExportJobOutcome | None:
        """
        Read the export job once, as one poll of a wait, and return its outcome.

        Logs the poll line. FAILED raises :class:`~airflow_provider_sesexport.exceptions.SesExportJobFailedError`,
        CANCELLED :class:`~airflow_provider_sesexport.exceptions.SesExportJobCancelledError`, an unknown job
        :class:`~airflow_provider_sesexport.exceptions.SesExportJobNotFoundError`. Throttling, 5xx and network
        errors that outlast botocore's retries are logged and return None: the job is not done yet.

        :param job_id: the export job's id.
        :param logger: where the poll line goes (the calling task's logger, say); defaults to the hook's.
        """
        logger = logger or self.log
        try:
            job = self.get_export_job(job_id)
        except Exception as exc:
            self._tolerate_transient(job_id, exc, logger)
            return None
        return observe_export_job(job_id, job, logger)

    def _tolerate_transient(self, job_id: str, exc: Exception, logger: Any = None) -> None:
        """The rule of every synchronous wait: a transient error means "not done yet"; anything else is raised."""
        if not aws_errors.is_transient(exc):
            raise exc
        (logger or self.log).warning(
            "SES export job %s: could not read its status (%s); botocore's retries are used up, will poll again.",
            job_id,
            aws_errors.describe(exc),
        )

    def wait_for_export_job(
        self, job_id: str, waiter_delay: float = 30, waiter_max_attempts: int = 120
    ) -> dict[str, Any]:
        """
        Block until the export job is COMPLETED: :meth:`poll_export_job` every ``waiter_delay`` seconds.

        Each poll is one GetExportJob and one log line. FAILED raises
        :class:`~airflow_provider_sesexport.exceptions.SesExportJobFailedError`, CANCELLED
        :class:`~airflow_provider_sesexport.exceptions.SesExportJobCancelledError` (with AWS's message), an
        unknown job :class:`~airflow_provider_sesexport.exceptions.SesExportJobNotFoundError`. Throttling and
        network errors that outlast botocore's retries only make that poll "not done".

        :param job_id: the export job's id.
        :param waiter_delay: seconds between polls, at least 1.
        :param waiter_max_attempts: polls before giving up with
            :class:`~airflow_provider_sesexport.exceptions.SesExportJobError`.
        :return: the job summary (plain JSON, no URL).
        """
        validate_job_id(job_id)
        waiter_delay = validate_poll_interval(waiter_delay, "waiter_delay")
        waiter_max_attempts = validate_integer(waiter_max_attempts, "waiter_max_attempts", 1)
        for attempt in range(waiter_max_attempts):
            if attempt:
                time.sleep(waiter_delay)
            outcome = self.poll_export_job(job_id)
            if outcome is not None and outcome.succeeded:
                return outcome.summary
        raise SesExportJobError(
            f"SES export job {job_id!r} did not finish after {waiter_max_attempts} polls {waiter_delay}s "
            "apart; raise waiter_max_attempts or waiter_delay to wait longer."
        )


class _ExportUrls:
    """
    An :class:`ExportStream`'s URL refresher: the first call uses the GetExportJob response the caller already has
    (when it has one), every later call (a dropped connection, a refused URL) asks for a fresh one.
    """

    def __init__(
        self, hook: SesExportDownloadMixin, job_id: str, job: dict[str, Any] | None, retrieved_at: dt.datetime | None
    ) -> None:
        self._hook = hook
        self._job_id = job_id
        self._given: tuple[dict[str, Any] | None, dt.datetime | None] = (job, retrieved_at)

    def __call__(self) -> tuple[str, dt.datetime, dict[str, Any]]:
        job, retrieved_at = self._given
        self._given = (None, None)
        return self._hook._fresh_export_url(self._job_id, job, retrieved_at)
