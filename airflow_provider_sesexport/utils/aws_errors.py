"""One place for classifying errors from SES (sync boto3 and aiobotocore raise the same botocore types)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from botocore.exceptions import (
    ClientError,
    HTTPClientError,
)
from botocore.exceptions import (
    ConnectionError as BotocoreConnectionError,
)

from airflow_provider_sesexport.exceptions import (
    SesExportJobAlreadyFinishedError,
    SesExportJobError,
    SesExportJobNotFoundError,
    SesExportVdmNotEnabledError,
)
from airflow_provider_sesexport.utils.redaction import redact_text

# Internal: nothing here is public API (import what you need from the hooks, operators, sensors and triggers).
__all__ = []

#: Error codes botocore's standard retry mode treats as throttling, plus SES's own.
THROTTLING_CODES = frozenset(
    {
        "TooManyRequestsException",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "RequestThrottled",
        "SlowDown",
        "RequestLimitExceeded",
    }
)


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a ``ClientError``, else None."""
    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code")
    return None


def error_message(exc: BaseException) -> str | None:
    """AWS's error message of a ``ClientError``, else None."""
    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Message")
    return None


def http_status(exc: BaseException) -> int | None:
    """The HTTP status of a ``ClientError``, else None."""
    if isinstance(exc, ClientError):
        return exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return None


def is_transient(exc: BaseException) -> bool:
    """
    Whether ``exc`` is throttling, a server-side (5xx) error, or a network fault or timeout.

    These outlasted botocore's own retries; a wait treats them as "not done yet", never as a failure.
    """
    if isinstance(exc, (BotocoreConnectionError, HTTPClientError, asyncio.TimeoutError, TimeoutError)):
        return True
    if isinstance(exc, ClientError):
        status = http_status(exc) or 0
        return error_code(exc) in THROTTLING_CODES or status == 429 or status >= 500
    return False


def describe(exc: BaseException) -> str:
    """A one-line description of ``exc`` that is safe to log (URLs redacted)."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        text = f"{err.get('Code')}: {err.get('Message')}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return redact_text(text)


def means_job_not_found(code: str | None, message: str | None) -> bool:
    """
    Whether an SES error says the export job does not exist.

    The model documents NotFoundException; the real service answers an unknown JobId with
    400 BadRequestException "Invalid JobId".

    :param code: the AWS error code.
    :param message: AWS's error message.
    """
    if code == "NotFoundException":
        return True
    return code == "BadRequestException" and "invalid jobid" in (message or "").lower()


#: CreateExportJob's error code when the account already has as many unfinished export jobs of the request's
#: source type as SES allows (400 "There are too many <METRICS_DATA> export jobs running - either cancel one of
#: the jobs or wait for it to complete before resubmitting.").
NO_FREE_SLOT_CODE = "LimitExceededException"

# A string, compiled on first use (and cached) by ``re``, not when a DAG file imports this module.
_CANCEL_OF_FINISHED = r"(?i)cannot cancel an export job that has an? <?([A-Za-z_]+)>? status"


def means_no_free_slot(exc: BaseException) -> bool:
    """
    Whether CreateExportJob was refused because too many export jobs are unfinished: wait for a slot, then retry.

    botocore's standard retry mode counts ``LimitExceededException`` as throttling; it is not: retrying within
    seconds does not free a slot.

    :param exc: what CreateExportJob raised.
    """
    return error_code(exc) == NO_FREE_SLOT_CODE


def stop_retrying_no_free_slot(client: Any) -> None:
    """
    Make a sesv2 ``client`` raise CreateExportJob's no-free-slot error at once instead of retrying it.

    Retried within seconds the answer stays the same, and the retries would spend CreateExportJob's rate of one
    call per second; the caller waits for a slot itself. botocore's ``needs-retry`` event has no portable
    "do not retry" answer (older versions retry on any non-None one), so the handler raises the modeled error
    botocore would have raised without retries. Registering twice is a no-op.

    :param client: a boto3 ``sesv2`` client.
    """

    def raise_at_once(response: Any = None, **kwargs: Any) -> None:
        parsed = response[1] if response is not None else None
        code = parsed.get("Error", {}).get("Code") if isinstance(parsed, dict) else None
        if code == NO_FREE_SLOT_CODE:
            raise client.exceptions.from_code(code)(parsed, "CreateExportJob")

    client.meta.events.register_first(
        "needs-retry.sesv2.CreateExportJob", raise_at_once, unique_id="sesexport-no-free-slot-no-retry"
    )


def finished_status_of_cancel_refusal(code: str | None, message: str | None) -> str | None:
    """
    The status SES names when it refuses to cancel a job that already finished, else None.

    Real SES answers CancelExportJob of a finished job with 400 BadRequestException "Cannot cancel an export
    job that has a <COMPLETED> status." (the job's status in the brackets).

    :param code: the AWS error code.
    :param message: AWS's error message.
    """
    if code != "BadRequestException":
        return None
    match = re.search(_CANCEL_OF_FINISHED, message or "")
    return match.group(1).upper() if match else None


def means_vdm_not_enabled(code: str | None, message: str | None) -> bool:
    """
    Whether an SES error says Virtual Deliverability Manager is not enabled on the account.

    Real SES answers CreateExportJob on such an account with 400 BadRequestException "To use this
    feature you must enable Virtual Deliverability Manager..." (the model documents nothing for it).

    :param code: the AWS error code.
    :param message: AWS's error message.
    """
    return code == "BadRequestException" and "must enable virtual deliverability manager" in (message or "").lower()


def translate(
    exc: ClientError, job_id: str | None = None, region: str | None = None, aws_conn_id: str | None = None
) -> Exception:
    """
    Map a modeled SES error to this provider's exceptions.

    An unknown job (:func:`means_job_not_found`) becomes :class:`SesExportJobNotFoundError`, a refused cancel of a
    finished job (:func:`finished_status_of_cancel_refusal`) :class:`SesExportJobAlreadyFinishedError`, VDM not
    enabled (:func:`means_vdm_not_enabled`) :class:`SesExportVdmNotEnabledError`; any other BadRequestException a
    :class:`SesExportJobError` that repeats AWS's message; anything else is returned unchanged.

    :param exc: the error.
    :param job_id: the job the request was about, if any.
    :param region: the region the request went to, if known (named in the not-found and VDM errors).
    :param aws_conn_id: the Airflow connection the request used (named in the not-found error).
    """
    code = error_code(exc)
    message = exc.response.get("Error", {}).get("Message")
    if job_id is not None and means_job_not_found(code, message):
        return SesExportJobNotFoundError(job_id, redact_text(message) if message else None, aws_conn_id, region)
    finished = finished_status_of_cancel_refusal(code, message)
    if job_id is not None and finished is not None:
        return SesExportJobAlreadyFinishedError(job_id, finished)
    if means_vdm_not_enabled(code, message):
        return SesExportVdmNotEnabledError(redact_text(message) if message else None, region)
    if code == "BadRequestException":
        return SesExportJobError(f"SES rejected the request: {describe(exc)}")
    return exc
