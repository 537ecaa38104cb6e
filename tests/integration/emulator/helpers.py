"""Request builders, a botocore-model shape checker and small HTTP helpers for the emulator tests."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from typing import Any

import botocore.session
from botocore.model import Shape

START = datetime(2024, 1, 1, tzinfo=timezone.utc)
END = datetime(2024, 1, 3, 12, tzinfo=timezone.utc)  # touches 3 UTC days (Message Insights: any time of day)
#: Metrics ranges go from midnight to midnight UTC, end-exclusive: Jan 1, 2 and 3.
METRICS_END = datetime(2024, 1, 4, tzinfo=timezone.utc)
MODEL = botocore.session.get_session().get_service_model("sesv2")
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED"}


def metrics_source(
    dimensions: dict[str, list[str]] | None = None,
    metrics: list[dict[str, str]] | None = None,
    start: datetime = START,
    end: datetime = METRICS_END,
) -> dict[str, Any]:
    """A VDM MetricsDataSource export source."""
    return {
        "MetricsDataSource": {
            "Dimensions": dimensions if dimensions is not None else {"ISP": ["Gmail", "Yahoo"]},
            "Namespace": "VDM",
            "Metrics": metrics
            if metrics is not None
            else [{"Name": "SEND", "Aggregation": "VOLUME"}, {"Name": "OPEN", "Aggregation": "RATE"}],
            "StartDate": start,
            "EndDate": end,
        }
    }


def insights_source(max_results: int | None = None, start: datetime = START, end: datetime = END) -> dict[str, Any]:
    """A MessageInsightsDataSource export source."""
    source: dict[str, Any] = {"StartDate": start, "EndDate": end}
    if max_results is not None:
        source["MaxResults"] = max_results
    return {"MessageInsightsDataSource": source}


def create(client: Any, source: dict[str, Any] | None = None, data_format: str = "CSV") -> str:
    """CreateExportJob; returns the JobId."""
    response = client.create_export_job(
        ExportDataSource=source or metrics_source(), ExportDestination={"DataFormat": data_format}
    )
    check_output("CreateExportJob", response)
    return str(response["JobId"])


def wait_status(client: Any, job_id: str, wanted: set[str] | None = None, timeout: float = 10.0) -> dict[str, Any]:
    """Poll GetExportJob until the status is in ``wanted`` (default: terminal)."""
    wanted = wanted or TERMINAL
    deadline = time.monotonic() + timeout
    while True:
        response: dict[str, Any] = client.get_export_job(JobId=job_id)
        if response["JobStatus"] in wanted:
            return response
        assert time.monotonic() < deadline, f"job {job_id} stuck in {response['JobStatus']}"
        time.sleep(0.005)


def check_shape(shape: Shape, value: Any, path: str = "", wire: bool = False) -> None:
    """
    Assert ``value`` conforms to ``shape``: types, required members, enums, no unknown members.

    :param shape: the botocore shape.
    :param value: a parsed (boto3) value, or a raw JSON value when ``wire``.
    :param path: for messages.
    :param wire: raw JSON (timestamps are numbers) rather than boto3-parsed values.
    """
    kind = shape.type_name
    where = path or shape.name
    if kind == "structure":
        assert isinstance(value, dict), f"{where}: expected an object, got {value!r}"
        for required in shape.required_members:  # type: ignore[attr-defined]
            assert required in value, f"{where}: missing required member {required}"
        for key, item in value.items():
            if not path and key == "ResponseMetadata" and not wire:
                continue
            assert key in shape.members, f"{where}: unknown member {key}"  # type: ignore[attr-defined]
            check_shape(shape.members[key], item, f"{where}.{key}", wire)  # type: ignore[attr-defined]
    elif kind == "list":
        assert isinstance(value, list), f"{where}: expected a list"
        for i, item in enumerate(value):
            check_shape(shape.member, item, f"{where}[{i}]", wire)  # type: ignore[attr-defined]
    elif kind == "map":
        assert isinstance(value, dict), f"{where}: expected a map"
        for key, item in value.items():
            check_shape(shape.key, key, f"{where}<key>", wire)  # type: ignore[attr-defined]
            check_shape(shape.value, item, f"{where}.{key}", wire)  # type: ignore[attr-defined]
    elif kind == "string":
        assert isinstance(value, str), f"{where}: expected a string, got {value!r}"
        if shape.enum:  # type: ignore[attr-defined]
            assert value in shape.enum, f"{where}: {value!r} not in {shape.enum}"  # type: ignore[attr-defined]
        if "min" in shape.metadata:
            assert len(value) >= shape.metadata["min"], f"{where}: shorter than min"
    elif kind in ("integer", "long"):
        assert isinstance(value, int) and not isinstance(value, bool), f"{where}: expected an integer"
    elif kind == "boolean":
        assert isinstance(value, bool), f"{where}: expected a boolean"
    elif kind in ("double", "float"):
        assert isinstance(value, (int, float)) and not isinstance(value, bool), f"{where}: expected a number"
    elif kind == "timestamp":
        if wire:
            assert isinstance(value, (int, float)) and not isinstance(value, bool), f"{where}: expected epoch seconds"
        else:
            assert isinstance(value, datetime), f"{where}: expected a datetime"
    else:  # pragma: no cover - not used by these operations
        raise AssertionError(f"{where}: unexpected shape type {kind}")


def check_output(operation: str, response: dict[str, Any], wire: bool = False) -> None:
    """Check a response against the operation's output shape."""
    shape = MODEL.operation_model(operation).output_shape
    assert shape is not None
    check_shape(shape, response, "", wire)


def http(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """A raw HTTP call; returns (status, headers, body) also for error statuses."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def download(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """GET a download URL."""
    return http("GET", url, headers=headers)
