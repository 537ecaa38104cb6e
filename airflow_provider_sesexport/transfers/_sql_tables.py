"""
The tables :class:`~airflow_provider_sesexport.transfers.ses_export_to_sql.SesExportToSqlOperator` loads:
one layout per export source type, its natural key, its ``CREATE TABLE`` for PostgreSQL and SQLite,
and the rows each export record becomes.

* Message Insights: the file's twelve columns (timestamps typed) and ``job_id``; one row per record,
  keyed by ``(messageid, destination)`` (a message has one row per recipient).
* Metrics (tidy): ``email_identity``, ``configuration_set``, ``isp``, ``tenant_name`` (null when not a
  dimension of the export), ``metric``, ``aggregation``, ``value``, ``export_start``, ``export_end`` (the
  job's data source: the file has no dates) and ``job_id``; one row per record and metric column, keyed by
  everything but ``value`` and ``job_id``. The key's dimension columns may be null, so its uniqueness
  treats nulls as equal (``NULLS NOT DISTINCT`` on PostgreSQL 15+, an ``IFNULL`` index on SQLite).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from airflow_provider_sesexport.exceptions import SesExportRecordsError
from airflow_provider_sesexport.records import (
    IDENTITY_KEY,
    MESSAGE_INSIGHTS,
    METRICS_DATA,
    METRICS_DIMENSIONS,
    split_metric_column,
)
from airflow_provider_sesexport.utils.export_layout import MESSAGE_INSIGHTS_COLUMNS

log = logging.getLogger(__name__)

POSTGRESQL = "postgresql"
SQLITE = "sqlite"
#: The databases ``create_table=True`` knows the ``CREATE TABLE`` of (by Airflow connection type).
DATABASES = {"postgres": POSTGRESQL, "postgresql": POSTGRESQL, "sqlite": SQLITE}

_TYPES = {
    POSTGRESQL: {"text": "TEXT", "timestamp": "TIMESTAMPTZ", "number": "DOUBLE PRECISION"},
    SQLITE: {"text": "TEXT", "timestamp": "TIMESTAMP", "number": "REAL"},
}


@dataclass(frozen=True)
class TableLayout:
    """
    The columns of one source type's table.

    :param source_type: ``MESSAGE_INSIGHTS`` or ``METRICS_DATA``.
    :param columns: ``(name, kind, not null)`` in table order; ``kind`` is text, timestamp or number.
    :param key: the natural key's columns.
    """

    source_type: str
    columns: tuple[tuple[str, str, bool], ...]
    key: tuple[str, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """The column names, in table order (the order of every row)."""
        return tuple(name for name, _, _ in self.columns)

    @property
    def nullable_key(self) -> frozenset[str]:
        """The key columns that may be null."""
        return frozenset(name for name, _, not_null in self.columns if name in self.key and not not_null)

    def create_statements(self, database: str, table: str, schema: str | None) -> list[str]:
        """
        ``CREATE TABLE IF NOT EXISTS`` (and, on SQLite, the metrics key's unique index) for ``database``.

        :param database: ``postgresql`` or ``sqlite``.
        :param table: the table name (a plain identifier).
        :param schema: its schema (a plain identifier) or None.
        """
        types = _TYPES[database]
        qualified = f"{schema}.{table}" if schema else table
        lines = [f"    {name} {types[kind]}{' NOT NULL' if not_null else ''}" for name, kind, not_null in self.columns]
        nullable = self.nullable_key
        index: list[str] = []
        if not nullable:
            lines.append(f"    PRIMARY KEY ({', '.join(self.key)})")
        elif database == POSTGRESQL:
            lines.append(f"    UNIQUE NULLS NOT DISTINCT ({', '.join(self.key)})")
        else:  # SQLite: a unique index treats nulls as distinct, and a table constraint cannot use IFNULL
            parts = ", ".join(f"IFNULL({name}, '')" if name in nullable else name for name in self.key)
            index_name = f"{schema}.{table}_natural_key" if schema else f"{table}_natural_key"
            index.append(f"CREATE UNIQUE INDEX IF NOT EXISTS {index_name} ON {table} ({parts})")
        body = ",\n".join(lines)
        return [f"CREATE TABLE IF NOT EXISTS {qualified} (\n{body}\n)", *index]


_INSIGHTS_KINDS = {name: "timestamp" if name.endswith("timestamp") else "text" for name in MESSAGE_INSIGHTS_COLUMNS}
MESSAGE_INSIGHTS_TABLE = TableLayout(
    source_type=MESSAGE_INSIGHTS,
    columns=(
        *((name, kind, name in ("messageid", "destination")) for name, kind in _INSIGHTS_KINDS.items()),
        ("job_id", "text", True),
    ),
    key=("messageid", "destination"),
)
METRICS_TABLE = TableLayout(
    source_type=METRICS_DATA,
    columns=(
        *((dimension.lower(), "text", False) for dimension in METRICS_DIMENSIONS),
        ("metric", "text", True),
        ("aggregation", "text", True),
        ("value", "number", False),
        ("export_start", "timestamp", True),
        ("export_end", "timestamp", True),
        ("job_id", "text", True),
    ),
    key=(
        "export_start",
        "export_end",
        *(dimension.lower() for dimension in METRICS_DIMENSIONS),
        "metric",
        "aggregation",
    ),
)
TABLES = {MESSAGE_INSIGHTS: MESSAGE_INSIGHTS_TABLE, METRICS_DATA: METRICS_TABLE}


def insights_rows(records: Iterable[dict[str, Any]], job_id: str) -> Iterator[tuple[Any, ...]]:
    """
    The Message Insights table's rows of ``records`` (columns missing from a JSON record are null).

    A column the table does not know (one SES added later) is left out, with one warning.

    :param records: the export's records, as :func:`~airflow_provider_sesexport.records.iter_records` yields them.
    :param job_id: the export job's id, the last column.
    """
    columns = MESSAGE_INSIGHTS_COLUMNS
    known = set(columns)
    warned = False
    for record in records:
        if not warned and not known.issuperset(record):
            lowered = {key.lower(): value for key, value in record.items()}
            unknown = sorted(set(lowered) - known)
            if unknown:
                log.warning("SES export job %s has columns the table has no place for, left out: %s", job_id, unknown)
                warned = True
            record = lowered
        yield (*map(record.get, columns), job_id)


def metrics_rows(
    records: Iterable[dict[str, Any]], job_id: str, export_start: dt.datetime, export_end: dt.datetime
) -> Iterator[tuple[Any, ...]]:
    """
    The tidy metrics table's rows of ``records``: one per record and ``<METRIC>_<AGGREGATION>`` value.

    :param records: the export's records (CSV: dimension and metric columns; JSON: dimension keys and a
        ``metrics`` object).
    :param job_id: the export job's id.
    :param export_start: the job's ``MetricsDataSource.StartDate``.
    :param export_end: the job's ``MetricsDataSource.EndDate``.
    :raises SesExportRecordsError: a record has a dimension the table has no column for.
    """
    dimensions = {name: name for name in METRICS_DIMENSIONS}
    dimensions["IDENTITY"] = IDENTITY_KEY
    for record in records:
        values = dict.fromkeys(METRICS_DIMENSIONS)
        metrics: list[tuple[str, Any]] = []
        for key, value in record.items():
            if key == "metrics" and isinstance(value, dict):
                metrics.extend(value.items())
            elif split_metric_column(key) is not None:
                metrics.append((key, value))
            elif key.upper() in dimensions:
                values[dimensions[key.upper()]] = value
            else:
                raise SesExportRecordsError(
                    f"SES export job {job_id!r}: the metrics file has a column {key!r} that is neither a "
                    f"dimension ({', '.join(METRICS_DIMENSIONS)}) nor <METRIC>_<AGGREGATION>; the table has no "
                    "place for it."
                )
        for name, value in metrics:
            parts = split_metric_column(name)
            if parts is None:
                raise SesExportRecordsError(
                    f"SES export job {job_id!r}: the metrics file names a metric {name!r}, not <METRIC>_<AGGREGATION>."
                )
            yield (*values.values(), *parts, value, export_start, export_end, job_id)
