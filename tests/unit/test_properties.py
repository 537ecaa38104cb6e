"""
Property-based tests: any response valid under botocore's ``sesv2`` output shapes (GetExportJob,
ListExportJobs), generated from the model itself, with optional members left out, enum members replaced
by values SES may add one day, huge and negative counts, any time zone, and pre-signed URLs in every
string, must never break the summary builder, the outcome evaluation or the trigger's poll cycle, and
what they produce must be plain JSON without a full pre-signed URL.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from typing import Any

import botocore.session
import pytest
from hypothesis import HealthCheck, Phase, example, find, given, settings
from hypothesis import strategies as st

from airflow_provider_sesexport.exceptions import SesExportJobCancelledError, SesExportJobFailedError
from airflow_provider_sesexport.triggers import poller as poller_mod
from airflow_provider_sesexport.triggers.ses_export import EVENT_STATUSES, summary_from_event
from airflow_provider_sesexport.utils.export_job import observe_export_job
from airflow_provider_sesexport.utils.job_summary import seconds_since_creation, summarize_export_job
from tests.leakcheck import find_leaks, plant_url

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    database=None,  # nothing written into the repository
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

MODEL = botocore.session.get_session().get_service_model("sesv2")

#: URLs with planted secret values (recorded for the leak check, which find_leaks looks for).
SIGNED_URL = st.sampled_from(
    [plant_url(f"https://{host}.s3.amazonaws.com/exports/data.csv") for host in ("export-bucket", "b-2", "x.y-z")]
)
TIMEZONES: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.just(dt.timezone.utc),
    st.builds(dt.timezone, st.timedeltas(min_value=dt.timedelta(hours=-23), max_value=dt.timedelta(hours=23))),
)
TIMESTAMPS = st.datetimes(min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(2200, 1, 1), timezones=TIMEZONES)
#: What a future SES might send in an enum field (and what a broken proxy might).
FUTURE_ENUM = st.one_of(st.sampled_from(["ARCHIVED", "QUEUED", "EXPIRED", "", "completed"]), st.text(max_size=12))


#: Members that carry a pre-signed URL, and free text from AWS that might quote one.
URL_MEMBERS = frozenset({"S3Url", "FailedRecordsS3Url"})
TEXT_MEMBERS = frozenset({"ErrorMessage"})


def from_shape(shape: Any, depth: int = 0, name: str = "") -> st.SearchStrategy[Any]:
    """A strategy for values valid under a botocore output ``shape`` (enums widened to future values)."""
    kind = shape.type_name
    if depth > 6:
        return st.none()
    if kind == "structure":
        required = set(shape.required_members)
        members = {name: from_shape(member, depth + 1, name) for name, member in shape.members.items()}
        return st.fixed_dictionaries(
            {name: s for name, s in members.items() if name in required},
            optional={name: s for name, s in members.items() if name not in required},
        )
    if kind == "list":
        return st.lists(from_shape(shape.member, depth + 1), max_size=3)
    if kind == "map":
        return st.dictionaries(from_shape(shape.key, depth + 1), from_shape(shape.value, depth + 1), max_size=3)
    if kind == "string":
        if shape.enum:
            return st.one_of(st.sampled_from(shape.enum), FUTURE_ENUM)
        if name in URL_MEMBERS:
            return st.one_of(SIGNED_URL, st.just("s3://bucket/key.csv"), st.text(max_size=30))
        if name in TEXT_MEMBERS:
            return st.one_of(st.text(max_size=30), st.builds("Export failed, see {} for details".format, SIGNED_URL))
        return st.text(max_size=30)
    if kind in ("integer", "long"):
        return st.one_of(st.integers(min_value=0, max_value=10_000), st.integers(min_value=-(2**70), max_value=2**70))
    if kind == "boolean":
        return st.booleans()
    if kind == "timestamp":
        return TIMESTAMPS
    if kind in ("double", "float"):
        return st.floats(allow_nan=True, allow_infinity=True)
    if kind == "blob":
        return st.binary(max_size=16)
    raise NotImplementedError(kind)


def output_of(operation: str) -> st.SearchStrategy[dict[str, Any]]:
    return from_shape(MODEL.operation_model(operation).output_shape)


GET_EXPORT_JOB = output_of("GetExportJob")
LIST_EXPORT_JOBS = output_of("ListExportJobs")


def assert_plain_json(value: Any) -> str:
    """``value`` survives a strict JSON round trip unchanged and carries no full pre-signed URL."""
    text = json.dumps(value, allow_nan=False)
    assert json.loads(text) == value
    assert not find_leaks(text, "value"), text
    return text


#: Searching only: shrinking the found example would cost seconds and prove nothing more.
FIND_SETTINGS = settings(max_examples=5000, database=None, phases=[Phase.generate])


def test_generator_covers_the_interesting_cases() -> None:
    """The strategies are not vacuous: they reach every status, unknown ones, URLs, huge counts, missing members."""
    cases: dict[str, Any] = {
        **{status: (lambda j, s=status: j.get("JobStatus") == s) for status in ("COMPLETED", "FAILED", "CANCELLED")},
        "unknown status": lambda j: (
            isinstance(j.get("JobStatus"), str)
            and j["JobStatus"] not in {"COMPLETED", "FAILED", "CANCELLED", "CREATED", "PROCESSING"}
        ),
        "no status": lambda j: "JobStatus" not in j,
        "signed url": lambda j: "X-Amz-Signature" in json.dumps(j, default=str),
        "huge count": lambda j: any(
            isinstance(c, int) and abs(c) > 2**53 for c in (j.get("Statistics") or {}).values()
        ),
    }
    for name, predicate in cases.items():
        found = find(GET_EXPORT_JOB, predicate, settings=FIND_SETTINGS)
        assert predicate(found), name


@SETTINGS
@given(job=GET_EXPORT_JOB, retrieved_at=st.one_of(st.none(), TIMESTAMPS))
def test_summary_never_raises_and_is_plain_json_without_urls(job: dict[str, Any], retrieved_at: Any) -> None:
    if retrieved_at is not None and retrieved_at.tzinfo is None:
        retrieved_at = retrieved_at.replace(tzinfo=dt.timezone.utc)
    summary = summarize_export_job(job, retrieved_at)
    assert_plain_json(summary)
    assert summary["job_status"] == (job.get("JobStatus") if isinstance(job.get("JobStatus"), str) else None)
    for key, count in summary["statistics"].items():
        assert count is None or isinstance(count, int)
        assert count == (job.get("Statistics") or {}).get(key)
    seconds = seconds_since_creation(job, retrieved_at)
    assert seconds is None or isinstance(seconds, float)


ENDED_BADLY = {"FAILED": SesExportJobFailedError, "CANCELLED": SesExportJobCancelledError}


@SETTINGS
@given(job=GET_EXPORT_JOB)
@example(job={"JobId": "X-AMZ-SIGNATURE"})  # the name of a URL parameter is no leak (once a false positive)
@example(job={"JobId": "X-Amz-Credential", "JobStatus": "FAILED"})
def test_evaluate_raises_only_the_typed_errors_for_failed_and_cancelled(job: dict[str, Any]) -> None:
    status = job.get("JobStatus")
    if status in ENDED_BADLY:
        with pytest.raises(ENDED_BADLY[status]) as err:
            observe_export_job("job-1", job, logger=logging.getLogger("test.properties"))
        assert not find_leaks(str(err.value), "exception")
        return
    outcome = observe_export_job("job-1", job, logger=logging.getLogger("test.properties"))
    summary = outcome.summary
    assert outcome.succeeded is (status == "COMPLETED")
    assert_plain_json(summary)
    assert summary["job_id"]  # the caller's id fills in a missing JobId


@SETTINGS
@given(
    job=GET_EXPORT_JOB,
    status=st.sampled_from(sorted(ENDED_BADLY)),
    message=st.builds("Export failed, see {} for details".format, SIGNED_URL),
    failed_records=st.one_of(st.none(), SIGNED_URL),
)
def test_failure_messages_quoting_a_presigned_url_are_redacted(
    job: dict[str, Any], status: str, message: str, failed_records: str | None
) -> None:
    """AWS's ErrorMessage goes into the typed error, the summary and the trigger event: never a whole URL."""
    info = {"ErrorMessage": message, **({"FailedRecordsS3Url": failed_records} if failed_records else {})}
    job = {**job, "JobStatus": status, "FailureInfo": info}
    with pytest.raises(ENDED_BADLY[status]) as err:
        observe_export_job("job-1", job, logger=logging.getLogger("test.properties"))
    assert not find_leaks(str(err.value), "exception"), str(err.value)
    assert "Export failed, see https://" in str(err.value)  # the message itself is kept
    assert_plain_json(summarize_export_job(job))
    event = poller_mod.job_event("job-1", job)
    assert event is not None
    assert_plain_json(event)
    with pytest.raises(ENDED_BADLY[status]) as from_event:
        summary_from_event(event, TimeoutError)
    assert not find_leaks(str(from_event.value), "exception")


@SETTINGS
@given(job=GET_EXPORT_JOB)
def test_trigger_event_for_any_response(job: dict[str, Any]) -> None:
    """The trigger's per-job decision: None while running (or unknown), else a plain-JSON event."""
    event = poller_mod.job_event("job-1", job)
    status = job.get("JobStatus")
    if status not in ("COMPLETED", "FAILED", "CANCELLED"):
        assert event is None
        return
    assert event is not None
    assert event["status"] in EVENT_STATUSES
    assert_plain_json(event)
    if status == "COMPLETED":
        assert summary_from_event(event, TimeoutError)["job_status"] == "COMPLETED"
    else:
        expected = SesExportJobFailedError if status == "FAILED" else SesExportJobCancelledError
        with pytest.raises(expected):
            summary_from_event(event, TimeoutError)


class FakeClient:
    """An aiobotocore client stand-in answering with generated, model-valid responses."""

    def __init__(self, pages: list[dict[str, Any]], jobs: dict[str, dict[str, Any]]) -> None:
        self.pages = pages
        self.jobs = jobs
        self.page = 0

    async def list_export_jobs(self, **request: Any) -> dict[str, Any]:
        page = dict(self.pages[self.page % len(self.pages)])
        self.page += 1
        # the last page of each listing ends it (a real NextToken chain is finite)
        if self.page % len(self.pages) == 0:
            page.pop("NextToken", None)
        else:
            page["NextToken"] = page.get("NextToken") or f"token-{self.page}"
        return page

    async def get_export_job(self, JobId: str) -> dict[str, Any]:
        return self.jobs[JobId]


@SETTINGS
@given(
    pages=st.lists(LIST_EXPORT_JOBS, min_size=1, max_size=3),
    waited=st.dictionaries(st.from_regex(r"job-[0-9]{1,3}", fullmatch=True), GET_EXPORT_JOB, min_size=1, max_size=4),
)
def test_trigger_cycle_never_raises_and_events_are_plain_json(
    pages: list[dict[str, Any]], waited: dict[str, dict[str, Any]]
) -> None:
    async def one_cycle() -> list[Any]:
        poller = poller_mod.ExportJobPoller(poller_mod.ClientSpec.of("aws_default", None, None, None))
        poller.client = FakeClient(pages, waited)
        loop = asyncio.get_running_loop()
        futures = {job_id: loop.create_future() for job_id in waited}
        for job_id, future in futures.items():
            poller.waiters[job_id] = {future: 30.0}  # what subscribe(job_id, 30.0) stores
        await poller.run_cycle()
        return [(job_id, future.result() if future.done() else None) for job_id, future in futures.items()]

    in_flight = {
        job["JobId"] for page in pages for job in page.get("ExportJobs", ()) if isinstance(job.get("JobId"), str)
    }
    for job_id, event in asyncio.run(one_cycle()):
        if event is None:
            continue
        assert event["status"] in EVENT_STATUSES and event["job_id"] == job_id
        assert job_id not in in_flight, "a job listed as running was resolved"
        assert_plain_json(event)
