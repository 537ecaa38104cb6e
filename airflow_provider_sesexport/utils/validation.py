"""One place for checking user input before any request goes to AWS."""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
from typing import Any

import botocore

from airflow_provider_sesexport.exceptions import SesExportInputError
from airflow_provider_sesexport.utils.model_validation import (
    ParamValidationFailed,
    Violation,
    check_request,
    date_range_violation,
    operation_model,
    partial_day_violation,
)

__all__ = ["SesExportInputError"]  # re-exported: it lived here first

log: logging.Logger = logging.getLogger(__name__)

_UPSTREAM_HINT = (
    "If it is rendered from an upstream XCom, e.g. \"{{ ti.xcom_pull(task_ids='create_export') }}\", that XCom "
    "did not arrive: check the task id, and that the upstream task ran and succeeded."
)


def invalid(param: str, value: Any, expected: str, hint: str = "") -> SesExportInputError:
    """Build the error for ``param``: names it, shows the rendered value, says what is expected."""
    message = f"Invalid {param}={value!r}: expected {expected}."
    if hint:
        message += f" {hint}"
    return SesExportInputError(message)


def validate_job_id(value: Any, param: str = "job_id") -> str:
    """
    Return ``value`` if it is a usable SES export job id, else raise :class:`SesExportInputError`.

    Rejects None, non-strings, empty or whitespace-only strings and the string ``"None"`` (what a
    template renders when an upstream XCom did not arrive).

    :param value: the rendered value.
    :param param: the parameter name to show in the error.
    """
    if not isinstance(value, str):
        raise invalid(param, value, "a non-empty string (the JobId CreateExportJob returned)", _UPSTREAM_HINT)
    stripped = value.strip()
    if not stripped or stripped in {"None", "null"}:
        raise invalid(param, value, "a non-empty string (the JobId CreateExportJob returned)", _UPSTREAM_HINT)
    if stripped != value or any(ch.isspace() for ch in value):
        raise invalid(param, value, "a job id without whitespace")
    return value


# -- CreateExportJob requests -----------------------------------------------------------------------

DATA_FORMATS = ("CSV", "JSON")
_DATA_SOURCES = ("MetricsDataSource", "MessageInsightsDataSource")
_DATE_FIELDS = ("StartDate", "EndDate")
_DESTINATION_HINT = (
    "SES chooses where the export file goes and refuses a custom S3 URL ('Providing a custom S3 URL is not "
    "supported'): give only data_format, and copy the finished file into your bucket with SesExportToS3Operator."
)
#: the operator argument each CreateExportJob request member comes from
_CREATE_PARAMS = {"ExportDataSource": "export_data_source", "ExportDestination": "data_format"}


def to_utc_datetime(value: Any, param: str) -> dt.datetime:
    """
    Turn a datetime, a date or an ISO-8601 string (a rendered ``{{ data_interval_start }}``) into aware UTC.

    A date (or a date-only string) means its midnight UTC. A naive datetime is rejected: which day's data
    it asks for would depend on the worker's time zone.

    :param value: the value to convert.
    :param param: the parameter path to name in the error.
    """
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            value = dt.datetime.fromisoformat(text) if "T" in text or " " in text else dt.date.fromisoformat(text)
        except ValueError:
            raise invalid(
                param,
                value,
                "a datetime, a date or an ISO-8601 string such as '2026-11-01T00:00:00+00:00'",
                "Use '{{ data_interval_start }}' / '{{ data_interval_end }}' for the DAG run's data interval.",
            ) from None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise invalid(
                param,
                value.isoformat() if isinstance(value, dt.datetime) else value,
                "a timezone-aware datetime (a naive one is ambiguous)",
                "Add the offset, e.g. '2026-11-01T00:00:00+00:00', or pass a date for midnight UTC; "
                "'{{ data_interval_start }}' renders with its offset.",
            )
        return value.astimezone(dt.timezone.utc)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc)
    raise invalid(param, value, "a datetime, a date or an ISO-8601 string")


def validate_against_model(operation: str, request: dict[str, Any], params: dict[str, str]) -> None:
    """
    Validate ``request`` against botocore's ``sesv2`` model for ``operation``, before anything is sent.

    Uses botocore's own ParamValidator (types, required members, minimums) plus the model's enums and
    maximums (:func:`~airflow_provider_sesexport.utils.model_validation.check_request`), and names the
    offending member in the user's terms, e.g. ``export_data_source.MetricsDataSource.Metrics[0].Name``.

    :param operation: the operation name, e.g. ``CreateExportJob``.
    :param request: the request parameters.
    :param params: the user-facing parameter each top-level request member came from,
        e.g. ``{"ExportDataSource": "export_data_source"}``.
    """
    try:
        violations = check_request(operation, request)
    except ParamValidationFailed as exc:
        details = exc.report
        for member, param in params.items():
            details = re.sub(rf"\b{member}\b", param, details)
        raise SesExportInputError(f"Invalid {operation} request: {details}") from None
    if violations:
        raise _input_error(violations[0], params)


def _input_error(violation: Violation, params: dict[str, str], hint: str = "") -> SesExportInputError:
    """
    The error for ``violation``, its path starting with the user-facing parameter instead of the request member.

    :param violation: the violation.
    :param params: the user-facing parameter each top-level request member came from.
    :param hint: how to fix it, appended to the message.
    """
    member = violation.member
    path = params.get(member, member) + violation.path[len(member) :]
    value = violation.value
    return invalid(path, value.isoformat() if isinstance(value, dt.datetime) else value, violation.expected, hint)


_PARTIAL_DAY_HINT = (
    "A metrics export covers whole UTC days, [StartDate, EndDate), and SES refuses partial days "
    "('To get daily aggregated data you must not specify partial-day timestamps'). "
    "Use the data interval of a daily schedule in UTC, '{{ data_interval_start }}' / '{{ data_interval_end }}' "
    "(e.g. CronDataIntervalTimetable('0 0 * * *', timezone='UTC')), dates such as '{{ data_interval_start | ds }}', "
    "or a UTC datetime with .replace(hour=0, minute=0, second=0, microsecond=0)."
)


def _check_max_results(source: dict[str, Any]) -> None:
    """
    ``MessageInsightsDataSource.MaxResults``: an integer within the model's bounds (1..10,000), if given.

    :param source: the ``MessageInsightsDataSource``.
    """
    if "MaxResults" not in source:
        return
    value = source["MaxResults"]
    shape = _source_shape(operation_model("CreateExportJob"), "MessageInsightsDataSource").members["MaxResults"]
    low, high = shape.metadata.get("min", 1), shape.metadata.get("max", 10_000)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise invalid(
            "export_data_source.MessageInsightsDataSource.MaxResults",
            value,
            f"an integer from {low} to {high:,}, or leave it out",
            f"SES exports at most {high:,} messages (a random sample of {high:,} when more match): for more, "
            "split the range into several exports or narrow it with Include/Exclude filters.",
        )


#: Names newer sesv2 models added (absent from MWAA 2.10.3's botocore 1.35.36), and where they go:
#: a metrics dimension (a ``Dimensions`` key), or a Message Insights filter (an ``Include``/``Exclude`` member).
_NEWER_MODEL_DIMENSIONS = ("TENANT_NAME",)
_NEWER_MODEL_FILTERS = ("TenantName",)


def _source_shape(operation: Any, name: str) -> Any:
    return operation.input_shape.members["ExportDataSource"].members[name]


def _check_model_knows(name: str, source: dict[str, Any]) -> None:
    """
    Reject a name the installed botocore's sesv2 model lacks but newer ones have, saying to upgrade botocore.

    Without this, botocore refuses such a request with an "unknown parameter" or enum error that
    does not say the name is real (and works with a newer botocore).

    :param name: the data source's member name.
    :param source: the data source.
    """
    shape = _source_shape(operation_model("CreateExportJob"), name)
    missing: list[tuple[str, str]] = []
    if name == "MetricsDataSource":
        dimensions = source.get("Dimensions")
        known = shape.members["Dimensions"].key.enum or []
        if isinstance(dimensions, dict):
            missing += [("Dimensions", k) for k in _NEWER_MODEL_DIMENSIONS if k in dimensions and k not in known]
    else:
        for field in ("Include", "Exclude"):
            filters = source.get(field)
            if isinstance(filters, dict) and field in shape.members:
                known = shape.members[field].members
                missing += [(field, k) for k in _NEWER_MODEL_FILTERS if k in filters and k not in known]
    if missing:
        field, key = missing[0]
        raise SesExportInputError(
            f"Invalid export_data_source.{name}.{field}: {key!r} is not in the sesv2 model of the installed "
            f"botocore {botocore.__version__}, which is older than SES's {key} support, so boto3 cannot send it. "
            "Upgrade boto3 and botocore (pip install --upgrade boto3 botocore; on MWAA, a newer image or a "
            f"requirements.txt that allows them), or leave {key} out."
        )


def _warn_if_in_the_future(source: dict[str, Any], name: str) -> None:
    """
    Warn when ``StartDate`` is later than now: SES takes the request, and the export holds no data.

    Usually a date taken from the wrong end of the data interval (``{{ data_interval_end }}`` as StartDate) or a
    run whose logical date is ahead of the clock.

    :param source: the data source, its dates already aware UTC datetimes.
    :param name: the data source's member name.
    """
    start, now = source["StartDate"], dt.datetime.now(dt.timezone.utc)
    if start > now:
        log.warning(
            "export_data_source.%s.StartDate=%s is in the future (now %s): SES has no data for that range yet, so "
            "the export will be empty. Use '{{ data_interval_start }}' / '{{ data_interval_end }}' for the run's "
            "data interval.",
            name,
            start.isoformat(),
            now.isoformat(timespec="seconds"),
        )


class CreateExportJobRequest(dict[str, Any]):
    """A CreateExportJob request built by :func:`build_create_export_job_request`: normalised and validated."""


def build_create_export_job_request(export_data_source: Any, data_format: Any) -> CreateExportJobRequest:
    """
    Build a CreateExportJob request from operator arguments, normalised and validated against botocore's model.

    ``StartDate``/``EndDate`` may be datetimes, dates or ISO-8601 strings; they become aware UTC datetimes.

    :param export_data_source: ``ExportDataSource`` as the API takes it: exactly one of
        ``MetricsDataSource`` or ``MessageInsightsDataSource``.
    :param data_format: ``CSV`` or ``JSON``.
    :return: ``{"ExportDataSource": ..., "ExportDestination": {"DataFormat": ...}}``.
    """
    if data_format not in DATA_FORMATS:
        raise invalid("data_format", data_format, "'CSV' or 'JSON'")
    if not isinstance(export_data_source, dict):
        raise invalid(
            "export_data_source",
            export_data_source,
            "a dict with exactly one of " + " or ".join(_DATA_SOURCES),
            "Pass it as a dict, as the CreateExportJob API takes it.",
        )
    chosen = [name for name in _DATA_SOURCES if export_data_source.get(name) is not None]
    unknown = sorted(set(export_data_source) - set(_DATA_SOURCES))
    if unknown:
        raise invalid(
            f"export_data_source.{unknown[0]}",
            export_data_source[unknown[0]],
            "no such member; use " + " or ".join(_DATA_SOURCES),
            _DESTINATION_HINT if unknown[0] in ("ExportDestination", "S3Url") else "",
        )
    if len(chosen) != 1:
        raise invalid("export_data_source", export_data_source, "exactly one of " + " or ".join(_DATA_SOURCES))
    name = chosen[0]
    source = export_data_source[name]
    if not isinstance(source, dict):
        raise invalid(f"export_data_source.{name}", source, "a dict")
    source = dict(source)
    for field in _DATE_FIELDS:
        if source.get(field) is None:
            raise invalid(
                f"export_data_source.{name}.{field}", source.get(field), "a datetime, date or ISO-8601 string"
            )
        source[field] = to_utc_datetime(source[field], f"export_data_source.{name}.{field}")
    date_range = date_range_violation(source, f"ExportDataSource.{name}")
    if date_range is not None:
        raise _input_error(date_range, _CREATE_PARAMS)
    if name == "MetricsDataSource":
        partial_day = partial_day_violation(source, f"ExportDataSource.{name}")
        if partial_day is not None:
            raise _input_error(partial_day, _CREATE_PARAMS, _PARTIAL_DAY_HINT)
    else:
        _check_max_results(source)
    _warn_if_in_the_future(source, name)
    _check_model_knows(name, source)
    request = CreateExportJobRequest(ExportDataSource={name: source}, ExportDestination={"DataFormat": data_format})
    validate_against_model("CreateExportJob", request, _CREATE_PARAMS)
    return request


def validate_seconds(value: Any, param: str) -> float:
    """
    Return ``value`` as float seconds if it is a finite number >= 0, else raise :class:`SesExportInputError`.

    :param value: the value.
    :param param: the parameter name to show in the error.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise invalid(param, value, "a finite number of seconds >= 0")
    return float(value)


#: The shortest pause between two polls of one wait (``poke_interval``, ``waiter_delay``, ``poll_interval``).
#: Export jobs run for minutes; a shorter interval only spends SES's request rate, which every wait on the
#: account shares (the triggerer's shared poller checks each job at its own wait's interval, so a short one
#: adds cycles of 2 + pages calls).
MIN_POLL_INTERVAL = 1.0


def validate_poll_interval(value: Any, param: str) -> float:
    """
    Return ``value`` as float seconds if it is a finite number >= :data:`MIN_POLL_INTERVAL`, else raise
    :class:`SesExportInputError`.

    :param value: the value.
    :param param: the parameter name to show in the error.
    """
    seconds = validate_seconds(value, param)
    if seconds < MIN_POLL_INTERVAL:
        raise invalid(
            param,
            value,
            f"at least {MIN_POLL_INTERVAL:g} second(s) between polls",
            "An export job takes minutes, and every poll spends the SES request rate the account's other waits "
            f"share: use e.g. {param}=30.",
        )
    return seconds


def validate_integer(value: Any, param: str, minimum: int) -> int:
    """
    Return ``value`` if it is an integer (not a bool) >= ``minimum``, else raise :class:`SesExportInputError`.

    :param value: the value.
    :param param: the parameter name to show in the error.
    :param minimum: the smallest value allowed (1 for attempts, page sizes and batch sizes; 0 for counts).
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise invalid(param, value, f"an integer >= {minimum}")
    return value


def validate_deadline(value: Any, param: str) -> dt.datetime | None:
    """
    Return ``value`` as an aware UTC datetime (None stays None): a datetime or an ISO-8601 date-time string.

    :param value: the value.
    :param param: the parameter name to show in the error.
    """
    if value is None:
        return None
    if not isinstance(value, (str, dt.datetime)):
        raise invalid(param, value, "None, a datetime or an ISO-8601 string such as '2026-11-01T06:00:00+00:00'")
    return to_utc_datetime(value, param)


def build_list_export_jobs_request(
    export_source_type: Any = None, job_status: Any = None, page_size: Any = None
) -> dict[str, Any]:
    """
    Build a ListExportJobs request from hook arguments, validated against botocore's model.

    :param export_source_type: ``METRICS_DATA``, ``MESSAGE_INSIGHTS`` or None (every type).
    :param job_status: a ``JobStatus`` or None (every status).
    :param page_size: jobs per page, an integer >= 1, or None (the service's default).
    """
    request: dict[str, Any] = {}
    if export_source_type is not None:
        request["ExportSourceType"] = export_source_type
    if job_status is not None:
        request["JobStatus"] = job_status
    if page_size is not None:
        request["PageSize"] = validate_integer(page_size, "page_size", 1)
    validate_against_model(
        "ListExportJobs",
        request,
        {"ExportSourceType": "export_source_type", "JobStatus": "job_status", "PageSize": "page_size"},
    )
    return request


def validate_fraction(value: Any, param: str, hint: str = "") -> float | None:
    """
    Return ``value`` as a float in (0, 1] (None stays None: the check is off), else raise :class:`SesExportInputError`.

    :param value: the value.
    :param param: the parameter name to show in the error.
    :param hint: what to write instead (e.g. the default).
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise invalid(param, value, "a fraction in (0, 1] (0.05 is 5%), or None to skip this check", hint)
    return float(value)


def validate_choice(value: Any, param: str, choices: tuple[str, ...]) -> str:
    """
    Return ``value`` if it is one of ``choices``, else raise :class:`SesExportInputError`.

    :param value: the value.
    :param param: the parameter name to show in the error.
    :param choices: the accepted values.
    """
    if value not in choices:
        raise invalid(param, value, "one of " + ", ".join(repr(c) for c in choices))
    return str(value)
