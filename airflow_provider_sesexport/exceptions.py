"""Every error the SES export-job hook, sensor, operators, transfers and trigger raise."""

from __future__ import annotations

from typing import Any

from airflow_provider_sesexport._compat import AirflowException, AirflowFailException
from airflow_provider_sesexport.utils.redaction import redact_url


class SesExportJobError(AirflowException):
    """Base error for SES export jobs."""


class SesExportInputError(AirflowFailException, ValueError):
    """A parameter has a value no request could succeed with. Retrying does not help, so no retries burn."""


class _SesExportJobEndedBadly(SesExportJobError):
    """An export job reached a terminal failure state; carries what AWS said about it."""

    verb = "ended"

    def __init__(
        self,
        job_id: str,
        job_status: str,
        error_message: str | None = None,
        failed_records_url: str | None = None,
    ) -> None:
        self.job_id = job_id
        self.job_status = job_status
        self.error_message = error_message
        self.failed_records_url: str | None = redact_url(failed_records_url)
        message = f"SES export job {job_id!r} {self.verb} with status {job_status}"
        if error_message:
            message += f": {error_message}"
        if self.failed_records_url:
            message += f" (failed records: {self.failed_records_url})"
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        # Keeps the error picklable (Airflow may ship exceptions across processes).
        return (type(self), (self.job_id, self.job_status, self.error_message, self.failed_records_url))


class SesExportJobFailedError(_SesExportJobEndedBadly, AirflowFailException):
    """The export job FAILED. Fails the task without spending retries."""

    verb = "failed"


class SesExportJobCancelledError(_SesExportJobEndedBadly, AirflowFailException):
    """The export job was CANCELLED. Fails the task without spending retries."""

    verb = "was cancelled"


class SesExportJobNotFoundError(SesExportJobError):
    """
    SES does not know the export job (400 "Invalid JobId", or the model's NotFoundException).

    The message names where SES was asked: the connection id and the region the request went to.

    :param job_id: the job asked about.
    :param detail: AWS's message, redacted.
    :param aws_conn_id: the Airflow connection the request used (None: boto3's default credentials).
    :param region: the region the request went to, if known.
    """

    def __init__(
        self, job_id: str, detail: str | None = None, aws_conn_id: str | None = None, region: str | None = None
    ) -> None:
        self.job_id = job_id
        self.detail = detail
        self.aws_conn_id = aws_conn_id
        self.region = region
        where = f"region {region!r}" if region else "the region the client used"
        through = f"connection aws_conn_id={aws_conn_id!r}" if aws_conn_id else "boto3's default credentials"
        message = (
            f"SES export job {job_id!r} was not found in {where} of the account behind {through} "
            "(check job_id, aws_conn_id and region_name: a job exists in one account and region only)"
        )
        if detail:
            message += f": {detail}"
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.job_id, self.detail, self.aws_conn_id, self.region))


class SesExportVdmNotEnabledError(SesExportJobError, AirflowFailException):
    """
    SES refused CreateExportJob because Virtual Deliverability Manager is not enabled on the account.

    Retrying does not help until someone enables VDM, so no retries burn; the message says how.

    :param aws_message: AWS's error message.
    :param region: the region the request went to, if known.
    """

    def __init__(self, aws_message: str | None = None, region: str | None = None) -> None:
        self.aws_message = aws_message
        self.region = region
        where = f" in region {region}" if region else ""
        command = "aws sesv2 put-account-vdm-attributes --vdm-attributes VdmEnabled=ENABLED"
        if region:
            command += f" --region {region}"
        message = (
            f"SES refused CreateExportJob: Virtual Deliverability Manager (VDM) is not enabled on this AWS account"
            f"{where}, and export jobs need it. Enable it in the SES console (Virtual Deliverability Manager, "
            f"Get started / Settings) or with `{command}`, then clear the task."
        )
        if aws_message:
            message += f" AWS said: {aws_message}"
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.aws_message, self.region))


class SesExportJobAlreadyFinishedError(SesExportJobError):
    """CancelExportJob refused: the job already finished (SES: "Cannot cancel an export job that has a <…> status")."""

    def __init__(self, job_id: str, job_status: str) -> None:
        self.job_id = job_id
        self.job_status = job_status
        super().__init__(f"SES export job {job_id!r} cannot be cancelled: it is already {job_status}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.job_id, self.job_status))


class SesExportNoSlotError(SesExportJobError):
    """
    CreateExportJob kept answering "too many export jobs running" for longer than ``slot_wait_timeout``.

    An ordinary failure: retries apply, and a retry waits for a slot again.
    """


class SesExportDownloadError(SesExportJobError):
    """The export file could not be downloaded (after fresh URLs and resumes were tried)."""


class SesExportContentError(SesExportDownloadError):
    """
    The download is not an export file of the job's ``DataFormat`` (a proxy's error page, a captive portal ...).

    Raised from the response's content type and first bytes, before anything is stored or loaded. An ordinary
    failure: retries apply, since what answered in S3's place may be gone on the next try.
    """


class SesExportDestinationExistsError(SesExportJobError, AirflowFailException):
    """
    The destination object exists and ``replace`` is False: it was there before the copy, or another writer
    created it while the copy ran (S3 refused the conditional write). Retrying does not help.

    :param uri: the destination, ``s3://bucket/key``.
    :param during_copy: True when S3 refused the conditional write (another writer won the race).
    """

    def __init__(self, uri: str, during_copy: bool = False) -> None:
        self.uri = uri
        self.during_copy = during_copy
        if during_copy:
            what = (
                f"{uri} was created by another writer while this copy ran (S3 refused the conditional write: "
                "412 PreconditionFailed); the upload was aborted and the other writer's object is left as it is"
            )
        else:
            what = f"{uri} already exists"
        super().__init__(
            f"{what}: set replace=True to overwrite it, or write to another key "
            "(e.g. one with '{{ ds }}' or '{{ run_id }}' in it)."
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.uri, self.during_copy))


class SesExportTransferError(SesExportJobError, AirflowFailException):
    """The copied file does not match what SES said about it. Retrying the same export does not help."""


class SesExportRecordsError(SesExportJobError, AirflowFailException):
    """
    The export file is not in a layout the reader knows (or disagrees with the job's source type or format).

    The message names the cause (line, column or character offset), never a value from the file other
    than a timestamp. Retrying the same export does not help.
    """


class SesExportLoadError(SesExportJobError):
    """
    Writing an export's rows into a SQL table failed part-way (the database's error is its cause).

    The batch being written was rolled back; the batches committed before it hold rows a re-run writes
    again in place, so retrying (or re-running) the load repairs the table.
    """


class SesDeliverabilityBreachError(SesExportJobError, AirflowFailException):
    """
    A metrics export's bounce or complaint rate reached its threshold (``on_breach="fail"``). Retrying the same
    export does not help: the rates are what they are.

    :param job_id: the export job checked.
    :param lines: one line per breach (group, metric, rate as a percentage, threshold, send volume).
    """

    def __init__(self, job_id: str, lines: list[str]) -> None:
        self.job_id = job_id
        self.lines = list(lines)
        listed = "".join(f"\n  - {line}" for line in self.lines)
        super().__init__(
            f"Deliverability check of SES export job {job_id!r} failed: {len(self.lines)} breach(es) of the "
            f"bounce/complaint thresholds (SES reviews an account at 5% bounce / 0.1% complaint):{listed}"
        )

    def __reduce__(self) -> tuple:
        return (type(self), (self.job_id, self.lines))
