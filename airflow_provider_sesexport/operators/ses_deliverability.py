"""A deliverability gate: stop a pipeline when a VDM metrics export shows bounce or complaint rates at SES's limits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields

from airflow_provider_sesexport._compat import AirflowSkipException
from airflow_provider_sesexport.exceptions import SesDeliverabilityBreachError, SesExportInputError
from airflow_provider_sesexport.hooks.ses_export import SesExportJobHook
from airflow_provider_sesexport.records import METRICS_DATA
from airflow_provider_sesexport.utils.deliverability import (
    RateSource,
    Thresholds,
    check_rates,
    describe_breach,
    rate_source,
)
from airflow_provider_sesexport.utils.export_job import utcnow
from airflow_provider_sesexport.utils.validation import (
    invalid,
    validate_choice,
    validate_fraction,
    validate_integer,
    validate_job_id,
)

if TYPE_CHECKING:
    from airflow_provider_sesexport._compat import Context

#: What ``on_breach`` accepts.
ON_BREACH = ("fail", "skip", "warn")
#: SES's review thresholds (SES developer guide, reputation metrics): an account is reviewed at these rates.
DEFAULT_MAX_BOUNCE_RATE = 0.05
DEFAULT_MAX_COMPLAINT_RATE = 0.001


class SesDeliverabilityCheckOperator(AwsBaseOperator[SesExportJobHook]):
    """
    Check a COMPLETED VDM metrics export's bounce and complaint rates against thresholds: a pipeline gate.

    Rates come from the export's VOLUME metrics where it has them (``PERMANENT_BOUNCE`` / ``SEND``,
    ``COMPLAINT`` / ``SEND``), else from its RATE metrics. Each row of the export (one combination of its
    dimensions: an email identity, a configuration set, an ISP, a tenant) is checked, and the whole export
    (send-volume weighted over every row, small groups included; only when the export has ``SEND`` VOLUME).
    A rate **equal to or above** its threshold is a breach, unless the group sent fewer than
    ``min_send_volume`` messages. A row with a zero send volume has no rate (reported as null, never a breach).

    An export without the metrics a threshold needs is refused before its file is read, naming the
    ``Metrics`` entries to add; a Message Insights export is refused; a FAILED, CANCELLED or unfinished
    job raises what :class:`~airflow_provider_sesexport.operators.ses_export.SesExportJobResultOperator` raises;
    a NaN, negative or above-1 value in the file raises
    :class:`~airflow_provider_sesexport.exceptions.SesExportRecordsError` naming the row.

    Returns (XCom ``return_value``, plain JSON): ``healthy``, ``job_id``, ``overall`` (``send_volume``,
    ``bounce_rate``, ``complaint_rate``), ``groups`` (at most 100, breaching ones first, each with ``group``,
    ``send_volume``, ``bounce_rate``, ``complaint_rate``, ``checked``, ``breach``; ``groups_omitted`` counts the
    rest), ``breaches`` (``group``, ``metric``: ``bounce`` or ``complaint``, ``rate``, ``threshold``,
    ``send_volume``; the whole export's group is ``{}``), ``rates_from`` and ``thresholds``. The same value is
    pushed before a skip or a failure, so a callback or a later task can read it.

    :param job_id: the metrics export job's id (templated).
    :param max_bounce_rate: the bounce rate (a fraction in (0, 1]) that is a breach; default 0.05, SES's
        review threshold; None not to check bounces.
    :param max_complaint_rate: the complaint rate that is a breach; default 0.001 (0.1%), SES's review
        threshold; None not to check complaints.
    :param min_send_volume: groups that sent fewer messages are reported but never breach (default 100). Without
        ``SEND`` VOLUME in the export it cannot apply: every row is checked, its ``send_volume`` null.
    :param on_breach: ``fail`` (default: :class:`~airflow_provider_sesexport.exceptions.SesDeliverabilityBreachError`,
        no retries, its message lists every breach), ``skip`` (the task is skipped, and so are the tasks
        downstream that wait for it) or ``warn`` (log the breaches and succeed).
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

    def __init__(
        self,
        *,
        job_id: str,
        max_bounce_rate: float | None = DEFAULT_MAX_BOUNCE_RATE,
        max_complaint_rate: float | None = DEFAULT_MAX_COMPLAINT_RATE,
        min_send_volume: int = 100,
        on_breach: str = "fail",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job_id = job_id
        self.max_bounce_rate = validate_fraction(
            max_bounce_rate, "max_bounce_rate", f"SES reviews an account at a {DEFAULT_MAX_BOUNCE_RATE} bounce rate."
        )
        self.max_complaint_rate = validate_fraction(
            max_complaint_rate,
            "max_complaint_rate",
            f"SES reviews an account at a {DEFAULT_MAX_COMPLAINT_RATE} complaint rate.",
        )
        if self.max_bounce_rate is None and self.max_complaint_rate is None:
            raise invalid(
                "max_bounce_rate", None, "a threshold for at least one of max_bounce_rate and max_complaint_rate"
            )
        self.min_send_volume = validate_integer(min_send_volume, "min_send_volume", 0)
        self.on_breach = validate_choice(on_breach, "on_breach", ON_BREACH)

    def execute(self, context: Context) -> dict[str, Any]:
        job_id = validate_job_id(self.job_id)
        thresholds = Thresholds(
            {"bounce": self.max_bounce_rate, "complaint": self.max_complaint_rate}, self.min_send_volume
        )
        asked_at = utcnow()  # before GetExportJob: the URL's five minutes start no earlier
        job, _ = self.hook.get_completed_export_job(job_id, self.log)
        source = self._rate_source(job_id, job, thresholds)
        if not source.has_send_volume and self.min_send_volume:
            self.log.info(
                "The export has no SEND VOLUME metric: min_send_volume (%s) cannot apply, every row is checked.",
                self.min_send_volume,
            )
        records = self.hook.iter_export_records(job_id, job=job, retrieved_at=asked_at)
        checked, breaches = check_rates(records, source, thresholds)
        report = {"job_id": job_id, **checked}
        overall = report["overall"]
        self.log.info(
            "SES export job %s: %d group(s); overall send volume %s, bounce rate %s, complaint rate %s",
            job_id,
            report["groups_total"],
            overall["send_volume"],
            _percent(overall["bounce_rate"]),
            _percent(overall["complaint_rate"]),
        )
        if report["healthy"]:
            self.log.info("Deliverability is healthy: no rate reached its threshold.")
            return report
        lines = [describe_breach(breach) for breach in breaches]  # every breach (the XCom lists at most 100)
        error = SesDeliverabilityBreachError(job_id, lines)
        if self.on_breach == "warn":
            self.log.warning("%s", error)
            return report
        context["ti"].xcom_push(key="return_value", value=report)
        if self.on_breach == "skip":
            self.log.warning("%s", error)
            raise AirflowSkipException(
                f"Skipped (on_breach='skip'): {report['breaches_total']} breach(es); see the log"
            )
        raise error

    def _rate_source(self, job_id: str, job: dict[str, Any], thresholds: Thresholds) -> RateSource:
        """Where the rates come from, or a refusal before the file is read (Message Insights, missing metrics)."""
        data_source = job.get("ExportDataSource") or {}
        metrics_source = data_source.get("MetricsDataSource")
        if job.get("ExportSourceType", METRICS_DATA) != METRICS_DATA or not isinstance(metrics_source, dict):
            raise SesExportInputError(
                f"SES export job {job_id!r} is a {job.get('ExportSourceType') or 'Message Insights'} export: "
                "SesDeliverabilityCheckOperator checks a VDM metrics export (export_data_source={'MetricsDataSource': "
                "...}) with SEND, PERMANENT_BOUNCE and COMPLAINT metrics."
            )
        try:
            return rate_source(metrics_source.get("Metrics") or [], thresholds.checks)
        except ValueError as exc:
            raise SesExportInputError(
                f"SES export job {job_id!r} cannot be checked: its MetricsDataSource.Metrics lacks what a threshold "
                f"needs: {exc}. Add those entries to the export's Metrics, or set the threshold to None."
            ) from None


def _percent(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:.2%}"
