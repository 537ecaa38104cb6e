"""
Request validation: what real SES checks, in the order and (where known) the words it uses.

The emulator's own rules, written from AWS's definition of the API (botocore's ``sesv2`` service model)
and the SES v2 API reference, so that it checks a client independently of the client's own rules.
Every failure is :class:`ValidationFailed`, answered as a 400 ``BadRequestException``:

1. the destination, checked first ("1 validation error detected: Value at 'exportDestination' failed to
   satisfy constraint: Member must not be null", likewise ``exportDestination.dataFormat`` and its enum);
2. the wire: the JSON body and the path parameters become input params, timestamps (epoch seconds, or
   ISO-8601 strings) aware datetimes;
3. the model: botocore's ParamValidator (types, required and unknown members, minima), then the
   constraints it leaves to the service: enum values, maximum lengths and item counts, map sizes,
   integer maxima;
4. what the service enforces beyond the model: no ``S3Url`` in a create, exactly one data source,
   StartDate strictly before EndDate, a metrics range from midnight to midnight UTC, PageSize 1..100.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import datetime, time, timezone
from typing import Any

import botocore.session
from botocore.model import Shape
from botocore.utils import parse_timestamp
from botocore.validate import ParamValidator


class ValidationFailed(Exception):
    """The request is invalid; ``str(exc)`` names the offending field."""


CUSTOM_S3_URL = "Providing a custom S3 URL is not supported"
ONE_DATA_SOURCE = "One data source must be provided"
PARTIAL_DAYS = (
    "To get daily aggregated data you must not specify partial-day timestamps. "
    "Please make your interval go from midnight to midnight UTC."
)
#: ListExportJobs' PageSize range (the SES v2 API reference; the model gives no bounds).
PAGE_SIZES = range(1, 101)


@functools.cache
def input_shape(operation: str) -> Shape | None:
    """
    The input shape of one ``sesv2`` operation, from botocore's copy of AWS's service model.

    :param operation: the operation name, e.g. ``CreateExportJob``.
    """
    return botocore.session.get_session().get_service_model("sesv2").operation_model(operation).input_shape


def _destination_first(body: dict[str, Any]) -> None:
    """
    The destination checks real SES runs before any other, in its own wording.

    :param body: the CreateExportJob JSON body.
    """
    destination = body.get("ExportDestination")
    if destination is None:
        where, rule = "exportDestination", "Member must not be null"
    elif not isinstance(destination, dict):
        return  # a type error: the model check words it
    elif destination.get("DataFormat") is None:
        where, rule = "exportDestination.dataFormat", "Member must not be null"
    else:
        destination_shape = input_shape("CreateExportJob").members["ExportDestination"]  # type: ignore[union-attr]
        formats = destination_shape.members["DataFormat"].enum
        if not isinstance(destination["DataFormat"], str) or destination["DataFormat"] in formats:
            return
        where, rule = "exportDestination.dataFormat", f"Member must satisfy enum value set: [{', '.join(formats)}]"
    raise ValidationFailed(f"1 validation error detected: Value at '{where}' failed to satisfy constraint: {rule}")


def _wire_time(value: Any) -> Any:
    """
    A wire timestamp (epoch seconds or ISO-8601 text) as an aware datetime; any other value as it is.

    :param value: the decoded JSON value.
    """
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, tz=timezone.utc)
        if isinstance(value, str):
            return parse_timestamp(value)
    except (OverflowError, OSError, ValueError, TypeError):
        pass
    return value


def decode(shape: Shape, value: Any) -> Any:
    """
    A decoded JSON value as botocore input params (timestamps as datetimes), recursively.

    :param shape: the value's shape.
    :param value: the JSON value.
    """
    kind = shape.type_name
    if kind == "timestamp":
        return _wire_time(value)
    if kind == "structure" and isinstance(value, dict):
        members = shape.members  # type: ignore[attr-defined]
        return {name: decode(members[name], v) if name in members else v for name, v in value.items()}
    if kind == "list" and isinstance(value, list):
        return [decode(shape.member, item) for item in value]  # type: ignore[attr-defined]
    if kind == "map" and isinstance(value, dict):
        return {key: decode(shape.value, item) for key, item in value.items()}  # type: ignore[attr-defined]
    return value


def _beyond_param_validator(shape: Shape, value: Any, where: str) -> Iterator[str]:
    """
    The model constraints ParamValidator does not check, one sentence per breach.

    :param shape: the value's shape.
    :param value: the value, already type-checked by ParamValidator.
    :param where: the value's path in botocore's notation (``Metrics[0].Name``; a map key ``Dimensions key``).
    """
    bounds = shape.metadata
    kind = shape.type_name
    if kind == "structure":
        for name, item in value.items():
            member = shape.members.get(name)  # type: ignore[attr-defined]
            if member is not None:
                yield from _beyond_param_validator(member, item, f"{where}.{name}" if where else name)
    elif kind == "list":
        if len(value) > bounds.get("max", len(value)):
            yield f"Value at '{where}' has {len(value)} items: Member must have at most {bounds['max']} items"
        for index, item in enumerate(value):
            yield from _beyond_param_validator(shape.member, item, f"{where}[{index}]")  # type: ignore[attr-defined]
    elif kind == "map":
        if not bounds.get("min", 0) <= len(value) <= bounds.get("max", len(value)):
            low, high = bounds.get("min", 0), bounds.get("max", "any number of")
            yield f"Value at '{where}' has {len(value)} keys: Member must have from {low} to {high} keys"
        for key, item in value.items():
            yield from _beyond_param_validator(shape.key, key, f"{where} key")  # type: ignore[attr-defined]
            yield from _beyond_param_validator(shape.value, item, f"{where}.{key}")  # type: ignore[attr-defined]
    elif kind == "string":
        enum = shape.enum  # type: ignore[attr-defined]
        if enum and value not in enum:
            yield f"Value {value!r} at '{where}': Member must satisfy enum value set: [{', '.join(enum)}]"
        if len(value) > bounds.get("max", len(value)):
            yield f"Value at '{where}' is {len(value)} characters long: Member must have at most {bounds['max']}"
    elif kind in ("integer", "long") and value > bounds.get("max", value):
        yield f"Value {value!r} at '{where}': Member must be less than or equal to {bounds['max']}"


def _check_model(operation: str, shape: Shape, params: dict[str, Any]) -> None:
    """
    The request against the operation's model: ParamValidator first, then what it leaves to the service.

    :param operation: the operation name.
    :param shape: its input shape.
    :param params: the decoded params.
    """
    report = ParamValidator().validate(params, shape)
    if report.has_errors():
        raise ValidationFailed(report.generate_report().replace("\n", " "))
    breaches = list(_beyond_param_validator(shape, params, ""))
    if breaches:
        count = f"{len(breaches)} validation error{'s' if len(breaches) > 1 else ''} detected"
        raise ValidationFailed(f"{count} in {operation}: " + "; ".join(breaches))


def _utc(value: datetime) -> datetime:
    """
    An aware datetime in UTC; a naive one is taken as UTC, as epoch seconds on the wire are.

    :param value: the datetime.
    """
    return value.astimezone(timezone.utc) if value.utcoffset() is not None else value.replace(tzinfo=timezone.utc)


def _check_source(name: str, source: dict[str, Any]) -> None:
    """
    A data source's dates: StartDate strictly before EndDate; a metrics range in whole UTC days.

    Metrics are daily totals over ``[StartDate, EndDate)``; a Message Insights range is
    ``[StartDate, EndDate]`` at any time of day.

    :param name: ``MetricsDataSource`` or ``MessageInsightsDataSource``.
    :param source: the data source, dates decoded.
    """
    start, end = source["StartDate"], source["EndDate"]
    if not _utc(start) < _utc(end):
        raise ValidationFailed(
            f"Invalid date range: ExportDataSource.{name}.EndDate ({end.isoformat()}) "
            f"must be after StartDate ({start.isoformat()})"
        )
    if name == "MetricsDataSource" and any(_utc(day).time() != time.min for day in (start, end)):
        raise ValidationFailed(PARTIAL_DAYS)


def _check_create(params: dict[str, Any]) -> None:
    """
    CreateExportJob's rules beyond the model, worded as real SES words them.

    :param params: the params, past the model check.
    """
    if "S3Url" in params["ExportDestination"]:
        raise ValidationFailed(CUSTOM_S3_URL)
    sources = [
        name for name in ("MetricsDataSource", "MessageInsightsDataSource") if name in params["ExportDataSource"]
    ]
    if len(sources) != 1:
        raise ValidationFailed(ONE_DATA_SOURCE)
    _check_source(sources[0], params["ExportDataSource"][sources[0]])


def validate_request(operation: str, body: Any, path_params: dict[str, str] | None = None) -> dict[str, Any]:
    """
    Decode and validate one request; return botocore-style params (datetimes for timestamps).

    :param operation: the operation name, e.g. ``CreateExportJob``.
    :param body: the decoded JSON body (``{}`` when empty).
    :param path_params: URI parameters (e.g. ``{"JobId": ...}``).
    :raises ValidationFailed: with a message naming the field.
    """
    shape = input_shape(operation)
    if not isinstance(body, dict):
        raise ValidationFailed("The request body must be a JSON object")
    if operation == "CreateExportJob":
        _destination_first(body)
    params: dict[str, Any] = {**(decode(shape, body) if shape is not None else {}), **(path_params or {})}
    if shape is not None:
        _check_model(operation, shape, params)
    if operation == "CreateExportJob":
        _check_create(params)
    elif operation == "ListExportJobs" and "PageSize" in params and params["PageSize"] not in PAGE_SIZES:
        raise ValidationFailed(f"PageSize={params['PageSize']} is out of range 1..100")
    return params
