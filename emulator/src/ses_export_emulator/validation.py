"""
Request validation with botocore's own ``sesv2`` service model.

Four layers, each failing with :class:`ValidationFailed` (sent as ``BadRequestException``):

1. the checks real SES runs first on a create, worded as it words them ("1 validation error detected:
   Value at 'exportDestination' failed to satisfy constraint: Member must not be null", the same for
   ``exportDestination.dataFormat``, or "... Member must satisfy enum value set: [CSV, JSON]");
2. wire decoding: the JSON body and the path parameters become the operation's input params,
   timestamps (epoch seconds on the rest-json wire, or ISO-8601 strings) become datetimes;
3. the model walker the provider uses too (:mod:`airflow_provider_sesexport.utils.model_validation`):
   botocore's ParamValidator (required members, types, unknown members, ``min``), then what it skips
   (enums, ``max`` lengths and values, map sizes);
4. what the real service enforces beyond the model, with its messages: no ``S3Url`` in a create
   ("Providing a custom S3 URL is not supported"), exactly one data source ("One data source must be
   provided"), StartDate strictly before EndDate ("Invalid date range"), metrics ranges from midnight
   to midnight UTC, ListExportJobs' PageSize.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from botocore.model import Shape, StringShape

from airflow_provider_sesexport.utils.model_validation import (
    ParamValidationFailed,
    Violation,
    check_request,
    date_range_violation,
    operation_model,
    partial_day_violation,
)


class ValidationFailed(Exception):
    """The request is invalid; ``str(exc)`` names the offending field."""


CUSTOM_S3_URL = "Providing a custom S3 URL is not supported"
ONE_DATA_SOURCE = "One data source must be provided"
PARTIAL_DAYS = (
    "To get daily aggregated data you must not specify partial-day timestamps. "
    "Please make your interval go from midnight to midnight UTC."
)


def _constraint_errors(body: dict[str, Any]) -> None:
    """
    The destination checks real SES runs before any other, in its own wording.

    :param body: the CreateExportJob JSON body.
    """
    destination = body.get("ExportDestination")
    problem = None
    if destination is None:
        problem = "Value at 'exportDestination' failed to satisfy constraint: Member must not be null"
    elif isinstance(destination, dict):
        data_format = destination.get("DataFormat")
        shape = operation_model("CreateExportJob").input_shape.members["ExportDestination"].members["DataFormat"]
        allowed = shape.enum if isinstance(shape, StringShape) else []
        if data_format is None:
            problem = "Value at 'exportDestination.dataFormat' failed to satisfy constraint: Member must not be null"
        elif isinstance(data_format, str) and data_format not in allowed:
            problem = (
                "Value at 'exportDestination.dataFormat' failed to satisfy constraint: "
                f"Member must satisfy enum value set: [{', '.join(allowed)}]"
            )
    if problem is not None:
        raise ValidationFailed(f"1 validation error detected: {problem}")


def _to_datetime(value: Any) -> Any:
    """
    Wire timestamp (epoch seconds or ISO-8601 string) to an aware datetime; anything else unchanged.

    :param value: the wire value.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        try:
            return datetime.fromtimestamp(value, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            return value
    if isinstance(value, str):
        try:
            from botocore.utils import parse_timestamp

            return parse_timestamp(value)
        except (ValueError, TypeError):
            return value
    return value


def decode(shape: Shape, value: Any) -> Any:
    """
    Convert a decoded JSON value into botocore input params (timestamps to datetimes), recursively.

    :param shape: the value's shape.
    :param value: the JSON value.
    """
    kind = shape.type_name
    if kind == "timestamp":
        return _to_datetime(value)
    if kind == "structure" and isinstance(value, dict):
        members = shape.members  # type: ignore[attr-defined]
        return {k: decode(members[k], v) if k in members else v for k, v in value.items()}
    if kind == "list" and isinstance(value, list):
        return [decode(shape.member, v) for v in value]  # type: ignore[attr-defined]
    if kind == "map" and isinstance(value, dict):
        return {k: decode(shape.value, v) for k, v in value.items()}  # type: ignore[attr-defined]
    return value


def _shown(value: Any) -> str:
    """
    A violation's value as a message shows it: a list or map by its size, a datetime in ISO-8601.

    :param value: the offending value.
    """
    if isinstance(value, list):
        return f"{len(value)} items"
    if isinstance(value, dict):
        return f"{len(value)} keys"
    return value.isoformat() if isinstance(value, datetime) else repr(value)


def _message(violation: Violation) -> str:
    """
    A model violation worded as botocore words its own reports.

    :param violation: the violation.
    """
    return f"Invalid value for parameter {violation.path}: {_shown(violation.value)}, expected {violation.expected}"


def _check_dates(source: dict[str, Any], path: str) -> None:
    """
    StartDate must be strictly before EndDate, else SES answers 400 "Invalid date range".

    :param source: a data source with datetimes.
    :param path: its dotted name.
    """
    violation = date_range_violation(source, path)
    if violation is not None:
        raise ValidationFailed(
            f"Invalid date range: {violation.path} is {_shown(violation.value)}, expected {violation.expected}"
        )


def _semantic_create(params: dict[str, Any]) -> None:
    """
    CreateExportJob rules the model cannot express, worded as real SES words them.

    Metrics are daily aggregates over ``[StartDate, EndDate)``, so both must be midnight UTC; a
    Message Insights range is ``[StartDate, EndDate]`` at any time of day.

    :param params: validated params.
    """
    destination = params.get("ExportDestination") or {}
    if "S3Url" in destination:
        raise ValidationFailed(CUSTOM_S3_URL)
    source = params.get("ExportDataSource") or {}
    has_metrics = "MetricsDataSource" in source
    has_insights = "MessageInsightsDataSource" in source
    if has_metrics == has_insights:
        raise ValidationFailed(ONE_DATA_SOURCE)
    name = "MetricsDataSource" if has_metrics else "MessageInsightsDataSource"
    _check_dates(source[name], f"ExportDataSource.{name}")
    if has_metrics and partial_day_violation(source[name], f"ExportDataSource.{name}") is not None:
        raise ValidationFailed(PARTIAL_DAYS)


def _semantic_list(params: dict[str, Any]) -> None:
    """
    ListExportJobs rules: PageSize in 1..100.

    :param params: validated params.
    """
    size = params.get("PageSize")
    if isinstance(size, int) and not 1 <= size <= 100:
        raise ValidationFailed(f"PageSize={size} is out of range 1..100")


def validate_request(operation: str, body: Any, path_params: dict[str, str] | None = None) -> dict[str, Any]:
    """
    Decode and validate one request; return botocore-style params (datetimes for timestamps).

    :param operation: the operation name, e.g. ``CreateExportJob``.
    :param body: the decoded JSON body (``{}`` when empty).
    :param path_params: URI parameters (e.g. ``{"JobId": ...}``).
    :raises ValidationFailed: with a message naming the field.
    """
    shape = operation_model(operation).input_shape
    if not isinstance(body, dict):
        raise ValidationFailed("The request body must be a JSON object")
    if operation == "CreateExportJob":
        _constraint_errors(body)
    params: dict[str, Any] = decode(shape, dict(body)) if shape is not None else {}
    if path_params:
        params.update(path_params)
    try:
        violations = check_request(operation, params)
    except ParamValidationFailed as exc:
        raise ValidationFailed(f"Parameter validation failed: {exc.report}".replace("\n", " ")) from None
    if violations:
        raise ValidationFailed("; ".join(_message(violation) for violation in violations))
    if operation == "CreateExportJob":
        _semantic_create(params)
    elif operation == "ListExportJobs":
        _semantic_list(params)
    return params
