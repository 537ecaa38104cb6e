"""
The job store: creation, lazy time-based lifecycle, outcome rules, cancel / force / delete, listing.

Status is computed from the clock on every read (no background tasks): ``CREATED`` for
``created_seconds * time_scale`` after creation (answered as ``PROCESSING``, as real SES does,
unless ``show_created``), then ``PROCESSING`` for ``processing_seconds * time_scale``, then the
outcome (``COMPLETED``, or ``FAILED`` when a rule says so; a ``hang`` rule keeps the job in
``PROCESSING`` forever). Cancel and the force-* controls pin a terminal status. An :class:`Advance`
rule holds a job in ``PROCESSING`` until it has been read a given number of times, then pins the
status it names (moto's state-manager idea: progress by reads, not by the clock). The store lives
on the server's event loop: only that thread touches it.
"""

from __future__ import annotations

import base64
import random
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal, get_args

from ses_export_emulator.exportfile import ExportFile, Volumes, build_export_file, mix64

TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
Outcome = Literal["fail", "hang", "complete"]
SourceType = Literal["METRICS_DATA", "MESSAGE_INSIGHTS"]
Terminal = Literal["COMPLETED", "FAILED", "CANCELLED"]
#: Which calls count as reads of a job for an :class:`Advance` rule.
ReadCall = Literal["get", "list", "any"]
OUTCOMES: tuple[str, ...] = get_args(Outcome)
DEFAULT_FAILURE_MESSAGE = "Export job failed: the emulator was told to fail this job"
#: Export files kept built at once (each holds its rows, up to a few MB); older ones are rebuilt on demand.
_FILES_CACHED = 8


def source_type_of(params: dict[str, Any]) -> SourceType:
    """
    The ``ExportSourceType`` of a validated CreateExportJob request.

    :param params: the validated params.
    """
    return "METRICS_DATA" if "MetricsDataSource" in params["ExportDataSource"] else "MESSAGE_INSIGHTS"


class JobError(Exception):
    """
    A modeled API error raised by the store.

    :param code: ``NotFoundException``, ``BadRequestException``, ...
    :param message: the message for the error body.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Rule:
    """
    Decides the outcome of matching jobs at creation time.

    All given criteria must match; a rule without criteria matches every job.

    :param action: ``fail``, ``hang`` or ``complete``.
    :param job_index: match the n-th job created (0-based).
    :param job_id: match this JobId (also applied at once to an existing, unfinished job).
    :param source_type: match ``METRICS_DATA`` or ``MESSAGE_INSIGHTS``.
    :param predicate: match when ``predicate(request_params)`` is true (Python API only).
    :param count: how many more jobs the rule applies to (``None``: unlimited).
    :param message: the ``FailureInfo.ErrorMessage`` of failed jobs.
    """

    action: Outcome = "fail"
    job_index: int | None = None
    job_id: str | None = None
    source_type: SourceType | None = None
    predicate: Callable[[dict[str, Any]], bool] | None = None
    count: int | None = None
    message: str = DEFAULT_FAILURE_MESSAGE

    def __post_init__(self) -> None:
        """Check the action and source type."""
        if self.action not in OUTCOMES:
            raise ValueError(f"Rule action must be one of {OUTCOMES}, got {self.action!r}")
        if self.source_type not in (None, "METRICS_DATA", "MESSAGE_INSIGHTS"):
            raise ValueError(f"Rule source_type must be METRICS_DATA or MESSAGE_INSIGHTS, got {self.source_type!r}")

    def matches(self, job: Job) -> bool:
        """
        Whether this rule applies to ``job``.

        :param job: the new job.
        """
        if self.count is not None and self.count <= 0:
            return False
        if self.job_index is not None and job.index != self.job_index:
            return False
        if self.job_id is not None and job.job_id != self.job_id:
            return False
        if self.source_type is not None and job.source_type != self.source_type:
            return False
        return self.predicate is None or bool(self.predicate(job.params))

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly description."""
        return {
            "action": self.action,
            "job_index": self.job_index,
            "job_id": self.job_id,
            "source_type": self.source_type,
            "predicate": self.predicate is not None,
            "count": self.count,
            "message": self.message,
        }


@dataclass
class Advance:
    """
    Move a job to ``to`` right after its ``reads``-th counted read; until then it stays ``PROCESSING``.

    The read that reaches ``reads`` is still answered with the old status; the next one sees ``to``.

    :param reads: how many counted reads before the job moves (at least 1).
    :param to: ``COMPLETED``, ``FAILED`` or ``CANCELLED``.
    :param message: the ``FailureInfo.ErrorMessage`` when ``to`` is ``FAILED``.
    :param count: which reads count: ``get`` (GetExportJob of the job), ``list`` (ListExportJobs
        answers that include the job) or ``any`` (both).
    :param job_id: the job (``None``: the next job created).
    """

    reads: int
    to: Terminal = "COMPLETED"
    message: str | None = None
    count: ReadCall = "get"
    job_id: str | None = None
    seen: int = 0

    def __post_init__(self) -> None:
        """Check the values."""
        if isinstance(self.reads, bool) or not isinstance(self.reads, int) or self.reads < 1:
            raise ValueError(f"reads must be an integer >= 1, got {self.reads!r}")
        if self.to not in TERMINAL:
            raise ValueError(f"to must be one of {sorted(TERMINAL)}, got {self.to!r}")
        if self.count not in get_args(ReadCall):
            raise ValueError(f"count must be one of {get_args(ReadCall)}, got {self.count!r}")
        if self.message is not None and self.to != "FAILED":
            raise ValueError("message is only for to='FAILED'")

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly description."""
        return {
            "job_id": self.job_id,
            "reads": self.reads,
            "to": self.to,
            "message": self.message,
            "count": self.count,
            "seen": self.seen,
        }


@dataclass
class Job:
    """
    One export job.

    :param job_id: the JobId.
    :param index: creation order, 0-based.
    :param source_type: ``METRICS_DATA`` or ``MESSAGE_INSIGHTS``.
    :param params: validated request params (datetimes).
    :param wire_request: the request body as received (echoed on the wire).
    :param created_wall: creation time, epoch seconds.
    :param created_mono: creation time, monotonic clock.
    :param volumes: the daily volumes set per email identity when the job was created (its file's data).
    """

    job_id: str
    index: int
    source_type: str
    params: dict[str, Any]
    wire_request: dict[str, Any]
    created_wall: float
    created_mono: float
    outcome: str = "complete"
    failure_message: str = DEFAULT_FAILURE_MESSAGE
    forced_status: str | None = None
    forced_wall: float | None = None
    advance: Advance | None = None
    volumes: Volumes | None = None

    @property
    def data_format(self) -> str:
        """``CSV`` or ``JSON``."""
        return str(self.params["ExportDestination"]["DataFormat"])

    def file_name(self, completed_wall: float) -> str:
        """
        The export file's object name, as real SES names it: ``ses-metrics-<yyyyMMdd_HHmmss>-<JobId>.csv``
        for metrics, ``<yyyyMMdd_HHmmss>_<first 10 hex digits of the JobId>.csv`` for Message Insights.

        :param completed_wall: when the job completed (epoch seconds): the name's timestamp.
        """
        stamp = datetime.fromtimestamp(completed_wall, tz=timezone.utc).strftime("%Y%m%d_%H%M%S")
        extension = "csv" if self.data_format == "CSV" else "json"
        if self.source_type == "METRICS_DATA":
            return f"ses-metrics-{stamp}-{self.job_id}.{extension}"
        return f"{stamp}_{self.job_id.replace('-', '')[:10]}.{extension}"


class JobStore:
    """
    All jobs of one emulator, with their rules.

    :param seed: seeds JobIds and file contents.
    :param created_seconds: nominal time in ``CREATED``.
    :param processing_seconds: nominal time in ``PROCESSING``.
    :param time_scale: multiplies both durations.
    :param row_multiplier: scales export files' row counts.
    :param show_created: answer ``CREATED`` during the created phase (else ``PROCESSING``, as real SES).
    :param default_page_size: ListExportJobs page size without ``PageSize``.
    """

    def __init__(
        self,
        seed: int = 0,
        created_seconds: float = 1.0,
        processing_seconds: float = 2.0,
        time_scale: float = 1.0,
        row_multiplier: int = 1,
        show_created: bool = False,
        default_page_size: int = 100,
    ) -> None:
        self.seed = seed
        self.created_seconds = created_seconds
        self.processing_seconds = processing_seconds
        self.time_scale = time_scale
        self.row_multiplier = row_multiplier
        self.show_created = show_created
        self.default_page_size = default_page_size
        self._rng = random.Random(seed)
        self._jobs: dict[str, Job] = {}
        self._next_index = 0
        self.rules: list[Rule] = []
        self._files: OrderedDict[str, ExportFile] = OrderedDict()
        #: Advance rules waiting for the next jobs created, in order.
        self.pending_advances: list[Advance] = []
        #: Daily volumes set per email identity (``set_volumes``); a job keeps those set when it was created.
        self.volumes: dict[tuple[str, str], dict[str, float]] = {}

    # -- lifecycle ---------------------------------------------------------------------------
    def status(self, job: Job, now: float | None = None) -> str:
        """
        The job's status at monotonic time ``now``.

        :param job: the job.
        :param now: monotonic time (default now).
        """
        if job.forced_status is not None:
            return job.forced_status
        elapsed = (time.monotonic() if now is None else now) - job.created_mono
        created = self.created_seconds * self.time_scale
        if elapsed < created:
            return "CREATED" if self.show_created else "PROCESSING"
        if (
            job.outcome == "hang"
            or job.advance is not None
            or elapsed < created + self.processing_seconds * self.time_scale
        ):
            return "PROCESSING"
        return "FAILED" if job.outcome == "fail" else "COMPLETED"

    def completed_wall(self, job: Job, status: str) -> float | None:
        """
        When the job reached its terminal ``status`` (epoch seconds), or ``None`` if not terminal.

        :param job: the job.
        :param status: its current status.
        """
        if status not in TERMINAL:
            return None
        if job.forced_wall is not None:
            return job.forced_wall
        return job.created_wall + (self.created_seconds + self.processing_seconds) * self.time_scale

    def export_file(self, job: Job) -> ExportFile:
        """
        The job's export file (built on demand; the most recently used few are kept).

        :param job: the job.
        """
        export = self._files.pop(job.job_id, None)
        if export is None:
            source = job.params["ExportDataSource"]
            data_source = source.get("MetricsDataSource") or source.get("MessageInsightsDataSource")
            export = build_export_file(
                job.source_type,
                data_source,
                job.data_format,
                mix64(self.seed, job.index),
                self.row_multiplier,
                job.volumes,
            )
        self._files[job.job_id] = export
        while len(self._files) > _FILES_CACHED:
            self._files.popitem(last=False)
        return export

    # -- operations --------------------------------------------------------------------------
    def create(self, params: dict[str, Any], wire_request: dict[str, Any]) -> Job:
        """
        Create a job; the first matching rule decides its outcome.

        :param params: validated params.
        :param wire_request: the JSON body as received.
        """
        index = self._next_index
        self._next_index += 1
        job_id = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        job = Job(job_id, index, source_type_of(params), params, wire_request, time.time(), time.monotonic())
        job.volumes = {key: dict(values) for key, values in self.volumes.items()}
        for rule in self.rules:
            if rule.matches(job):
                self._apply(rule, job)
                break
        if self.pending_advances:
            advance = job.advance = self.pending_advances.pop(0)
            advance.job_id = job_id
        self._jobs[job_id] = job
        return job

    @staticmethod
    def _apply(rule: Rule, job: Job) -> None:
        """
        Give ``job`` the rule's outcome and use up one of the rule's matches.

        :param rule: the rule.
        :param job: the job.
        """
        job.outcome = rule.action
        job.failure_message = rule.message
        if rule.count is not None:
            rule.count -= 1

    def add_rule(self, rule: Rule) -> None:
        """
        Add a rule; one naming an existing unfinished job applies to it at once.

        :param rule: the rule.
        """
        if rule.job_id is not None and rule.job_id in self._jobs:
            job = self._jobs[rule.job_id]
            if self.status(job) not in TERMINAL and rule.matches(job):
                self._apply(rule, job)
                return
        self.rules.append(rule)

    def advance_after(self, advance: Advance) -> None:
        """
        Attach an :class:`Advance` rule to its unfinished job (replacing an earlier one), or queue it
        for the next job created when it names none.

        :param advance: the rule; its read count starts now.
        """
        if advance.job_id is None:
            self.pending_advances.append(advance)
            return
        job = self.get(advance.job_id)
        status = self.status(job)
        if status in TERMINAL:
            raise JobError("BadRequestException", f"Export job {job.job_id} is already {status}: nothing to advance.")
        job.advance = advance

    def count_read(self, job: Job, call: Literal["get", "list"]) -> None:
        """
        Count one read of ``job`` (call after its answer was built) and advance it if its rule is due.

        :param job: the job read.
        :param call: ``get`` (GetExportJob) or ``list`` (the job was in a ListExportJobs answer).
        """
        advance = job.advance
        if advance is None or advance.count not in (call, "any"):
            return
        advance.seen += 1
        if advance.seen >= advance.reads:
            self._pin(job, advance.to, advance.message)

    def clear_rules(self) -> None:
        """Remove every rule: outcome rules, queued :class:`Advance` rules and those attached to jobs."""
        self.rules.clear()
        self.pending_advances.clear()
        for job in self._jobs.values():
            job.advance = None

    def get(self, job_id: str) -> Job:
        """
        The job, or a ``NotFoundException`` :class:`JobError` (the API answers it as the emulator's
        ``not_found_style`` says).

        :param job_id: the JobId.
        """
        job = self._jobs.get(job_id)
        if job is None:
            raise JobError("NotFoundException", f"Export job {job_id} does not exist.")
        return job

    def cancel(self, job_id: str) -> Job:
        """
        Cancel an unfinished job; a finished one is a ``BadRequestException``, worded as real SES words it.

        :param job_id: the JobId.
        """
        job = self.get(job_id)
        status = self.status(job)
        if status in TERMINAL:
            raise JobError("BadRequestException", f"Cannot cancel an export job that has a <{status}> status.")
        self._pin(job, "CANCELLED")
        return job

    def force(self, job_id: str, status: Terminal, message: str | None = None) -> Job:
        """
        Pin a job to a terminal status now (whatever its state).

        :param job_id: the JobId.
        :param status: ``COMPLETED``, ``FAILED`` or ``CANCELLED``.
        :param message: the failure message (FAILED only).
        """
        job = self.get(job_id)
        self._pin(job, status, message)
        return job

    @staticmethod
    def _pin(job: Job, status: Terminal, message: str | None = None) -> None:
        """
        Give ``job`` the terminal ``status`` from now on; drops its :class:`Advance` rule.

        :param job: the job.
        :param status: the terminal status.
        :param message: the failure message (FAILED only).
        """
        job.forced_status, job.forced_wall, job.advance = status, time.time(), None
        if status == "FAILED":
            job.outcome = "fail"
            job.failure_message = message or DEFAULT_FAILURE_MESSAGE

    def delete(self, job_id: str) -> None:
        """
        Make a job disappear (an unknown JobId afterwards).

        :param job_id: the JobId.
        """
        self.get(job_id)
        del self._jobs[job_id]
        self._files.pop(job_id, None)

    def list_jobs(
        self,
        page_size: int | None = None,
        next_token: str | None = None,
        source_type: str | None = None,
        job_status: str | None = None,
    ) -> tuple[list[tuple[Job, str]], str | None]:
        """
        One page of jobs, newest first, with their statuses, and the next token.

        :param page_size: page size (default ``default_page_size``).
        :param next_token: token from the previous page.
        :param source_type: filter on ``ExportSourceType``.
        :param job_status: filter on ``JobStatus``.
        """
        size = page_size or self.default_page_size
        below = self._next_index
        if next_token:
            try:
                below = int(base64.urlsafe_b64decode(next_token.encode()).decode().removeprefix("before:"))
            except (ValueError, UnicodeDecodeError) as exc:
                raise JobError("BadRequestException", f"NextToken {next_token!r} is not valid.") from exc
        now = time.monotonic()
        page: list[tuple[Job, str]] = []
        more = False
        for job in sorted(self._jobs.values(), key=lambda j: j.index, reverse=True):
            if job.index >= below:
                continue
            status = self.status(job, now)
            if source_type and job.source_type != source_type:
                continue
            if job_status and status != job_status:
                continue
            if len(page) == size:
                more = True
                break
            page.append((job, status))
        token = base64.urlsafe_b64encode(f"before:{page[-1][0].index}".encode()).decode() if more else None
        return page, token

    def active_count(self, source_type: str | None = None) -> int:
        """
        How many jobs are unfinished now.

        :param source_type: count only jobs of this ``ExportSourceType`` (``None``: all).
        """
        now = time.monotonic()
        return sum(
            1
            for job in self._jobs.values()
            if (source_type is None or job.source_type == source_type) and self.status(job, now) not in TERMINAL
        )

    def all_jobs(self) -> list[Job]:
        """Every job, oldest first."""
        return sorted(self._jobs.values(), key=lambda j: j.index)

    def describe(self, job: Job) -> dict[str, Any]:
        """
        JSON-friendly description for the control API.

        :param job: the job.
        """
        status = self.status(job)
        return {
            "JobId": job.job_id,
            "index": job.index,
            "ExportSourceType": job.source_type,
            "JobStatus": status,
            "outcome": job.outcome,
            "advance": job.advance.to_dict() if job.advance is not None else None,
            "CreatedTimestamp": job.created_wall,
            "CompletedTimestamp": self.completed_wall(job, status),
        }
