"""
Request validation with botocore's own ``sesv2`` service model.

Three layers, each failing with :class:`ValidationFailed` (sent as ``BadRequestException``):

1. wire decoding: the JSON body and the path parameters become the operation's input params,
   timestamps (epoch seconds on the rest-json wire, or ISO-8601 strings) become datetimes;
2. :class:`botocore.validate.ParamValidator`: required members, types, unknown members, ``min``;
3. what ParamValidator skips (enums, ``max`` lengths and ranges) and semantic rules the model
   cannot express (a create's ``S3Url`` is output-only, exactly one data source, EndDate not before
   StartDate, ...).
"""

from __future__ import annotations

import functools
from datetime import datetime, timezone
from typing import Any

from botocore.model import OperationModel, ServiceModel, Shape
from botocore.validate import ParamValidator


class ValidationFailed(Exception):
    """The request is invalid; ``str(exc)`` names the offending field."""


@functools.lru_cache(maxsize=1)
def service_model() -> ServiceModel:
    """botocore's ``sesv2`` service model (loaded once)."""
    import botocore.session

    return botocore.session.get_session().get_service_model("sesv2")


def operation_model(name: str) -> OperationModel:
    """
    The model of one operation.

    :param name: e.g. ``GetExportJob``.
    """
    return service_model().operation_model(name)


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


def _extra_constraints(shape: Shape, value: Any, path: str, errors: list[str]) -> None:
    """
    Check the model constraints ParamValidator leaves to the service: enums and ``max``.

    :param shape: the value's shape.
    :param value: the (already type-checked) value.
    :param path: the dotted parameter name for messages.
    :param errors: collects messages.
    """
    kind = shape.type_name
    meta = shape.metadata
    enum = getattr(shape, "enum", None) or meta.get("enum")
    if kind == "string" and isinstance(value, str):
        if enum and value not in enum:
            errors.append(f"Invalid value for parameter {path}: {value!r}, valid values: {', '.join(enum)}")
        if "max" in meta and len(value) > meta["max"]:
            errors.append(f"Invalid length for parameter {path}: {len(value)}, valid max length: {meta['max']}")
    elif kind in ("integer", "long") and isinstance(value, int):
        if "max" in meta and value > meta["max"]:
            valid = f"{meta.get('min', 0)}-{meta['max']}"
            errors.append(f"Invalid value for parameter {path}: {value}, valid range: {valid}")
    elif kind == "structure" and isinstance(value, dict):
        members = shape.members  # type: ignore[attr-defined]
        for name, member_value in value.items():
            if name in members:
                _extra_constraints(members[name], member_value, f"{path}.{name}" if path else name, errors)
    elif kind == "list" and isinstance(value, list):
        if "max" in meta and len(value) > meta["max"]:
            errors.append(f"Invalid length for parameter {path}: {len(value)} items, valid max length: {meta['max']}")
        for i, item in enumerate(value):
            _extra_constraints(shape.member, item, f"{path}[{i}]", errors)  # type: ignore[attr-defined]
    elif kind == "map" and isinstance(value, dict):
        if "max" in meta and len(value) > meta["max"]:
            errors.append(f"Invalid length for parameter {path}: {len(value)} keys, valid max length: {meta['max']}")
        for key, item in value.items():
            _extra_constraints(shape.key, key, f"{path} (key)", errors)  # type: ignore[attr-defined]
            _extra_constraints(shape.value, item, f"{path}.{key}", errors)  # type: ignore[attr-defined]


def _check_dates(source: dict[str, Any], path: str) -> None:
    """
    EndDate must not be before StartDate.

    :param source: a data source with datetimes.
    :param path: its dotted name.
    """
    start, end = source.get("StartDate"), source.get("EndDate")
    if isinstance(start, datetime) and isinstance(end, datetime) and end < start:
        raise ValidationFailed(
            f"{path}.EndDate ({end.isoformat()}) must not be before {path}.StartDate ({start.isoformat()})"
        )


def _semantic_create(params: dict[str, Any]) -> None:
    """
    CreateExportJob rules the model cannot express.

    :param params: validated params.
    """
    destination = params.get("ExportDestination") or {}
    if "S3Url" in destination:
        raise ValidationFailed(
            "ExportDestination.S3Url is an output-only field: SES chooses the location; omit it from the request"
        )
    source = params.get("ExportDataSource") or {}
    has_metrics = "MetricsDataSource" in source
    has_insights = "MessageInsightsDataSource" in source
    if has_metrics == has_insights:
        which = "both" if has_metrics else "neither"
        raise ValidationFailed(
            "ExportDataSource must contain exactly one of MetricsDataSource and MessageInsightsDataSource "
            f"(got {which})"
        )
    if has_metrics:
        metrics = source["MetricsDataSource"]
        dims = metrics.get("Dimensions") or {}
        if len(dims) > 3:
            raise ValidationFailed(
                f"ExportDataSource.MetricsDataSource.Dimensions has {len(dims)} keys; at most 3 are allowed"
            )
        _check_dates(metrics, "ExportDataSource.MetricsDataSource")
    else:
        insights = source["MessageInsightsDataSource"]
        max_results = insights.get("MaxResults")
        if isinstance(max_results, int) and not 1 <= max_results <= 10000:
            raise ValidationFailed(
                f"ExportDataSource.MessageInsightsDataSource.MaxResults={max_results} is out of range 1..10000"
            )
        _check_dates(insights, "ExportDataSource.MessageInsightsDataSource")


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
    op = operation_model(operation)
    shape = op.input_shape
    if not isinstance(body, dict):
        raise ValidationFailed("The request body must be a JSON object")
    params: dict[str, Any] = decode(shape, dict(body)) if shape is not None else {}
    if path_params:
        params.update(path_params)
    if shape is not None:
        report = ParamValidator().validate(params, shape)
        if report.has_errors():
            text = report.generate_report().strip()
            raise ValidationFailed(text.replace("\n", " ").replace("  ", " "))
        errors: list[str] = []
        _extra_constraints(shape, params, "", errors)
        if operation == "CreateExportJob":
            _semantic_create(params)
        if errors:
            raise ValidationFailed("; ".join(errors))
    if operation == "ListExportJobs":
        _semantic_list(params)
    return params
