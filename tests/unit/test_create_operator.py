"""Unit tests for SesCreateExportJobOperator, the request validation and the hook's sync waiter (Stubber)."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any
from unittest import mock

import pendulum
import pytest
from botocore.stub import Stubber

from airflow_provider_sesexport import _compat
from airflow_provider_sesexport._compat import AirflowFailException
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
# A try records the job it started the moment CreateExportJob returns, and a retry reuses only that record: on
# Airflow 3.3+ Airflow's task_state_store (ResumableJobMixin), below 3.3 an Airflow Variable per task instance.
# Each test runs on both stores; the Variable store also on Airflow 3.3 (patched through _compat).
class FakeVariables:
    """Airflow's Variable API (``get``/``set``/``delete`` class methods) over a dict."""

    values: dict[str, str] = {}

    @classmethod
    def get(cls, key: str, default: Any = None) -> Any:
        return cls.values.get(key, default)

    @classmethod
    def set(cls, key: str, value: str, description: str | None = None) -> None:
        cls.values[key] = value

    @classmethod
    def delete(cls, key: str) -> None:
        cls.values.pop(key, None)


class Records:
    """Where the operator records its job id for the task instance ``ti(...)`` builds, on one of the two stores."""

    def __init__(self, kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
        self.kind = kind
        self.store = FakeStore()
        if kind == "variables":
            FakeVariables.values = {}
            monkeypatch.setattr(_compat, "_AIRFLOW_RESUMES_JOBS", False)
            monkeypatch.setattr(_compat, "_variables", lambda: FakeVariables)

    def context(self, try_number: int = 1, max_tries: int = 1, map_index: int = -1, **ti: Any) -> dict[str, Any]:
        task_instance = FakeTI(try_number)
        task_instance.max_tries = max_tries
        task_instance.dag_id, task_instance.run_id = ti.get("dag_id", "d"), ti.get("run_id", "manual__1")
        task_instance.task_id, task_instance.map_index = ti.get("task_id", "create"), map_index
        context: dict[str, Any] = {"ti": task_instance}
        if self.kind == "task_state_store":
            context["task_state_store"] = self.store
        return context

    def _variable(self, context: dict[str, Any]) -> str:
        store = _compat.VariableTaskStore.of(context)
        assert store is not None
        return store.variable_key("ses_export_job_id")

    def recorded(self, context: dict[str, Any]) -> Any:
        """The recorded JobId, checked to be recorded with the task instance's max_tries."""
        if self.kind == "task_state_store":
            record = self.store.values.get("ses_export_job_id")
        else:
            value = FakeVariables.values.get(self._variable(context))
            record = None if value is None else json.loads(value)
        if record is None:
            return None
        assert record == {"job_id": record["job_id"], "max_tries": context["ti"].max_tries}, record
        return record["job_id"]

    def seed(self, context: dict[str, Any], job_id: str, max_tries: int | None = None) -> None:
        """Record ``job_id`` as a try of this task instance did (``max_tries``: as one before a Clear did)."""
        record = {"job_id": job_id, "max_tries": context["ti"].max_tries if max_tries is None else max_tries}
        if self.kind == "task_state_store":
            self.store.values["ses_export_job_id"] = record
        else:
            FakeVariables.values[self._variable(context)] = json.dumps(record)


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


def test_the_job_is_recorded_before_the_wait(hook: SesExportJobHook, stubber: Stubber, records: Records) -> None:
    """The record exists as soon as CreateExportJob returned: a try dying in its first poll leaves it for the retry."""
    stubber.add_response("create_export_job", {"JobId": "job-1"}, EXPECTED_CREATE)
    context = records.context()
    seen: list[Any] = []

    def wait(job_id: str, *args: Any) -> None:
        seen.append(records.recorded(context))
        raise ConnectionError("worker lost")

    with mock.patch.object(hook, "wait_for_export_job", side_effect=wait), pytest.raises(ConnectionError):
        make_op(hook).execute(context)
    assert seen == ["job-1"]
    assert records.recorded(context) == "job-1"  # a try with a retry left keeps it


@pytest.mark.parametrize("status", ["CREATED", "PROCESSING", "COMPLETED"])
def test_retry_reuses_its_recorded_job(hook: SesExportJobHook, stubber: Stubber, records: Records, status: str) -> None:
    context = records.context(try_number=2)
    records.seed(context, "old")
    stubber.add_response("get_export_job", job_response(status, job_id="old"), {"JobId": "old"})
    assert make_op(hook, wait_for_completion=False).execute(context) == "old"


@pytest.mark.parametrize(
    ("try_number", "max_tries", "recorded_max_tries"),
    [(2, 2, 1), (3, 4, 2), (5, 5, 4)],
    ids=["cleared after try 1 of 2", "cleared after try 2 of 3", "cleared again after a retry"],
)
def test_a_clear_never_adopts_the_job_recorded_before_it(
    hook: SesExportJobHook, stubber: Stubber, records: Records, try_number: int, max_tries: int, recorded_max_tries: int
) -> None:
    """A record left from before a Clear (the task marked failed or success while running, a deferral timed out, a
    trigger crashed; Airflow 3.3 keeps task_state_store after success): the cleared try, whose max_tries Airflow
    raised (try_number + retries), starts a new export without even asking about the old job (the Stubber refuses
    any call not queued)."""
    cleared = records.context(try_number=try_number, max_tries=max_tries)
    records.seed(cleared, "before-clear", max_tries=recorded_max_tries)
    stubber.add_response("create_export_job", {"JobId": "after-clear"}, EXPECTED_CREATE)
    assert make_op(hook, wait_for_completion=False).execute(cleared) == "after-clear"
    stubber.assert_no_pending_responses()
    # the new job's record (task_state_store), or none: the task instance ended and its Variable went with it
    assert records.recorded(cleared) == ("after-clear" if records.kind == "task_state_store" else None)


@pytest.mark.parametrize("record", ["old", {"job_id": "old"}, {"max_tries": 1}, ["old", 1]])
def test_a_record_in_another_form_is_not_reused(
    hook: SesExportJobHook, stubber: Stubber, records: Records, record: Any
) -> None:
    context = records.context(try_number=2)
    if records.kind == "task_state_store":
        records.store.values["ses_export_job_id"] = record
    else:
        FakeVariables.values[records._variable(context)] = json.dumps(record)
    stubber.add_response("create_export_job", {"JobId": "new"}, EXPECTED_CREATE)
    assert make_op(hook, wait_for_completion=False).execute(context) == "new"
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize("status", ["FAILED", "CANCELLED"])
def test_retry_replaces_a_failed_recorded_job(
    hook: SesExportJobHook, stubber: Stubber, records: Records, status: str
) -> None:
    context = records.context(try_number=2, max_tries=2)
    records.seed(context, "old")
    stubber.add_response("get_export_job", job_response(status, job_id="old"), {"JobId": "old"})
    stubber.add_response("create_export_job", {"JobId": "new"}, EXPECTED_CREATE)
    lost = mock.patch.object(hook, "wait_for_export_job", side_effect=ConnectionError("worker lost"))
    with lost, pytest.raises(ConnectionError):
        make_op(hook).execute(context)
    assert records.recorded(context) == "new"


def test_retry_replaces_a_vanished_recorded_job(hook: SesExportJobHook, stubber: Stubber, records: Records) -> None:
    context = records.context(try_number=2)
    records.seed(context, "old")
    stubber.add_client_error("get_export_job", "NotFoundException", "gone", 404, expected_params={"JobId": "old"})
    stubber.add_response("create_export_job", {"JobId": "new"}, EXPECTED_CREATE)
    assert make_op(hook, wait_for_completion=False).execute(context) == "new"


@pytest.mark.parametrize("deferrable", [False, True])
def test_retry_without_a_record_starts_its_own_job(
    hook: SesExportJobHook, stubber: Stubber, records: Records, deferrable: bool
) -> None:
    """No record (the first try died before CreateExportJob returned): a new job. The retry never looks for another
    job by what it exports (ListExportJobs would be an unexpected call to the Stubber), so the job the deferred wait's
    trigger may cancel on a kill is this task instance's own."""
    stubber.add_response("create_export_job", {"JobId": "new"}, EXPECTED_CREATE)
    op = make_op(hook, wait_for_completion=deferrable, deferrable=deferrable)  # sync: returns once created
    if not deferrable:
        assert op.execute(records.context(try_number=2)) == "new"
        return
    with pytest.raises(_compat.TaskDeferred) as deferred:
        op.execute(records.context(try_number=2))
    _, kwargs = deferred.value.trigger.serialize()
    assert (kwargs["job_id"], kwargs["cancel_on_kill"]) == ("new", True)


def test_retry_of_a_completed_job_pushes_its_summary_without_a_new_export(
    hook: SesExportJobHook, stubber: Stubber, records: Records
) -> None:
    """A job an earlier try saw COMPLETED is not waited for again: its summary still reaches XCom."""
    context = records.context(try_number=2)
    records.seed(context, "old")
    summary = {"job_id": "old", "job_status": "COMPLETED"}
    stubber.add_response("get_export_job", job_response("COMPLETED", job_id="old"), {"JobId": "old"})
    with mock.patch.object(hook, "wait_for_export_job", return_value=summary) as wait:
        assert make_op(hook).execute(context) == "old"
    wait.assert_called_once_with("old", 1, 120)
    assert context["ti"].pushed == {"export_job": summary}


def test_deferrable_retry_defers_on_its_recorded_job(
    hook: SesExportJobHook, stubber: Stubber, records: Records
) -> None:
    context = records.context(try_number=2)
    records.seed(context, "old")
    stubber.add_response("get_export_job", job_response("PROCESSING", job_id="old"), {"JobId": "old"})
    with pytest.raises(_compat.TaskDeferred) as deferred:
        make_op(hook, deferrable=True).execute(context)
    _, kwargs = deferred.value.trigger.serialize()
    assert kwargs["job_id"] == "old"
    assert kwargs["cancel_on_kill"] is True  # the trigger cancels only this task instance's own job
    assert records.recorded(context) == "old"  # a deferral does not end the task: the record stays


def test_not_durable_starts_a_new_export_on_every_try(
    hook: SesExportJobHook, stubber: Stubber, records: Records
) -> None:
    """durable=False: the record is neither read nor written."""
    stubber.add_response("create_export_job", {"JobId": "new"}, EXPECTED_CREATE)
    context = records.context(try_number=2)
    records.seed(context, "old")
    assert make_op(hook, wait_for_completion=False, durable=False).execute(context) == "new"
    assert records.recorded(context) == "old"


def test_two_task_instances_of_one_data_source_each_reuse_their_own_job(
    hook: SesExportJobHook, stubber: Stubber, records: Records
) -> None:
    """Two tasks (or map indexes, or runs) exporting the same data: each retry reuses its own job, and on_kill of one
    cancels its own job only (the Stubber checks every JobId)."""
    contexts = {
        "mine": records.context(try_number=2, task_id="a"),
        "theirs": records.context(try_number=2, task_id="b"),
    }
    if records.kind == "task_state_store":  # Airflow scopes each task instance's store itself
        contexts["theirs"]["task_state_store"] = FakeStore({"ses_export_job_id": {"job_id": "theirs", "max_tries": 1}})
    for job_id, context in contexts.items():
        if job_id == "mine" or records.kind == "variables":
            records.seed(context, job_id)
    for job_id, context in contexts.items():
        stubber.add_response("get_export_job", job_response("PROCESSING", job_id=job_id), {"JobId": job_id})
        op = make_op(hook, wait_for_completion=False)
        assert op.execute(context) == job_id
    stubber.add_response("get_export_job", job_response("PROCESSING", job_id="theirs"), {"JobId": "theirs"})
    stubber.add_response("cancel_export_job", {}, {"JobId": "theirs"})
    op.on_kill()  # the last task killed: its job, never the other's


@pytest.mark.parametrize(
    "other",
    [{"map_index": 1}, {"map_index": 0}, {"run_id": "manual__2"}, {"task_id": "create_2"}, {"dag_id": "d2"}],
)
def test_each_task_instance_has_its_own_variable(variables: Records, other: dict[str, Any]) -> None:
    mine = _compat.VariableTaskStore.of(variables.context())
    theirs = _compat.VariableTaskStore.of(variables.context(**other))
    assert mine is not None and theirs is not None
    assert mine.variable_key("ses_export_job_id") != theirs.variable_key("ses_export_job_id")
    again = _compat.VariableTaskStore.of(variables.context(try_number=3))
    assert again is not None and again.variable_key("ses_export_job_id") == mine.variable_key("ses_export_job_id")


def test_variable_names_fit_and_are_url_safe(variables: Records) -> None:
    """Airflow keeps Variable keys of up to 250 characters; the task SDK sends the key in a URL path."""
    context = variables.context(dag_id="d" * 250, task_id="g.t" * 80, run_id="scheduled__2026-11-01T00:00:00+00:00/x")
    store = _compat.VariableTaskStore.of(context)
    assert store is not None
    key = store.variable_key("ses_export_job_id")
    assert len(key) <= 250 and re.fullmatch(r"[A-Za-z0-9_.-]+", key), key
    assert key.startswith("sesexport_job.ddd")
    short = _compat.VariableTaskStore("dag", "manual__1", "create", 3).variable_key("ses_export_job_id")
    assert short.startswith("sesexport_job.dag.create.3.")


def test_no_task_instance_no_variable(variables: Records, hook: SesExportJobHook, stubber: Stubber) -> None:
    """A bare execute (no task instance in the context) records nothing."""
    stubber.add_response("create_export_job", {"JobId": "new"}, EXPECTED_CREATE)
    assert make_op(hook, wait_for_completion=False).execute({"ti": None}) == "new"
    assert FakeVariables.values == {}


@pytest.mark.parametrize(
    ("ending", "try_number", "kept"),
    [
        ("success", 1, False),
        ("deferred", 1, True),
        ("error", 1, True),  # a retry follows: it reads the record
        ("error", 2, False),  # the last try failed: the task instance has ended
        ("job failed", 1, False),  # AirflowFailException: no retry, whatever is left
    ],
)
def test_the_variable_lives_until_the_task_instance_ends(
    hook: SesExportJobHook, stubber: Stubber, variables: Records, ending: str, try_number: int, kept: bool
) -> None:
    stubber.add_response("create_export_job", {"JobId": "job-1"}, EXPECTED_CREATE)
    context = variables.context(try_number=try_number, max_tries=1)
    op = make_op(hook, deferrable=ending == "deferred")
    if ending == "success":
        stubber.add_response("get_export_job", job_response("COMPLETED"), {"JobId": "job-1"})
        assert op.execute(context) == "job-1"
    elif ending == "deferred":
        with pytest.raises(_compat.TaskDeferred):
            op.execute(context)
    elif ending == "error":
        stubber.add_client_error("get_export_job", "AccessDeniedException", "denied", 403)
        with pytest.raises(Exception, match="denied"):
            op.execute(context)
    else:
        stubber.add_response("get_export_job", job_response("FAILED"), {"JobId": "job-1"})
        with pytest.raises(SesExportJobFailedError):
            op.execute(context)
    assert variables.recorded(context) == ("job-1" if kept else None)


@pytest.mark.parametrize(("event_status", "kept"), [("success", False), ("failed", False), ("timeout", True)])
def test_a_deferred_wait_ending_removes_the_variable_unless_retried(
    variables: Records, event_status: str, kept: bool
) -> None:
    """The wait resumes in execute_complete: its end is the task instance's end, unless a retry follows."""
    op = SesCreateExportJobOperator(task_id="create", export_data_source=metrics_source())
    context = variables.context(try_number=1, max_tries=1)
    variables.seed(context, "job-1")
    summary = {"job_id": "job-1", "job_status": "COMPLETED" if event_status == "success" else "FAILED"}
    event = {"status": event_status, "job_id": "job-1", "summary": summary, "job_status": summary["job_status"]}
    if event_status == "success":
        assert op.execute_complete(context, event) == "job-1"
    else:
        with pytest.raises(SesExportJobError):
            op.execute_complete(context, event)
    assert variables.recorded(context) == ("job-1" if kept else None)


def test_a_variable_that_cannot_be_removed_does_not_fail_the_task(
    hook: SesExportJobHook, stubber: Stubber, variables: Records, monkeypatch: pytest.MonkeyPatch
) -> None:
    stubber.add_response("create_export_job", {"JobId": "job-1"}, EXPECTED_CREATE)

    def refuse(key: str) -> None:
        raise RuntimeError("API server unreachable")

    monkeypatch.setattr(FakeVariables, "delete", refuse)
    assert make_op(hook, wait_for_completion=False).execute(variables.context()) == "job-1"


# -- throttling and on_kill --------------------------------------------------------------------------------
def test_create_still_throttled_after_botocore_retries_says_what_to_do(
    hook: SesExportJobHook, stubber: Stubber
) -> None:
    """One throttled answer reaches the hook only once botocore's retries are spent (Stubber skips them)."""
    stubber.add_client_error("create_export_job", "TooManyRequestsException", "Rate exceeded (thr-5e1)", 429)
    request = build_create_export_job_request(metrics_source(), "CSV")
    with pytest.raises(SesExportJobError) as err:
        _create_export.create_in_free_slot(hook, request, mock.Mock(), mock.Mock())
    message = str(err.value)
    assert "still throttled after 6 attempts in botocore's 'standard' retry mode" in message
    assert "thr-5e1" in message and '"mode": "adaptive"' in message and "config_kwargs" in message
    assert not isinstance(err.value, AirflowFailException)  # Airflow's retries apply


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
