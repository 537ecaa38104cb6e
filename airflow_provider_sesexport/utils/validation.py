"""One place for checking user input before any request goes to AWS."""

from __future__ import annotations

from typing import Any

from airflow_provider_sesexport._compat import AirflowFailException

_UPSTREAM_HINT = (
    "If it is rendered from an upstream XCom, e.g. \"{{ ti.xcom_pull(task_ids='create_export') }}\", that XCom "
    "did not arrive: check the task id, and that the upstream task ran and succeeded."
)


class SesExportInputError(AirflowFailException, ValueError):
    """A parameter has a value no request could succeed with. Retrying does not help, so no retries burn."""


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
