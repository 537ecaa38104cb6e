"""
The deliverability rule: bounce and complaint rates of a VDM metrics export's rows, checked against thresholds.

Pure functions on the records :func:`~airflow_provider_sesexport.records.iter_records` yields (metrics CSV or
JSON), so the operator only fetches and reports. Rates come from the export's VOLUME metrics where it has them
(``PERMANENT_BOUNCE_VOLUME / SEND_VOLUME``, ``COMPLAINT_VOLUME / SEND_VOLUME``), else from its RATE metrics; a rate
equal to or above its threshold is a breach, unless the group sent fewer than ``min_send_volume`` messages. The
overall figures are send-volume weighted over every row (small groups included) and need ``SEND_VOLUME``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider_sesexport.exceptions import SesExportRecordsError
from airflow_provider_sesexport.records import split_metric_column

__all__: list[str] = []  # the operator's helpers: SesDeliverabilityCheckOperator is the API

VOLUME = "VOLUME"
RATE = "RATE"
SEND = "SEND"
#: The checks: their name in the XCom and messages, the SES metric they read.
CHECKS = {"bounce": "PERMANENT_BOUNCE", "complaint": "COMPLAINT"}
#: Groups (and breaches) listed in the XCom at most; the rest are counted in ``groups_omitted`` (``breaches_omitted``).
MAX_LISTED_GROUPS = 100
#: The label of the whole export in messages (its ``group`` in the XCom is ``{}``).
OVERALL = "overall"


def metric_dict(name: str, aggregation: str) -> str:
    """A ``Metrics`` entry as a user writes it, e.g. ``{"Name": "SEND", "Aggregation": "VOLUME"}``."""
    return f'{{"Name": "{name}", "Aggregation": "{aggregation}"}}'


@dataclass(frozen=True)
class RateSource:
    """
    Where each checked rate comes from, decided from the export's ``Metrics`` before its file is read.

    :param aggregations: per check (``bounce``, ``complaint``), ``VOLUME`` or ``RATE``.
    :param has_send_volume: whether the export has ``SEND_VOLUME`` (send volumes, ``min_send_volume`` and the
        overall figures need it).
    """

    aggregations: Mapping[str, str]
    has_send_volume: bool


#: The operator parameter that sets each check's threshold, for messages.
THRESHOLD_PARAMS = {"bounce": "max_bounce_rate", "complaint": "max_complaint_rate"}


def rate_source(metrics: Iterable[Mapping[str, Any]], checks: Iterable[str]) -> RateSource:
    """
    Where the rates of ``checks`` come from, or an error naming, per threshold, the metrics to add.

    :param metrics: the export's ``MetricsDataSource.Metrics`` (``{"Name": ..., "Aggregation": ...}``).
    :param checks: the checks with a threshold (``bounce``, ``complaint``).
    :raises ValueError: the export lacks what a check needs; the message names each threshold parameter that
        cannot be checked and the metric dicts it needs.
    """
    have = {(str(m.get("Name", "")).upper(), str(m.get("Aggregation", VOLUME)).upper()) for m in metrics}
    has_send = (SEND, VOLUME) in have
    aggregations: dict[str, str] = {}
    missing: list[str] = []
    for check in checks:
        name = CHECKS[check]
        if has_send and (name, VOLUME) in have:
            aggregations[check] = VOLUME
        elif (name, RATE) in have:
            aggregations[check] = RATE
        else:
            needed = [metric_dict(SEND, VOLUME)] if not has_send else []
            needed += [metric_dict(name, VOLUME)] if (name, VOLUME) not in have else []
            missing.append(f"{THRESHOLD_PARAMS[check]} needs {' and '.join(needed)} (or {metric_dict(name, RATE)})")
    if missing:
        raise ValueError("; ".join(missing))
    return RateSource(aggregations, has_send)


def _invalid(where: str, what: str) -> SesExportRecordsError:
    return SesExportRecordsError(
        f"Invalid data in the export file, {where}: {what}; the rates cannot be checked. Create a new export job."
    )


def _value(metrics: Mapping[str, Any], column: str, where: str) -> float | None:
    """A metric value of a row: None when its cell is empty; an error for a missing column, NaN, infinity or < 0."""
    if column not in metrics:
        raise SesExportRecordsError(
            f"The export file has no {column} column ({where}) although the job's Metrics ask for it; the rates "
            "cannot be checked. Create a new export job."
        )
    value = metrics[column]
    if value is None:
        return None
    number = float(value)
    if math.isnan(number) or math.isinf(number) or number < 0:
        raise _invalid(where, f"{column} is {number!r} (expected a number >= 0)")
    return number


def _volume(metrics: Mapping[str, Any], column: str, where: str) -> float:
    """A VOLUME value: a count, never empty."""
    value = _value(metrics, column, where)
    if value is None:
        raise _invalid(where, f"{column} is empty (expected a count)")
    return value


def _file_rate(metrics: Mapping[str, Any], column: str, where: str, send: float | None) -> float | None:
    """A RATE value as the file has it: at most 1; empty only where nothing was sent (or the sends are unknown)."""
    value = _value(metrics, column, where)
    if value is None and send:
        raise _invalid(where, f"{column} is empty although {send:,.0f} messages were sent")
    if value is not None and value > 1:
        raise _invalid(where, f"{column} is {value!r} (above 1, i.e. over 100%)")
    return value


def _split(record: Mapping[str, Any]) -> tuple[dict[str, str | None], dict[str, Any]]:
    """``(dimensions, metrics)`` of a metrics record, CSV (flat, upper case) or JSON (nested ``metrics``)."""
    nested = record.get("metrics")
    if isinstance(nested, Mapping):
        dims = {str(k).upper(): v for k, v in record.items() if k != "metrics"}
        return dims, dict(nested)
    dims = {k: v for k, v in record.items() if split_metric_column(k) is None}
    return dims, {k: v for k, v in record.items() if split_metric_column(k) is not None}


def group_label(group: Mapping[str, Any]) -> str:
    """``EMAIL_IDENTITY=example.com, ISP=Gmail`` for a group, ``overall`` for the whole export."""
    return ", ".join(f"{k}={v}" for k, v in group.items()) or OVERALL


def reaches(rate: float, threshold: float) -> bool:
    """
    Whether ``rate`` is at or above ``threshold``: the one breach comparison.

    A rate that equals its threshold but for floating-point rounding (a send-weighted sum of RATE values, say) is a
    breach too.
    """
    return rate >= threshold or math.isclose(rate, threshold, rel_tol=1e-9)


@dataclass(frozen=True)
class Thresholds:
    """
    What the check compares against.

    :param rates: per check (``bounce``, ``complaint``), the breach threshold, or None not to check it.
    :param min_send_volume: groups (and the whole export) that sent fewer messages never breach.
    """

    rates: Mapping[str, float | None]
    min_send_volume: float

    @property
    def checks(self) -> list[str]:
        """The checks with a threshold."""
        return [check for check, threshold in self.rates.items() if threshold is not None]

    def breaches(self, group: Mapping[str, Any], figures: Mapping[str, Any]) -> list[dict[str, Any]]:
        """
        The breaches of one group: rate >= threshold, the group's send volume (when known) >= ``min_send_volume``.

        :param group: the group's dimensions (``{}``: overall).
        :param figures: ``send_volume``, ``bounce_rate``, ``complaint_rate``.
        """
        send = figures["send_volume"]
        if send is not None and send < self.min_send_volume:
            return []
        out = []
        for check in self.checks:
            rate, threshold = figures[f"{check}_rate"], self.rates[check]
            if rate is not None and threshold is not None and reaches(rate, threshold):
                out.append(
                    {"group": dict(group), "metric": check, "rate": rate, "threshold": threshold, "send_volume": send}
                )
        return out


def check_rates(
    records: Iterable[Mapping[str, Any]],
    source: RateSource,
    thresholds: Thresholds,
    max_listed: int = MAX_LISTED_GROUPS,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """
    Check every row of a metrics export and the whole export.

    Per row: a VOLUME rate is the metric's volume over the row's ``SEND_VOLUME`` (none when it sent nothing); a RATE
    is the file's value (none when the row sent nothing). The whole export: the sum of the volumes over the sum of
    the send volumes of every row (RATE values weighted by each row's send volume), when the export has
    ``SEND_VOLUME``. Rows must not repeat a dimension combination.

    :param records: the export's records.
    :param source: where the rates come from (:func:`rate_source`).
    :param thresholds: the thresholds and ``min_send_volume``.
    :param max_listed: groups (and breaches) listed in the report at most; breaching groups are listed first.
    :return: ``(report, breaches)``: the plain-JSON report (``healthy``, ``overall`` with ``send_volume``,
        ``bounce_rate`` and ``complaint_rate``, ``groups``, ``groups_total``, ``groups_omitted``, ``breaches``,
        ``breaches_total``, ``breaches_omitted``, ``rates_from``, ``thresholds``), and every breach (the report's
        list is capped).
    :raises SesExportRecordsError: a column the job's metrics need is missing, a volume is empty, a value is NaN,
        infinite or negative, a RATE value is above 1 (or empty where messages were sent), or a dimension
        combination repeats.
    """
    checks = thresholds.checks
    columns = {check: f"{CHECKS[check]}_{source.aggregations[check]}" for check in checks}
    groups: list[dict[str, Any]] = []
    breaches: list[dict[str, Any]] = []
    seen: set[tuple[tuple[str, Any], ...]] = set()
    sends: list[float] = []
    sent: dict[str, list[float]] = {
        check: [] for check in checks
    }  # per check: each row's bounces (complaints), or rate x sends
    for number, record in enumerate(records, start=1):
        dims, metrics = _split(record)
        where = f"row {number} ({group_label(dims)})"
        key = tuple(sorted(dims.items()))
        if key in seen:
            raise _invalid(where, "the dimension combination of an earlier row again")
        seen.add(key)
        send = _volume(metrics, f"{SEND}_{VOLUME}", where) if source.has_send_volume else None
        figures: dict[str, Any] = {"send_volume": send, "bounce_rate": None, "complaint_rate": None}
        for check, column in columns.items():
            if source.aggregations[check] == VOLUME:
                volume = _volume(metrics, column, where)
                figures[f"{check}_rate"] = volume / send if send else None
                sent[check].append(volume)
            else:
                rate = _file_rate(metrics, column, where, send)
                figures[f"{check}_rate"] = None if send == 0 else rate
                if send and rate is not None:
                    sent[check].append(rate * send)
        if send is not None:
            sends.append(send)
        found = thresholds.breaches(dims, figures)
        breaches.extend(found)
        checked = send is None or send >= thresholds.min_send_volume
        groups.append({"group": dims, **figures, "checked": checked, "breach": bool(found)})
    overall: dict[str, Any] = {"send_volume": None, "bounce_rate": None, "complaint_rate": None}
    if source.has_send_volume:
        total = math.fsum(sends)
        overall["send_volume"] = total
        for check in checks:
            overall[f"{check}_rate"] = math.fsum(sent[check]) / total if total else None
        breaches[:0] = thresholds.breaches({}, overall)  # listed first: never among the omitted
    # breaching groups first, then the biggest senders
    groups.sort(key=lambda g: (not g["breach"], -(g["send_volume"] or 0)))
    report = {
        "healthy": not breaches,
        "rates_from": {check: source.aggregations[check] for check in checks},
        "thresholds": {
            "max_bounce_rate": thresholds.rates.get("bounce"),
            "max_complaint_rate": thresholds.rates.get("complaint"),
            "min_send_volume": thresholds.min_send_volume,
        },
        "overall": overall,
        "groups": groups[:max_listed],
        "groups_total": len(groups),
        "groups_omitted": max(0, len(groups) - max_listed),
        "breaches": breaches[:max_listed],
        "breaches_total": len(breaches),
        "breaches_omitted": max(0, len(breaches) - max_listed),
    }
    return report, breaches


def describe_breach(breach: Mapping[str, Any]) -> str:
    """One line per breach: ``EMAIL_IDENTITY=a.com: bounce rate 6.00% >= 5.00% (send volume 1,000)``."""
    send = breach["send_volume"]
    volume = "send volume unknown" if send is None else f"send volume {send:,.0f}"
    return (
        f"{group_label(breach['group'])}: {breach['metric']} rate {breach['rate']:.2%} >= "
        f"{breach['threshold']:.2%} ({volume})"
    )
