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


def rate_source(metrics: Iterable[Mapping[str, Any]], checks: Iterable[str]) -> RateSource:
    """
    Where the rates of ``checks`` come from, or an error naming the metrics to add.

    :param metrics: the export's ``MetricsDataSource.Metrics`` (``{"Name": ..., "Aggregation": ...}``).
    :param checks: the checks with a threshold (``bounce``, ``complaint``).
    :raises ValueError: the export lacks what a check needs (the message names the metric dicts to add).
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
            aggregations[check] = VOLUME
            if not has_send and metric_dict(SEND, VOLUME) not in missing:
                missing.insert(0, metric_dict(SEND, VOLUME))
            if (name, VOLUME) not in have:
                missing.append(metric_dict(name, VOLUME))
    if missing:
        raise ValueError(", ".join(missing))
    return RateSource(aggregations, has_send)


def _number(value: Any, what: str, where: str) -> float | None:
    """A metric value of a row: None when the file has none; an error for NaN, infinity or a negative number."""
    if value is None:
        return None
    number = float(value)
    if math.isnan(number) or math.isinf(number) or number < 0:
        raise SesExportRecordsError(
            f"Invalid data in the export file: {what} of {where} is {number!r} (expected a number >= 0); the rates "
            "cannot be checked. Create a new export job."
        )
    return number


def _rate(value: float | None, what: str, where: str) -> float | None:
    if value is not None and value > 1:
        raise SesExportRecordsError(
            f"Invalid data in the export file: the {what} rate of {where} is {value!r} (above 1, i.e. over 100%); "
            "the rates cannot be checked. Create a new export job."
        )
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


@dataclass(frozen=True)
class Thresholds:
    """
    What the check compares against.

    :param rates: per check (``bounce``, ``complaint``), the breach threshold, or None not to check it.
    :param min_send_volume: groups that sent fewer messages never breach.
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
            if rate is not None and threshold is not None and rate >= threshold:
                out.append(
                    {"group": dict(group), "metric": check, "rate": rate, "threshold": threshold, "send_volume": send}
                )
        return out


def check_rates(
    records: Iterable[Mapping[str, Any]],
    source: RateSource,
    thresholds: Thresholds,
    max_listed: int = MAX_LISTED_GROUPS,
) -> dict[str, Any]:
    """
    Check every row of a metrics export and the whole export; return the plain-JSON report.

    :param records: the export's records.
    :param source: where the rates come from (:func:`rate_source`).
    :param thresholds: the thresholds and ``min_send_volume``.
    :param max_listed: groups (and breaches) listed at most; breaching groups are listed first.
    :return: ``healthy``, ``overall`` (``send_volume``, ``bounce_rate``, ``complaint_rate``), ``groups``,
        ``groups_total``, ``groups_omitted``, ``breaches``, ``breaches_total``, ``breaches_omitted``, ``rates_from``,
        ``thresholds``.
    :raises SesExportRecordsError: a value is NaN, negative, or a rate above 1.
    """
    checks = thresholds.checks
    groups: list[dict[str, Any]] = []
    breaches: list[dict[str, Any]] = []
    total_send = 0.0
    weighted = dict.fromkeys(checks, 0.0)
    complete = dict.fromkeys(checks, True)  # every row had what the overall figure needs
    for number, record in enumerate(records, start=1):
        dims, metrics = _split(record)
        where = f"row {number} ({group_label(dims)})"
        send = _number(metrics.get(f"{SEND}_{VOLUME}"), f"{SEND}_{VOLUME}", where) if source.has_send_volume else None
        figures: dict[str, Any] = {"send_volume": send}
        for check in ("bounce", "complaint"):
            figures[f"{check}_rate"] = None
            if check not in checks:
                continue
            column = f"{CHECKS[check]}_{source.aggregations[check]}"
            value = _number(metrics.get(column), column, where)
            if source.aggregations[check] == VOLUME:
                rate = value / send if value is not None and send else None
            else:
                rate = None if send == 0 else value
            figures[f"{check}_rate"] = _rate(rate, check, where)
            if send:
                if value is None:
                    complete[check] = False
                else:
                    weighted[check] += value if source.aggregations[check] == VOLUME else value * send
        if send:
            total_send += send
        found = thresholds.breaches(dims, figures)
        breaches.extend(found)
        groups.append(
            {
                "group": dims,
                **figures,
                "checked": send is None or send >= thresholds.min_send_volume,
                "breach": bool(found),
            }
        )
    overall: dict[str, Any] = {"send_volume": None, "bounce_rate": None, "complaint_rate": None}
    if source.has_send_volume:
        overall["send_volume"] = total_send
        for check in checks:
            if total_send and complete[check]:
                overall[f"{check}_rate"] = _rate(weighted[check] / total_send, check, OVERALL)
        breaches[:0] = thresholds.breaches({}, overall)  # listed first: never among the omitted
    # breaching groups first, then the biggest senders
    groups.sort(key=lambda g: (not g["breach"], -(g["send_volume"] or 0)))
    return {
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


def describe_breach(breach: Mapping[str, Any]) -> str:
    """One line per breach: ``EMAIL_IDENTITY=a.com: bounce rate 6.00% >= 5.00% (send volume 1000)``."""
    send = breach["send_volume"]
    volume = "send volume unknown" if send is None else f"send volume {send:g}"
    return (
        f"{group_label(breach['group'])}: {breach['metric']} rate {breach['rate']:.2%} >= "
        f"{breach['threshold']:.2%} ({volume})"
    )
