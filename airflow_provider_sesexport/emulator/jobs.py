"""
The job store: creation, lazy time-based lifecycle, outcome rules, cancel / force / delete, listing.

Status is computed from the clock on every read (no background tasks): ``CREATED`` for
``created_seconds * time_scale`` after creation, then ``PROCESSING`` for
``processing_seconds * time_scale``, then the outcome (``COMPLETED``, or ``FAILED`` when a rule
says so; a ``hang`` rule keeps the job in ``PROCESSING`` forever). Cancel and the force-* controls
pin a terminal status. The store lives on the server's event loop: only that thread touches it.
"""

from __future__ import annotations

import base64
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_sesexport.emulator.exportfile import ExportFile, build_export_file, mix64

TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
OUTCOMES = ("complete", "fail", "hang")
DEFAULT_FAILURE_MESSAGE = "Export job failed: the emulator was told to fail this job"


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

    action: str = "fail"
    job_index: int | None = None
    job_id: str | None = None
    source_type: str | None = None
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
    export_file: ExportFile | None = field(default=None, repr=False)

    @property
    def data_format(self) -> str:
        """``CSV`` or ``JSON``."""
        return str(self.params["ExportDestination"]["DataFormat"])

    @property
    def file_name(self) -> str:
        """The export file's name."""
        return f"{self.job_id}.{'csv' if self.data_format == 'CSV' else 'json'}"


class JobStore:
    """
    All jobs of one emulator, with their rules.

    :param seed: seeds JobIds and file contents.
    :param created_seconds: nominal time in ``CREATED``.
    :param processing_seconds: nominal time in ``PROCESSING``.
    :param time_scale: multiplies both durations.
    :param row_multiplier: scales export files' row counts.
    """

    def __init__(
        self,
        seed: int = 0,
        created_seconds: float = 1.0,
        processing_seconds: float = 2.0,
        time_scale: float = 1.0,
        row_multiplier: int = 1,
    ) -> None:
        self.seed = seed
        self.created_seconds = created_seconds
        self.processing_seconds = processing_seconds
        self.time_scale = time_scale
        self.row_multiplier = row_multiplier
        self._rng = random.Random(seed)
        self._jobs: dict[str, Job] = {}
        self._next_index = 0
        self.rules: list[Rule] = []

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
            return "CREATED"
        if job.outcome == "hang" or elapsed < created + self.processing_seconds * self.time_scale:
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
        The job's (lazily built, cached) export file.

        :param job: the job.
        """
        if job.export_file is None:
            source = job.params["ExportDataSource"]
            data_source = source.get("MetricsDataSource") or source.get("MessageInsightsDataSource")
            job.export_file = build_export_file(
                job.source_type, data_source, job.data_format, mix64(self.seed, job.index), self.row_multiplier
            )
        return job.export_file

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
        source_type = "METRICS_DATA" if "MetricsDataSource" in params["ExportDataSource"] else "MESSAGE_INSIGHTS"
        job = Job(job_id, index, source_type, params, wire_request, time.time(), time.monotonic())
        for rule in self.rules:
            if rule.matches(job):
                self._apply(rule, job)
                break
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

    def get(self, job_id: str) -> Job:
        """
        The job, or ``NotFoundException``.

        :param job_id: the JobId.
        """
        job = self._jobs.get(job_id)
        if job is None:
            raise JobError("NotFoundException", f"Export job {job_id} does not exist.")
        return job

    def cancel(self, job_id: str) -> Job:
        """
        Cancel an unfinished job; a finished one is a ``BadRequestException``.

        :param job_id: the JobId.
        """
        job = self.get(job_id)
        status = self.status(job)
        if status in TERMINAL:
            raise JobError("BadRequestException", f"Export job {job_id} is already {status} and cannot be cancelled.")
        job.forced_status, job.forced_wall = "CANCELLED", time.time()
        return job

    def force(self, job_id: str, status: str, message: str | None = None) -> Job:
        """
        Pin a job to ``COMPLETED`` or ``FAILED`` now (whatever its state).

        :param job_id: the JobId.
        :param status: ``COMPLETED`` or ``FAILED``.
        :param message: the failure message (FAILED only).
        """
        job = self.get(job_id)
        job.forced_status, job.forced_wall = status, time.time()
        if status == "FAILED":
            job.outcome = "fail"
            job.failure_message = message or DEFAULT_FAILURE_MESSAGE
        return job

    def delete(self, job_id: str) -> None:
        """
        Make a job disappear (``NotFoundException`` afterwards).

        :param job_id: the JobId.
        """
        self.get(job_id)
        del self._jobs[job_id]

    def list_jobs(
        self,
        page_size: int | None = None,
        next_token: str | None = None,
        source_type: str | None = None,
        job_status: str | None = None,
    ) -> tuple[list[tuple[Job, str]], str | None]:
        """
        One page of jobs, newest first, with their statuses, and the next token.

        :param page_size: page size (default 100).
        :param next_token: token from the previous page.
        :param source_type: filter on ``ExportSourceType``.
        :param job_status: filter on ``JobStatus``.
        """
        size = page_size or 100
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

    def active_count(self) -> int:
        """How many jobs are unfinished now."""
        now = time.monotonic()
        return sum(1 for job in self._jobs.values() if self.status(job, now) not in TERMINAL)

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
            "CreatedTimestamp": job.created_wall,
            "CompletedTimestamp": self.completed_wall(job, status),
        }
