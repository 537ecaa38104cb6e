"""Unit tests for SesCreateExportJobOperator, the request validation and the hook's sync waiter (Stubber)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from unittest import mock

import pendulum
import pytest
from botocore.stub import Stubber

from airflow_provider_sesexport.exceptions import (
    SesExportJobCancelledError,
    SesExportJobError,
    SesExportJobFailedError,
    SesExportJobNotFoundError,
)
from airflow_provider_sesexport.hooks.ses_export import SesExportJobHook
from airflow_provider_sesexport.operators import _create_export
from airflow_provider_sesexport.operators.ses_export import SesCreateExportJobOperator
from airflow_provider_sesexport.triggers.ses_export import SesExportJobTrigger
from airflow_provider_sesexport.utils.validation import SesExportInputError, build_create_export_job_request
from tests.unit.responses import PRESIGNED, job_response

try:  # Airflow 3.3+
    from airflow.sdk import ResumableJobMixin as AirflowResumableJobMixin
except ImportError:
    AirflowResumableJobMixin = None

#: Whether this Airflow keeps task state across tries (then the operator resumes through ResumableJobMixin).
AIRFLOW_RESUMES_JOBS = AirflowResumableJobMixin is not None

START = dt.datetime(2026, 10, 31, tzinfo=dt.timezone.utc)
END = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)


def metrics_source(**overrides: Any) -> dict[str, Any]:
    source: dict[str, Any] = {
        "Dimensions": {"EMAIL_IDENTITY": ["example.com"]},
        "Namespace": "VDM",
        "Metrics": [{"Name": "SEND", "Aggregation": "VOLUME"}],
        "StartDate": START,
        "EndDate": END,
    }
    source.update(overrides)
    return {"MetricsDataSource": source}


EXPECTED_CREATE = {"ExportDataSource": metrics_source(), "ExportDestination": {"DataFormat": "CSV"}}


class FakeTI:
    def __init__(self, try_number: int = 1, start_date: dt.datetime | None = None) -> None:
        self.try_number = try_number
        self.start_date = start_date
        self.pushed: dict[str, Any] = {}
        self.stats_tags: dict[str, str] = {}  # read by ResumableJobMixin

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


class FakeStore:
    def __init__(self, values: dict[str, Any] | None = None) -> None:
        self.values = dict(values or {})

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.values[key] = value


@pytest.fixture(autouse=True)
def no_pacing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_create_export, "_last_create", 0.0)
    monkeypatch.setattr(_create_export, "CREATE_MIN_SPACING", 0.0)


def make_op(hook: SesExportJobHook, **kwargs: Any) -> SesCreateExportJobOperator:
    kwargs.setdefault("export_data_source", metrics_source())
    kwargs.setdefault("waiter_delay", 1)
    kwargs.setdefault("deferrable", False)
    op = SesCreateExportJobOperator(task_id="create", **kwargs)
    op.__dict__["hook"] = hook
    return op


# -- validation ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value",
    [
        START,
        dt.date(2026, 10, 31),
        "2026-10-31T00:00:00+00:00",
        "2026-10-31T00:00:00Z",
        "2026-10-31",
        "2026-10-31T02:00:00+02:00",
        pendulum.datetime(2026, 10, 31, tz="UTC"),
    ],
)
def test_start_date_forms_are_accepted(value: Any) -> None:
    request = build_create_export_job_request(metrics_source(StartDate=value), "CSV")
    assert request["ExportDataSource"]["MetricsDataSource"]["StartDate"] == START
    assert request["ExportDataSource"]["MetricsDataSource"]["StartDate"].tzinfo is not None


@pytest.mark.parametrize(
    ("source", "fmt", "named"),
    [
        (metrics_source(StartDate="last tuesday"), "CSV", "export_data_source.MetricsDataSource.StartDate"),
        (metrics_source(StartDate=START.replace(tzinfo=None)), "CSV", "export_data_source.MetricsDataSource.StartDate"),
        (metrics_source(EndDate="2026-11-01T00:00:00"), "CSV", "export_data_source.MetricsDataSource.EndDate"),
        (metrics_source(EndDate=START), "CSV", "export_data_source.MetricsDataSource.EndDate"),
        (metrics_source(Namespace="NOPE"), "CSV", "export_data_source.MetricsDataSource.Namespace"),
        (
            metrics_source(Metrics=[{"Name": "SENT", "Aggregation": "VOLUME"}]),
            "CSV",
            "export_data_source.MetricsDataSource.Metrics[0].Name",
        ),
        (metrics_source(Metrics=[{"Name": 3, "Aggregation": "VOLUME"}]), "CSV", "Metrics[0].Name"),
        (metrics_source(Dimensions={"COUNTRY": ["x"]}), "CSV", "export_data_source.MetricsDataSource.Dimensions"),
        ({"MetricsDataSource": {"Namespace": "VDM", "StartDate": START, "EndDate": END}}, "CSV", "Dimensions"),
        ({}, "CSV", "export_data_source"),
        ({**metrics_source(), "MessageInsightsDataSource": {}}, "CSV", "exactly one of"),
        ({"MetricDataSource": {}}, "CSV", "export_data_source.MetricDataSource"),
        ("{'MetricsDataSource': {}}", "CSV", "export_data_source"),
        (metrics_source(), "XML", "data_format"),
        (
            {"MessageInsightsDataSource": {"StartDate": START, "EndDate": END, "MaxResults": 20000}},
            "CSV",
            "MaxResults",
        ),
    ],
)
def test_bad_requests_name_the_field(source: Any, fmt: str, named: str) -> None:
    with pytest.raises(SesExportInputError, match=named.replace("[", r"\[").replace("]", r"\]")):
        build_create_export_job_request(source, fmt)


def test_bad_input_fails_before_any_request(hook: SesExportJobHook, stubber: Stubber) -> None:
    op = make_op(hook, export_data_source=metrics_source(StartDate="None"))
    with pytest.raises(SesExportInputError, match="StartDate"):
        op.execute({"ti": FakeTI()})  # the stubber has no responses: any call would fail differently


@pytest.mark.parametrize(("arg", "value"), [("waiter_delay", -1), ("waiter_max_attempts", 0)])
def test_bad_waiter_arguments(hook: SesExportJobHook, stubber: Stubber, arg: str, value: Any) -> None:
    with pytest.raises(SesExportInputError, match=arg):
        make_op(hook, **{arg: value}).execute({"ti": FakeTI()})


# -- execute ----------------------------------------------------------------------------------------------
def test_defaults_and_template_fields() -> None:
    op = SesCreateExportJobOperator(task_id="c", export_data_source=metrics_source())
    assert (op.data_format, op.wait_for_completion, op.waiter_delay) == ("CSV", True, 30)
    assert op.deferrable is False
    assert {"export_data_source", "data_format", "aws_conn_id", "region_name"} <= set(op.template_fields)


def test_deferrable_default_follows_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "True")
    assert SesCreateExportJobOperator(task_id="c", export_data_source=metrics_source()).deferrable is True


def test_no_wait_returns_job_id(hook: SesExportJobHook, stubber: Stubber) -> None:
    stubber.add_response("create_export_job", {"JobId": "job-1"}, EXPECTED_CREATE)
    ti = FakeTI()
    assert make_op(hook, wait_for_completion=False).execute({"ti": ti}) == "job-1"
    assert ti.pushed == {}


def test_string_dates_are_sent_as_datetimes(hook: SesExportJobHook, stubber: Stubber) -> None:
    stubber.add_response("create_export_job", {"JobId": "job-1"}, EXPECTED_CREATE)
    source = metrics_source(StartDate="2026-10-31T00:00:00+00:00", EndDate="2026-11-01T00:00:00Z")
    assert make_op(hook, export_data_source=source, wait_for_completion=False).execute({"ti": FakeTI()}) == "job-1"


def _midnight_utc(days_from_today: int) -> dt.datetime:
    today = dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return today + dt.timedelta(days=days_from_today)


@pytest.mark.parametrize(
    "source",
    [
        metrics_source(StartDate=_midnight_utc(1), EndDate=_midnight_utc(2)),
        {"MessageInsightsDataSource": {"StartDate": _midnight_utc(3), "EndDate": _midnight_utc(4)}},
    ],
    ids=["metrics", "message_insights"],
)
def test_a_start_date_in_the_future_is_sent_with_a_warning(
    hook: SesExportJobHook, stubber: Stubber, caplog: pytest.LogCaptureFixture, source: dict[str, Any]
) -> None:
    (name,) = source
    start = source[name]["StartDate"]
    stubber.add_response(
        "create_export_job",
        {"JobId": "job-1"},
        {"ExportDataSource": source, "ExportDestination": {"DataFormat": "CSV"}},
    )
    with caplog.at_level("WARNING", logger="airflow_provider_sesexport.utils.validation"):
        assert make_op(hook, export_data_source=source, wait_for_completion=False).execute({"ti": FakeTI()}) == "job-1"
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and "StartDate" in r.getMessage()]
    assert len(warnings) == 1
    assert f"export_data_source.{name}.StartDate={start.isoformat()} is in the future" in warnings[0]


def test_a_start_date_in_the_past_gives_no_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING"):
        build_create_export_job_request(metrics_source(StartDate=_midnight_utc(-1), EndDate=_midnight_utc(0)), "CSV")
        build_create_export_job_request(metrics_source(), "CSV")
    assert "in the future" not in caplog.text


def test_wait_pushes_summary_and_returns_job_id(hook: SesExportJobHook, stubber: Stubber) -> None:
    stubber.add_response("create_export_job", {"JobId": "job-1"}, EXPECTED_CREATE)
    stubber.add_response("get_export_job", job_response("PROCESSING"), {"JobId": "job-1"})
    stubber.add_response("get_export_job", job_response("COMPLETED"), {"JobId": "job-1"})  # one read per poll
    ti = FakeTI()
    op = make_op(hook)
    assert op.execute({"ti": ti}) == "job-1"
    summary = ti.pushed["export_job"]
    assert summary["job_status"] == "COMPLETED"
    assert summary["statistics"] == {"ProcessedRecordsCount": 12, "ExportedRecordsCount": 10}
    assert PRESIGNED not in str(summary)
    assert op.job_id is None  # finished: on_kill has nothing to cancel


@pytest.mark.parametrize(
    ("status", "error"), [("FAILED", SesExportJobFailedError), ("CANCELLED", SesExportJobCancelledError)]
)
def test_wait_raises_typed_errors(hook: SesExportJobHook, stubber: Stubber, status: str, error: type) -> None:
    stubber.add_response("create_export_job", {"JobId": "job-1"}, EXPECTED_CREATE)
    stubber.add_response("get_export_job", job_response(status), {"JobId": "job-1"})
    with pytest.raises(error):
        make_op(hook).execute({"ti": FakeTI()})


def test_wait_gives_up_after_max_attempts(hook: SesExportJobHook, stubber: Stubber) -> None:
    stubber.add_response("create_export_job", {"JobId": "job-1"}, EXPECTED_CREATE)
    for _ in range(3):
        stubber.add_response("get_export_job", job_response("PROCESSING"), {"JobId": "job-1"})
    with pytest.raises(SesExportJobError, match="did not finish after 3 polls"):
        make_op(hook, waiter_max_attempts=3).execute({"ti": FakeTI()})


def test_deferrable_defers_with_everything_the_trigger_needs(hook: SesExportJobHook, stubber: Stubber) -> None:
    try:
        from airflow.sdk.exceptions import TaskDeferred
    except ImportError:
        from airflow.exceptions import TaskDeferred  # type: ignore[no-redef]

    stubber.add_response("create_export_job", {"JobId": "job-1"}, EXPECTED_CREATE)
    op = make_op(
        hook,
        deferrable=True,
        waiter_delay=10,
        waiter_max_attempts=6,
        aws_conn_id="ses",
        region_name="eu-west-1",
        verify=False,
        botocore_config={"read_timeout": 7},
    )
    with pytest.raises(TaskDeferred) as deferred:
        op.execute({"ti": FakeTI()})
    trigger = deferred.value.trigger
    assert isinstance(trigger, SesExportJobTrigger)
    _, kwargs = trigger.serialize()
    assert kwargs["job_id"] == "job-1" and kwargs["poll_interval"] == 10.0
    assert (kwargs["aws_conn_id"], kwargs["region_name"], kwargs["verify"]) == ("ses", "eu-west-1", False)
    assert kwargs["botocore_config"] == {"read_timeout": 7}
    left = dt.datetime.fromisoformat(kwargs["timeout_at"]) - dt.datetime.now(dt.timezone.utc)
    assert dt.timedelta(seconds=50) < left <= dt.timedelta(seconds=60)
    assert deferred.value.method_name == "execute_complete"


def test_execute_complete_pushes_summary() -> None:
    op = SesCreateExportJobOperator(task_id="c", export_data_source=metrics_source())
    ti = FakeTI()
    summary = {"job_id": "job-1", "job_status": "COMPLETED"}
    assert op.execute_complete({"ti": ti}, {"status": "success", "job_id": "job-1", "summary": summary}) == "job-1"
    assert ti.pushed["export_job"] == summary


def test_execute_complete_failed_event_raises() -> None:
    op = SesCreateExportJobOperator(task_id="c", export_data_source=metrics_source())
    with pytest.raises(SesExportJobFailedError, match="no data"):
        op.execute_complete(
            {"ti": FakeTI()}, {"status": "failed", "job_id": "j", "job_status": "FAILED", "message": "no data"}
        )
    with pytest.raises(SesExportJobError, match="did not finish"):
        op.execute_complete({"ti": FakeTI()}, {"status": "timeout", "job_id": "j", "message": "did not finish"})


# -- idempotent retries -------------------------------------------------------------------------------
# On Airflow 3.3+ a retry finds the earlier try's job in task_state_store (ResumableJobMixin); older Airflow
# has no task_state_store, so a store in the context is never read there and a retry matches ListExportJobs.
def test_is_airflows_resumable_job_operator_where_it_exists() -> None:
    op = SesCreateExportJobOperator(task_id="c", export_data_source=metrics_source())
    assert op.durable is True
    assert SesCreateExportJobOperator(task_id="c", export_data_source=metrics_source(), durable=False).durable is False
    assert op.external_id_key == "ses_export_job_id"
    if AIRFLOW_RESUMES_JOBS:
        assert isinstance(op, AirflowResumableJobMixin)
    else:  # not common-compat's stand-in, which would start a new export on every try
        assert not hasattr(op, "execute_resumable")


def test_durable_comes_from_default_args() -> None:
    try:
        from airflow.sdk import DAG
    except ImportError:
        from airflow import DAG  # type: ignore[assignment,no-redef]

    with DAG("d", schedule=None, start_date=START, default_args={"durable": False}):
        op = SesCreateExportJobOperator(task_id="c", export_data_source=metrics_source())
    assert op.durable is False


def test_state_store_records_the_job(hook: SesExportJobHook, stubber: Stubber) -> None:
    stubber.add_response("create_export_job", {"JobId": "job-1"}, EXPECTED_CREATE)
    store = FakeStore()
    make_op(hook, wait_for_completion=False).execute({"ti": FakeTI(), "task_state_store": store})
    assert store.values == ({"ses_export_job_id": "job-1"} if AIRFLOW_RESUMES_JOBS else {})


def expect_new_job_without_resumable_jobs(stubber: Stubber) -> bool:
    """Below Airflow 3.3 the store is not read: a retry without a DAG run start to match from creates a new job."""
    if AIRFLOW_RESUMES_JOBS:
        return False
    stubber.add_response("create_export_job", {"JobId": "new"}, EXPECTED_CREATE)
    return True


@pytest.mark.parametrize("status", ["CREATED", "PROCESSING", "COMPLETED"])
def test_retry_reuses_stored_job(hook: SesExportJobHook, stubber: Stubber, status: str) -> None:
    store = FakeStore({"ses_export_job_id": "old"})
    context = {"ti": FakeTI(2), "task_state_store": store}
    if expect_new_job_without_resumable_jobs(stubber):
        assert make_op(hook, wait_for_completion=False).execute(context) == "new"
        return
    stubber.add_response("get_export_job", job_response(status, job_id="old"), {"JobId": "old"})
    assert make_op(hook, wait_for_completion=False).execute(context) == "old"


@pytest.mark.parametrize("status", ["FAILED", "CANCELLED"])
def test_retry_replaces_failed_stored_job(hook: SesExportJobHook, stubber: Stubber, status: str) -> None:
    store = FakeStore({"ses_export_job_id": "old"})
    if not expect_new_job_without_resumable_jobs(stubber):
        stubber.add_response("get_export_job", job_response(status, job_id="old"), {"JobId": "old"})
        stubber.add_response("create_export_job", {"JobId": "new"}, EXPECTED_CREATE)
    assert make_op(hook, wait_for_completion=False).execute({"ti": FakeTI(2), "task_state_store": store}) == "new"
    assert store.values["ses_export_job_id"] == ("new" if AIRFLOW_RESUMES_JOBS else "old")


def test_retry_replaces_vanished_stored_job(hook: SesExportJobHook, stubber: Stubber) -> None:
    if not expect_new_job_without_resumable_jobs(stubber):
        stubber.add_client_error("get_export_job", "NotFoundException", "gone", 404, expected_params={"JobId": "old"})
        stubber.add_response("create_export_job", {"JobId": "new"}, EXPECTED_CREATE)
    store = FakeStore({"ses_export_job_id": "old"})
    assert make_op(hook, wait_for_completion=False).execute({"ti": FakeTI(2), "task_state_store": store}) == "new"


def test_retry_of_a_completed_job_pushes_its_summary_without_a_new_export(
    hook: SesExportJobHook, stubber: Stubber
) -> None:
    """ResumableJobMixin skips the wait for a job an earlier try saw COMPLETED: the summary still reaches XCom."""
    store = FakeStore({"ses_export_job_id": "old"})
    ti = FakeTI(2)
    summary = {"job_id": "old", "job_status": "COMPLETED"}
    if expect_new_job_without_resumable_jobs(stubber):
        expected = "new"
    else:
        stubber.add_response("get_export_job", job_response("COMPLETED", job_id="old"), {"JobId": "old"})
        expected = "old"
    with mock.patch.object(hook, "wait_for_export_job", return_value=summary) as wait:
        assert make_op(hook).execute({"ti": ti, "task_state_store": store}) == expected
    wait.assert_called_once_with(expected, 1, 120)
    assert ti.pushed == {"export_job": summary}


def test_deferrable_retry_defers_on_the_stored_job(hook: SesExportJobHook, stubber: Stubber) -> None:
    try:
        from airflow.sdk.exceptions import TaskDeferred
    except ImportError:
        from airflow.exceptions import TaskDeferred  # type: ignore[no-redef]

    store = FakeStore({"ses_export_job_id": "old"})
    if expect_new_job_without_resumable_jobs(stubber):
        expected = "new"
    else:
        stubber.add_response("get_export_job", job_response("PROCESSING", job_id="old"), {"JobId": "old"})
        expected = "old"
    with pytest.raises(TaskDeferred) as deferred:
        make_op(hook, deferrable=True).execute({"ti": FakeTI(2), "task_state_store": store})
    _, kwargs = deferred.value.trigger.serialize()
    assert kwargs["job_id"] == expected
    assert kwargs["cancel_on_kill"] is True  # the create operator's trigger cancels its job when the task is killed


def test_not_durable_starts_a_new_export_on_every_try(hook: SesExportJobHook, stubber: Stubber) -> None:
    """durable=False: neither the store (3.3+) nor ListExportJobs (older Airflow) is consulted."""
    stubber.add_response("create_export_job", {"JobId": "new"}, EXPECTED_CREATE)
    store = FakeStore({"ses_export_job_id": "old"})
    context = {"ti": FakeTI(2), "task_state_store": store, "dag_run": mock.Mock(start_date=START)}
    assert make_op(hook, wait_for_completion=False, durable=False).execute(context) == "new"
    assert store.values == {"ses_export_job_id": "old"}


def listed(job_id: str, status: str, created: dt.datetime) -> dict[str, Any]:
    return {"JobId": job_id, "ExportSourceType": "METRICS_DATA", "JobStatus": status, "CreatedTimestamp": created}


def test_retry_without_store_matches_data_source(hook: SesExportJobHook, stubber: Stubber) -> None:
    run_start = dt.datetime(2026, 11, 1, 6, 0, tzinfo=dt.timezone.utc)
    later = run_start + dt.timedelta(minutes=1)
    other = job_response("PROCESSING", job_id="other")
    other["ExportDataSource"]["MetricsDataSource"]["Dimensions"] = {"ISP": ["gmail"]}
    list_params = {"ExportSourceType": "METRICS_DATA", "PageSize": 100}
    stubber.add_response(
        "list_export_jobs",
        {
            "ExportJobs": [
                listed("other", "PROCESSING", later),
                listed("failed", "FAILED", later),
                listed("mine", "PROCESSING", later),
            ]
        },
        list_params,
    )
    stubber.add_response("get_export_job", other, {"JobId": "other"})
    stubber.add_response("get_export_job", job_response("PROCESSING", job_id="mine"), {"JobId": "mine"})
    context = {"ti": FakeTI(2), "dag_run": mock.Mock(start_date=run_start)}
    assert make_op(hook, wait_for_completion=False).execute(context) == "mine"


def test_retry_without_store_ignores_jobs_from_before_the_run(hook: SesExportJobHook, stubber: Stubber) -> None:
    run_start = dt.datetime(2026, 11, 1, 6, 0, tzinfo=dt.timezone.utc)
    stubber.add_response(
        "list_export_jobs",
        {"ExportJobs": [listed("yesterday", "COMPLETED", run_start - dt.timedelta(days=1))]},
        {"ExportSourceType": "METRICS_DATA", "PageSize": 100},
    )
    stubber.add_response("create_export_job", {"JobId": "new"}, EXPECTED_CREATE)
    context = {"ti": FakeTI(2), "dag_run": mock.Mock(start_date=run_start)}
    assert make_op(hook, wait_for_completion=False).execute(context) == "new"


def test_first_try_does_not_search(hook: SesExportJobHook, stubber: Stubber) -> None:
    stubber.add_response("create_export_job", {"JobId": "new"}, EXPECTED_CREATE)
    context = {"ti": FakeTI(1), "dag_run": mock.Mock(start_date=START)}
    assert make_op(hook, wait_for_completion=False).execute(context) == "new"


# -- throttling and on_kill --------------------------------------------------------------------------------
def test_create_throttling_is_retried(hook: SesExportJobHook, stubber: Stubber) -> None:
    stubber.add_client_error("create_export_job", "TooManyRequestsException", "Rate exceeded", 429)
    stubber.add_client_error("create_export_job", "TooManyRequestsException", "Rate exceeded", 429)
    stubber.add_response("create_export_job", {"JobId": "job-1"}, EXPECTED_CREATE)
    sleeps: list[float] = []
    request = build_create_export_job_request(metrics_source(), "CSV")
    assert _create_export.create_paced(hook, request, sleep=sleeps.append) == "job-1"
    assert len(sleeps) == 2 and 1.0 <= sleeps[0] <= 2.0 and 2.0 <= sleeps[1] <= 4.0


def test_create_spacing_is_one_second(
    hook: SesExportJobHook, stubber: Stubber, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_create_export, "CREATE_MIN_SPACING", 1.0)
    stubber.add_response("create_export_job", {"JobId": "a"}, EXPECTED_CREATE)
    stubber.add_response("create_export_job", {"JobId": "b"}, EXPECTED_CREATE)
    sleeps: list[float] = []
    request = build_create_export_job_request(metrics_source(), "CSV")
    _create_export.create_paced(hook, request, sleep=sleeps.append)
    _create_export.create_paced(hook, request, sleep=sleeps.append)
    assert len(sleeps) == 1 and 0.5 < sleeps[0] <= 1.0


def test_create_other_errors_are_not_retried(hook: SesExportJobHook, stubber: Stubber) -> None:
    stubber.add_client_error("create_export_job", "LimitExceededException", "Too many jobs", 400)
    request = build_create_export_job_request(metrics_source(), "CSV")
    with pytest.raises(Exception, match="Too many jobs"):
        _create_export.create_paced(hook, request, sleep=lambda s: None)


@pytest.mark.parametrize(("status", "cancels"), [("PROCESSING", True), ("CREATED", True), ("COMPLETED", False)])
def test_on_kill_cancels_running_job(hook: SesExportJobHook, stubber: Stubber, status: str, cancels: bool) -> None:
    op = make_op(hook)
    op.job_id = "job-1"
    stubber.add_response("get_export_job", job_response(status), {"JobId": "job-1"})
    if cancels:
        stubber.add_response("cancel_export_job", {}, {"JobId": "job-1"})
    op.on_kill()


def test_on_kill_without_job_does_nothing(hook: SesExportJobHook, stubber: Stubber) -> None:
    make_op(hook).on_kill()


# -- the hook's sync waiter ---------------------------------------------------------------------------
def test_wait_for_export_job_logs_one_line_per_poll(hook: SesExportJobHook, stubber: Stubber) -> None:
    for status in ("CREATED", "PROCESSING", "COMPLETED"):  # one read per poll
        stubber.add_response("get_export_job", job_response(status), {"JobId": "job-1"})
    lines: list[str] = []
    with mock.patch.object(hook.log, "info", side_effect=lambda msg, *a: lines.append(msg % a)):
        summary = hook.wait_for_export_job("job-1", waiter_delay=1, waiter_max_attempts=5)
    assert summary["job_status"] == "COMPLETED"
    polls = [line for line in lines if line.startswith("SES export job job-1: status")]
    assert [p.split("status ")[1].split(",")[0] for p in polls] == ["CREATED", "PROCESSING", "COMPLETED"]
    assert not any("X-Amz-Signature" in line for line in lines)


def test_wait_for_export_job_not_found(hook: SesExportJobHook, stubber: Stubber) -> None:
    stubber.add_client_error("get_export_job", "NotFoundException", "no such job", 404, expected_params={"JobId": "x"})
    with pytest.raises(SesExportJobNotFoundError):
        hook.wait_for_export_job("x", waiter_delay=1, waiter_max_attempts=3)


def test_wait_for_export_job_throttled_poll_is_not_done(hook: SesExportJobHook, stubber: Stubber) -> None:
    stubber.add_client_error("get_export_job", "TooManyRequestsException", "slow down", 429)
    stubber.add_response("get_export_job", job_response("COMPLETED"), {"JobId": "job-1"})  # one read per poll
    assert hook.wait_for_export_job("job-1", waiter_delay=1, waiter_max_attempts=3)["job_status"] == "COMPLETED"


def test_waiter_is_shipped_and_found(hook: SesExportJobHook) -> None:
    waiter = hook.get_waiter("export_job_complete")
    acceptors = {(a.expected, a.state) for a in waiter.config.acceptors}
    assert {("COMPLETED", "success"), ("FAILED", "failure"), ("CANCELLED", "failure")} <= acceptors


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"waiter_delay": float("nan")}, "waiter_delay"),
        ({"waiter_delay": "30"}, "waiter_delay"),
        ({"waiter_max_attempts": "120"}, "waiter_max_attempts"),
        ({"waiter_max_attempts": None}, "waiter_max_attempts"),
    ],
)
def test_waiter_arguments_checked_before_any_request(
    hook: SesExportJobHook, stubber: Stubber, kwargs: dict[str, Any], named: str
) -> None:
    with pytest.raises(SesExportInputError, match=named):
        make_op(hook, **kwargs).execute({"ti": FakeTI()})
    with pytest.raises(SesExportInputError, match=named):
        hook.wait_for_export_job("job-1", **kwargs)
