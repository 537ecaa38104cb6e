"""Unit tests for the provider's model walker (``utils.model_validation``)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from typing import Any

import pytest

from airflow_provider_sesexport.utils.model_validation import (
    ParamValidationFailed,
    Violation,
    check_request,
    date_range_violation,
)

START = dt.datetime(2026, 10, 31, tzinfo=dt.timezone.utc)
END = START + dt.timedelta(days=1)
METRICS = "ExportDataSource.MetricsDataSource"
INSIGHTS = "ExportDataSource.MessageInsightsDataSource"


def metrics(**changes: Any) -> dict[str, Any]:
    source: dict[str, Any] = {
        "Dimensions": {"ISP": ["gmail"]},
        "Namespace": "VDM",
        "Metrics": [{"Name": "SEND", "Aggregation": "VOLUME"}],
        "StartDate": START,
        "EndDate": END,
    }
    source.update(changes)
    return {"ExportDataSource": {"MetricsDataSource": source}, "ExportDestination": {"DataFormat": "CSV"}}


def insights(**changes: Any) -> dict[str, Any]:
    source: dict[str, Any] = {"StartDate": START, "EndDate": END}
    source.update(changes)
    return {"ExportDataSource": {"MessageInsightsDataSource": source}, "ExportDestination": {"DataFormat": "JSON"}}


@pytest.mark.parametrize(
    ("operation", "request_"),
    [
        ("CreateExportJob", metrics()),
        ("CreateExportJob", insights(MaxResults=10000, Include={"Isp": ["a"] * 5, "Subject": ["s" * 998]})),
        ("ListExportJobs", {}),
        ("ListExportJobs", {"PageSize": 1000, "JobStatus": "COMPLETED", "ExportSourceType": "METRICS_DATA"}),
        ("GetExportJob", {"JobId": "job-1"}),
        ("CancelExportJob", {"JobId": "job-1"}),
    ],
)
def test_valid_requests_have_no_violations(operation: str, request_: dict[str, Any]) -> None:
    assert check_request(operation, request_) == []


#: (request, the one violation's path, its expected text); each constraint ParamValidator skips
CONSTRAINTS = {
    "enum": (metrics(Namespace="VDMX"), f"{METRICS}.Namespace", "one of VDM"),
    "enum-in-list": (
        metrics(Metrics=[{"Name": "SEND", "Aggregation": "VOLUME"}, {"Name": "OPENS", "Aggregation": "RATE"}]),
        f"{METRICS}.Metrics[1].Name",
        "one of SEND, COMPLAINT",
    ),
    "enum-map-key": (metrics(Dimensions={"COUNTRY": ["DE"]}), f"{METRICS}.Dimensions key", "one of EMAIL_IDENTITY"),
    "list-max": (
        metrics(Metrics=[{"Name": "SEND", "Aggregation": "VOLUME"}] * 11),
        f"{METRICS}.Metrics",
        "at most 10 item(s)",
    ),
    "list-max-in-map": (metrics(Dimensions={"ISP": ["x"] * 11}), f"{METRICS}.Dimensions.ISP", "at most 10 item(s)"),
    "map-min": (metrics(Dimensions={}), f"{METRICS}.Dimensions", "at least 1 key(s)"),
    "map-max": (
        metrics(Dimensions={"ISP": ["a"], "EMAIL_IDENTITY": ["b"], "CONFIGURATION_SET": ["c"], "TENANT_NAME": ["d"]}),
        f"{METRICS}.Dimensions",
        "at most 3 key(s)",
    ),
    "string-max": (
        insights(Include={"FromEmailAddress": ["a" * 321]}),
        f"{INSIGHTS}.Include.FromEmailAddress[0]",
        "at most 320 character(s)",
    ),
    "integer-max": (insights(MaxResults=10001), f"{INSIGHTS}.MaxResults", "an integer <= 10000"),
    "enum-top-level": (
        {"ExportDataSource": metrics()["ExportDataSource"], "ExportDestination": {"DataFormat": "XML"}},
        "ExportDestination.DataFormat",
        "one of CSV, JSON",
    ),
}


@pytest.mark.parametrize(("request_", "path", "expected"), CONSTRAINTS.values(), ids=list(CONSTRAINTS))
def test_each_constraint_paramvalidator_skips_is_a_violation(
    request_: dict[str, Any], path: str, expected: str
) -> None:
    violation, *others = check_request("CreateExportJob", request_)
    # Four dimension keys need TENANT_NAME, which older models (MWAA 2.10.3's botocore) do not know: there
    # that key is a second violation, after the map-size one.
    assert all(o.path == f"{METRICS}.Dimensions key" and o.value == "TENANT_NAME" for o in others), others
    assert violation.path == path
    assert violation.expected.startswith(expected)
    assert violation.member == path.split(".")[0]


def test_violation_carries_the_offending_value() -> None:
    [violation] = check_request("ListExportJobs", {"JobStatus": "DONE"})
    assert violation == Violation("JobStatus", "DONE", "one of CREATED, PROCESSING, COMPLETED, FAILED, CANCELLED")
    assert violation.member == "JobStatus"


def test_every_violation_is_returned_in_request_order() -> None:
    request_ = metrics(Namespace="X", Metrics=[{"Name": "NOPE", "Aggregation": "SUM"}])
    paths = [v.path for v in check_request("CreateExportJob", request_)]
    assert paths == [f"{METRICS}.Namespace", f"{METRICS}.Metrics[0].Name", f"{METRICS}.Metrics[0].Aggregation"]


@pytest.mark.parametrize(
    ("operation", "request_", "named"),
    [
        ("CreateExportJob", metrics(Metrics=[]), "ExportDataSource.MetricsDataSource.Metrics"),  # min length
        ("CreateExportJob", insights(MaxResults=0), "MaxResults"),  # min value
        ("CreateExportJob", insights(MaxResults="100"), "MaxResults"),  # type
        ("CreateExportJob", {"ExportDestination": {"DataFormat": "CSV"}}, '"ExportDataSource"'),  # required
        ("ListExportJobs", {"Bogus": 1}, '"Bogus"'),  # unknown member
        ("GetExportJob", {"JobId": ""}, "JobId"),  # min length
    ],
)
def test_paramvalidator_errors_raise_with_botocores_report(operation: str, request_: Any, named: str) -> None:
    with pytest.raises(ParamValidationFailed) as info:
        check_request(operation, request_)
    assert named in info.value.report
    assert info.value.operation == operation
    assert "Parameter validation failed" not in info.value.report


def test_paramvalidator_runs_before_the_walk() -> None:
    """A request botocore rejects raises, even when it also breaks a constraint the walk would report."""
    with pytest.raises(ParamValidationFailed, match="Metrics"):
        check_request("CreateExportJob", metrics(Namespace="VDMX", Metrics=[]))


@pytest.mark.parametrize(
    ("start", "end", "ok"),
    [
        (START, END, True),
        (START, START + dt.timedelta(microseconds=1), True),
        (START, START, False),  # equal: SES answers "Invalid date range"
        (END, START, False),
        (START, START.astimezone(dt.timezone(dt.timedelta(hours=2))), False),  # the same instant, another offset
        (START.replace(tzinfo=None), END, True),  # a naive wire timestamp counts as UTC
        (START, START.replace(tzinfo=None), False),
    ],
)
def test_date_range_needs_start_strictly_before_end(start: dt.datetime, end: dt.datetime, ok: bool) -> None:
    violation = date_range_violation({"StartDate": start, "EndDate": end}, METRICS)
    if ok:
        assert violation is None
    else:
        assert violation == Violation(f"{METRICS}.EndDate", end, f"a time after StartDate ({start.isoformat()})")


@pytest.mark.parametrize("source", [{}, {"StartDate": START}, {"StartDate": "2026-11-01", "EndDate": START}])
def test_date_range_leaves_missing_or_undecoded_dates_to_other_checks(source: dict[str, Any]) -> None:
    assert date_range_violation(source, METRICS) is None


def test_importing_it_loads_neither_airflow_nor_botocore() -> None:
    probe = (
        "import json, sys; import airflow_provider_sesexport.utils.model_validation; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('airflow', 'botocore', 'boto3'))))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
