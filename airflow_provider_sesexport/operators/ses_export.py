"""Operators for Amazon SES v2 export jobs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields

from airflow_provider_sesexport.exceptions import SesExportJobError
from airflow_provider_sesexport.hooks.ses_export import SesExportJobHook
from airflow_provider_sesexport.utils.job_outcome import evaluate_export_job
from airflow_provider_sesexport.utils.job_summary import s3_url_of, utcnow
from airflow_provider_sesexport.utils.redaction import redact_url
from airflow_provider_sesexport.utils.validation import validate_job_id

if TYPE_CHECKING:
    from airflow_provider_sesexport._compat import Context


class SesExportJobResultOperator(AwsBaseOperator[SesExportJobHook]):
    """
    Read a finished SES v2 export job and hand its results to downstream tasks through XCom.

    Calls GetExportJob once. On COMPLETED it pushes the XCom keys ``statistics`` (AWS's
    ``ProcessedRecordsCount`` / ``ExportedRecordsCount``, a missing count is null), ``s3_url`` (the
    full pre-signed URL), ``s3_url_expires_at`` (ISO-8601 UTC, five minutes after GetExportJob
    returned it), ``job_id`` and ``job_status``, and returns the job summary. FAILED and CANCELLED
    raise the same typed errors as :class:`~airflow_provider_sesexport.sensors.ses_export.SesExportJobSensor`;
    a job that has not finished raises :class:`~airflow_provider_sesexport.exceptions.SesExportJobError`.

    The ``s3_url`` expires five minutes after this task read it: a downstream task that may start
    later should call ``SesExportJobHook.get_export_download_url`` itself (or use
    ``SesExportToS3Operator``) instead of using the pushed URL.

    :param job_id: the export job's id (templated).
    :param aws_conn_id: The Airflow connection used for AWS credentials.
        If this is ``None`` or empty then the default boto3 behaviour is used. If
        running Airflow in a distributed manner and aws_conn_id is None or
        empty, then default boto3 configuration would be used (and must be
        maintained on each worker node).
    :param region_name: AWS region_name. If not specified then the default boto3 behaviour is used.
    :param verify: Whether or not to verify SSL certificates. See:
        https://boto3.amazonaws.com/v1/documentation/api/latest/reference/core/session.html
    :param botocore_config: Configuration dictionary (key-values) for botocore client. See:
        https://botocore.amazonaws.com/v1/documentation/api/latest/reference/config.html
    """

    aws_hook_class = SesExportJobHook
    template_fields: Sequence[str] = aws_template_fields("job_id")
    ui_color = "#ffd89b"

    def __init__(self, *, job_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job_id = job_id

    def execute(self, context: Context) -> dict[str, Any]:
        job_id = validate_job_id(self.job_id)
        job = self.hook.get_export_job(job_id)
        done, summary = evaluate_export_job(job_id, job, utcnow(), self.log)
        if not done:
            raise SesExportJobError(
                f"SES export job {job_id!r} has not finished (status {summary['job_status']}); "
                "put SesExportJobSensor upstream of this task so it runs once the job is COMPLETED."
            )
        s3_url = s3_url_of(job)
        ti = context["ti"]
        ti.xcom_push(key="statistics", value=summary["statistics"])
        ti.xcom_push(key="s3_url", value=s3_url)
        ti.xcom_push(key="s3_url_expires_at", value=summary["s3_url_expires_at"])
        ti.xcom_push(key="job_id", value=summary["job_id"])
        ti.xcom_push(key="job_status", value=summary["job_status"])
        self.log.info(
            "SES export job %s: statistics %s, export file %s (URL valid until %s)",
            job_id,
            summary["statistics"],
            redact_url(s3_url),
            summary["s3_url_expires_at"],
        )
        return summary
