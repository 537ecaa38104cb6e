"""
Checking a request against botocore's ``sesv2`` model.

:func:`check_request` runs botocore's own ParamValidator (types, required and unknown members, ``min``),
then the constraints it leaves to the service (enums, ``max`` lengths and values, map sizes), and
returns neutral :class:`Violation` objects, which the provider words as a ``SesExportInputError`` naming the
user's parameter. :func:`date_range_violation` and :func:`partial_day_violation` are SES rules beyond the model.
The emulator (``ses-export-emulator``) has its own copy of these rules, written independently, so each checks the other.

botocore is imported on first use, so importing this module from a DAG file costs nothing.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from typing import Any, NamedTuple

# Internal: nothing here is public API (import what you need from the hooks, operators, sensors and triggers).
__all__ = []


class Violation(NamedTuple):
    """
    One place where a request breaks a rule.

    :param path: where, from the request root in botocore's notation, e.g.
        ``ExportDataSource.MetricsDataSource.Metrics[0].Name``; a map key is ``<map path> key``.
    :param value: the offending value.
    :param expected: what is expected there, e.g. ``one of CSV, JSON``.
    """

    path: str
    value: Any
    expected: str

    @property
    def member(self) -> str:
        """The top-level request member the path starts with, e.g. ``ExportDataSource``."""
        end = len(self.path)
        for separator in ".[ ":
            index = self.path.find(separator)
            if index != -1:
                end = min(end, index)
        return self.path[:end]


class ParamValidationFailed(ValueError):
    """
    botocore's ParamValidator rejected the request; no deeper check ran.

    :param operation: the operation name.
    :param report: botocore's report, one error per line, without its ``Parameter validation failed:`` header.
    """

    def __init__(self, operation: str, report: str) -> None:
        super().__init__(report)
        self.operation = operation
        self.report = report


@functools.lru_cache(maxsize=1)
def service_model() -> Any:
    """botocore's ``sesv2`` service model (loaded once)."""
    import botocore.session

    return botocore.session.get_session().get_service_model("sesv2")


def operation_model(operation: str) -> Any:
    """
    The model of one ``sesv2`` operation.

    :param operation: the operation name, e.g. ``GetExportJob``.
    """
    return service_model().operation_model(operation)


def check_request(operation: str, request: Mapping[str, Any]) -> list[Violation]:
    """
    Check ``request`` against the model of ``operation``; return every constraint it breaks.

    :param operation: the operation name, e.g. ``CreateExportJob``.
    :param request: the request parameters as botocore takes them (timestamps as datetimes).
    :raises ParamValidationFailed: if botocore's ParamValidator rejects the request.
    :return: the violations of the constraints ParamValidator skips, in request order (empty: valid).
    """
    from botocore.validate import ParamValidator

    shape = operation_model(operation).input_shape
    if shape is None:
        return []
    report = ParamValidator().validate(request, shape)
    if report.has_errors():
        text = report.generate_report().replace("Parameter validation failed:", "").strip()
        raise ParamValidationFailed(operation, text)
    violations: list[Violation] = []
    _walk(shape, request, "", violations)
    return violations


def _walk(shape: Any, value: Any, path: str, violations: list[Violation]) -> None:
    """
    Collect the violations of the model constraints botocore's ParamValidator leaves to the service.

    :param shape: the value's shape.
    :param value: the value (already type-checked by ParamValidator; others are skipped).
    :param path: the value's path from the request root (``""`` for the request itself).
    :param violations: collects the violations.
    """
    kind = shape.type_name
    minimum, maximum = shape.metadata.get("min"), shape.metadata.get("max")
    if kind == "structure" and isinstance(value, Mapping):
        for name, member in shape.members.items():
            if name in value:
                _walk(member, value[name], f"{path}.{name}" if path else name, violations)
    elif kind == "list" and isinstance(value, (list, tuple)):
        if maximum is not None and len(value) > maximum:
            violations.append(Violation(path, value, f"at most {maximum} item(s)"))
        for i, item in enumerate(value):
            _walk(shape.member, item, f"{path}[{i}]", violations)
    elif kind == "map" and isinstance(value, Mapping):
        # ParamValidator checks no map size at all: both bounds are ours
        if minimum is not None and len(value) < minimum:
            violations.append(Violation(path, value, f"at least {minimum} key(s)"))
        if maximum is not None and len(value) > maximum:
            violations.append(Violation(path, value, f"at most {maximum} key(s)"))
        for key, item in value.items():
            _walk(shape.key, key, f"{path} key", violations)
            _walk(shape.value, item, f"{path}.{key}", violations)
    elif kind == "string" and isinstance(value, str):
        if shape.enum and value not in shape.enum:
            violations.append(Violation(path, value, "one of " + ", ".join(shape.enum)))
        if maximum is not None and len(value) > maximum:
            violations.append(Violation(path, value, f"at most {maximum} character(s)"))
    elif kind in ("integer", "long") and isinstance(value, int) and maximum is not None and value > maximum:
        violations.append(Violation(path, value, f"an integer <= {maximum}"))


def date_range_violation(source: Mapping[str, Any], path: str) -> Violation | None:
    """
    SES's date rule for an export data source: StartDate strictly before EndDate (else 400 "Invalid date range").

    Dates that are not datetimes are left to the other checks; a naive datetime counts as UTC, as on the wire.

    :param source: a ``MetricsDataSource`` or ``MessageInsightsDataSource`` with datetime dates.
    :param path: the source's path from the request root, e.g. ``ExportDataSource.MetricsDataSource``.
    :return: the violation (on ``EndDate``), or None if the range is valid or not checkable.
    """
    start, end = source.get("StartDate"), source.get("EndDate")
    if not isinstance(start, dt.datetime) or not isinstance(end, dt.datetime):
        return None
    if _as_utc(start) < _as_utc(end):
        return None
    return Violation(f"{path}.EndDate", end, f"a time after StartDate ({start.isoformat()})")


def partial_day_violation(source: Mapping[str, Any], path: str) -> Violation | None:
    """
    SES's rule for a metrics export: StartDate and EndDate both at midnight UTC (else 400 "... partial-day timestamps").

    Metrics are daily totals over ``[StartDate, EndDate)``; a Message Insights range may start and end at any time,
    so call this for a ``MetricsDataSource`` only. Dates that are not datetimes are left to the other checks; a
    naive datetime counts as UTC, as on the wire.

    :param source: a ``MetricsDataSource`` with datetime dates.
    :param path: the source's path from the request root, e.g. ``ExportDataSource.MetricsDataSource``.
    :return: the violation (on the first date that is not midnight UTC, as a UTC datetime), or None.
    """
    for field in ("StartDate", "EndDate"):
        value = source.get(field)
        if not isinstance(value, dt.datetime):
            continue
        utc = _as_utc(value).astimezone(dt.timezone.utc)
        if utc != utc.replace(hour=0, minute=0, second=0, microsecond=0):
            return Violation(f"{path}.{field}", utc, "midnight UTC (00:00:00+00:00)")
    return None


def _as_utc(value: dt.datetime) -> dt.datetime:
    """
    ``value`` as an aware datetime, a naive one taken as UTC.

    :param value: the datetime.
    """
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None or value.utcoffset() is None else value
