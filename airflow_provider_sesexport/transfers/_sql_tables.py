"""
The tables :class:`~airflow_provider_sesexport.transfers.ses_export_to_sql.SesExportToSqlOperator` loads:
one layout per export source type, its ``CREATE TABLE`` for PostgreSQL and SQLite, the rows each export
record becomes, and the key of an export's data source.

* Message Insights: the file's twelve columns (timestamps typed), ``job_id`` and ``data_source``; one row
  per record (a message has one row per recipient).
* Metrics (tidy): ``email_identity``, ``configuration_set``, ``isp``, ``tenant_name`` (null when not a
  dimension of the export), ``metric``, ``aggregation``, ``value``, ``export_start``, ``export_end`` (the
  job's data source: the file has no dates), ``job_id`` and ``data_source``; one row per record and metric
  column.

``data_source`` (:func:`data_source_key`) says which data source a row was exported from: a load replaces
the rows of its key, so no unique key is needed on the table.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from operator import itemgetter
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
from airflow_provider_sesexport.utils.validation import invalid

log = logging.getLogger(__name__)

POSTGRESQL = "postgresql"
SQLITE = "sqlite"
#: The databases ``create_table=True`` knows the ``CREATE TABLE`` of (by Airflow connection type).
DATABASES = {"postgres": POSTGRESQL, "postgresql": POSTGRESQL, "sqlite": SQLITE}

_TYPES = {
    # "key": job_id and data_source, compared byte for byte (PostgreSQL's "C" collation keeps their indexes cheap)
    POSTGRESQL: {"text": "TEXT", "timestamp": "TIMESTAMPTZ", "number": "DOUBLE PRECISION", "key": 'TEXT COLLATE "C"'},
    SQLITE: {"text": "TEXT", "timestamp": "TIMESTAMP", "number": "REAL", "key": "TEXT"},
}
#: The columns a load's ``DELETE`` looks rows up by, each indexed: its ``OR`` uses indexes only when both sides
#: have one (with one, PostgreSQL and SQLite scan the whole table).
REPLACE_KEYS = ("data_source", "job_id")


_SQL_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def validate_sql_identifier(value: Any, param: str) -> str:
    """
    Return ``value`` if it is a plain SQL identifier (letters, digits, ``_``; not starting with a digit; at most
    63 characters, PostgreSQL's limit), else raise :class:`SesExportInputError`.

    Plain identifiers need no quoting in any database, so table names go into statements as they are.

    :param value: the value.
    :param param: the parameter name to show in the error.
    """
    if not isinstance(value, str) or _SQL_IDENTIFIER.fullmatch(value) is None:
        raise invalid(
            param,
            value,
            "a plain SQL identifier: letters, digits and '_', not starting with a digit, at most 63 characters",
            "Give the schema in `schema`, not as part of `table`." if isinstance(value, str) and "." in value else "",
        )
    return value


def validate_sql_hook(hook: Any, conn_id: str, conn_type: str | None) -> Any:
    """
    Return ``hook`` if it can load rows (``insert_rows``, as every common.sql ``DbApiHook`` has), else raise.

    :param hook: what the connection's ``get_hook()`` returned.
    :param conn_id: the connection id, to name in the error.
    :param conn_type: the connection's type, to name in the error.
    """
    if not callable(getattr(hook, "insert_rows", None)) or not callable(getattr(hook, "get_conn", None)):
        raise invalid(
            "sql_conn_id",
            conn_id,
            "a connection to a SQL database whose hook has insert_rows (a common.sql DbApiHook), such as a "
            f"postgres or sqlite connection; its type {conn_type!r} gives {type(hook).__name__}, which has none",
            "Install the database's Airflow provider, or use another connection.",
        )
    return hook


def quote_identifier(name: str, database: str | None) -> str:
    """
    ``name`` as a statement names it: double-quoted on PostgreSQL (lower-cased first, as PostgreSQL folds an
    unquoted name) and SQLite, so keywords such as ``order`` work; on other databases as their common.sql
    dialect escapes it (common.sql 1.20+), else as it is (a plain identifier, checked when the DAG is parsed).

    :param name: a plain identifier (letters, digits, ``_``).
    :param database: ``postgresql``, ``sqlite`` or None (another database).
    """
    if database == POSTGRESQL:
        return f'"{name.lower()}"'
    if database == SQLITE:
        return f'"{name}"'
    return name


def qualified_name(table: str, schema: str | None, database: str | None, escape: Any = None) -> str:
    """
    ``"schema"."table"`` (or ``"table"``) quoted for ``database``.

    :param table: the table (a plain identifier).
    :param schema: its schema (a plain identifier) or None.
    :param database: ``postgresql``, ``sqlite`` or None.
    :param escape: for another database, the hook dialect's ``escape_word`` when it has one.
    """
    quote = escape if database is None and escape is not None else lambda name: quote_identifier(name, database)
    return f"{quote(schema)}.{quote(table)}" if schema else quote(table)


def table_columns(hook: Any, database: str | None, table: str, schema: str | None) -> set[str] | None:
    """
    The (lower-cased) column names of ``table`` from the database's catalog, or None when there is no such table
    (or schema). A failure to read the catalog (a lock timeout, a dropped connection) is raised as it is: it says
    nothing about the table.

    :param hook: the connection's ``DbApiHook``.
    :param database: ``postgresql``, ``sqlite`` or None (another database: SQLAlchemy's inspector).
    :param table: the table (a plain identifier).
    :param schema: its schema (a plain identifier) or None.
    """
    if database == POSTGRESQL:
        rows = _records(
            hook,
            "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped",
            (qualified_name(table, schema, database),),
        )
    elif database == SQLITE:
        if schema is not None and schema.lower() not in {
            row[1].lower() for row in _records(hook, "PRAGMA database_list")
        }:
            return None
        arguments = (table, schema) if schema else (table,)
        rows = _records(hook, f"SELECT name FROM pragma_table_info({', '.join('?' * len(arguments))})", arguments)
    else:
        from sqlalchemy.exc import NoSuchTableError

        try:
            rows = [(column["name"],) for column in hook.inspector.get_columns(table, schema=schema)]
        except NoSuchTableError:
            return None
    return {str(row[0]).lower() for row in rows} or None


def _records(hook: Any, sql: str, parameters: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The rows of one query on a connection of ``hook`` (``get_records``' first call costs 0.1 s of imports)."""
    with closing(hook.get_conn()) as conn, closing(conn.cursor()) as cur:
        cur.execute(sql, parameters)
        return [tuple(row) for row in cur.fetchall()]


@dataclass(frozen=True)
class TableLayout:
    """
    The columns of one source type's table.

    :param source_type: ``MESSAGE_INSIGHTS`` or ``METRICS_DATA``.
    :param columns: ``(name, kind, not null)`` in table order; ``kind`` is text, timestamp or number. The last
        column is always ``data_source`` (filled by the load, not by the rows).
    """

    source_type: str
    columns: tuple[tuple[str, str, bool], ...]

    @property
    def names(self) -> tuple[str, ...]:
        """The column names, in table order."""
        return tuple(name for name, _, _ in self.columns)

    @property
    def row_names(self) -> tuple[str, ...]:
        """The columns of every row :func:`insights_rows` / :func:`metrics_rows` yield: all but ``data_source``."""
        return self.names[:-1]

    def create_statements(self, database: str, table: str, schema: str | None) -> list[str]:
        """
        ``CREATE TABLE IF NOT EXISTS`` and an index on each of its ``REPLACE_KEYS`` for ``database``.

        No unique key: a load replaces rows by ``data_source`` and ``job_id`` (see ``transfers._sql_load``), so none
        is needed.

        :param database: ``postgresql`` or ``sqlite``.
        :param table: the table name (a plain identifier).
        :param schema: its schema (a plain identifier) or None.
        """
        types = _TYPES[database]
        qualified = qualified_name(table, schema, database)
        lines = [f"    {name} {types[kind]}{' NOT NULL' if not_null else ''}" for name, kind, not_null in self.columns]
        body = ",\n".join(lines)
        statements = [f"CREATE TABLE IF NOT EXISTS {qualified} (\n{body}\n)"]
        for column in REPLACE_KEYS:
            index = quote_identifier(f"{table}_{column}", database)
            if database == POSTGRESQL:  # the index lives in its table's schema
                statements.append(f"CREATE INDEX IF NOT EXISTS {index} ON {qualified} ({column})")
            else:  # SQLite: the index names the attached database, its table does not
                index = f"{quote_identifier(schema, database)}.{index}" if schema else index
                statements.append(
                    f"CREATE INDEX IF NOT EXISTS {index} ON {quote_identifier(table, database)} ({column})"
                )
        return statements


_INSIGHTS_KINDS = {name: "timestamp" if name.endswith("timestamp") else "text" for name in MESSAGE_INSIGHTS_COLUMNS}
MESSAGE_INSIGHTS_TABLE = TableLayout(
    source_type=MESSAGE_INSIGHTS,
    columns=(
        *((name, kind, name in ("messageid", "destination")) for name, kind in _INSIGHTS_KINDS.items()),
        ("job_id", "key", True),
        ("data_source", "key", True),
    ),
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
        ("job_id", "key", True),
        ("data_source", "key", True),
    ),
)
TABLES = {MESSAGE_INSIGHTS: MESSAGE_INSIGHTS_TABLE, METRICS_DATA: METRICS_TABLE}


def data_source_key(job: dict[str, Any]) -> str:
    """
    The key of an export job's data source: rows loaded under the same key replace each other.

    ``<source type>:`` and the SHA-256 of the job's ``ExportDataSource`` as canonical JSON (sorted keys, dates as
    ISO-8601 UTC, lists of names sorted): two jobs over the same dates, dimensions / filters and metrics share it,
    whatever order the request listed them in.

    :param job: a GetExportJob response (``ExportSourceType``, ``ExportDataSource``).
    """
    canonical = json.dumps(job.get("ExportDataSource") or {}, sort_keys=True, default=_canonical, separators=(",", ":"))
    digest = hashlib.sha256(_sorted_lists(json.loads(canonical)).encode()).hexdigest()
    return f"{job.get('ExportSourceType')}:{digest}"


def _canonical(value: Any) -> str:
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
        return aware.astimezone(dt.timezone.utc).isoformat()
    return str(value)


def _sorted_lists(value: Any) -> str:
    """Canonical JSON with every list sorted (their order carries no meaning in a data source)."""

    def walk(item: Any) -> Any:
        if isinstance(item, dict):
            return {key: walk(inner) for key, inner in item.items()}
        if isinstance(item, list):
            return sorted((walk(inner) for inner in item), key=lambda x: json.dumps(x, sort_keys=True))
        return item

    return json.dumps(walk(value), sort_keys=True, separators=(",", ":"))


class NulScrubber:
    """
    Removes NUL characters from text values (PostgreSQL cannot store them), counting them for one warning.

    :param job_id: the export job's id, for the warning.
    """

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.removed = 0

    def text(self, value: str) -> str:
        """``value`` without NUL characters."""
        if "\x00" not in value:
            return value
        self.removed += value.count("\x00")
        return value.replace("\x00", "")

    def bytes(self, data: bytes) -> bytes:
        """``data`` (UTF-8 text, where a zero byte is only ever a NUL character) without NUL characters."""
        if b"\x00" not in data:
            return data
        self.removed += data.count(b"\x00")
        return data.replace(b"\x00", b"")

    def row(self, row: tuple[Any, ...]) -> tuple[Any, ...]:
        """``row`` with NUL characters removed from its text values."""
        if not any(isinstance(value, str) and "\x00" in value for value in row):
            return row
        return tuple(self.text(value) if isinstance(value, str) else value for value in row)

    def warn(self) -> None:
        """Log the one warning, when anything was removed."""
        if self.removed:
            log.warning(
                "SES export job %s: removed %d NUL character(s) from text values (a database cannot store them).",
                self.job_id,
                self.removed,
            )


def insights_rows(records: Iterable[dict[str, Any]], job_id: str) -> Iterator[tuple[Any, ...]]:
    """
    The Message Insights table's rows of ``records`` (columns missing from a JSON record are null).

    Keys are matched whatever their case; a column the table does not know (one SES added later) is left
    out, with one warning.

    :param records: the export's records, as :func:`~airflow_provider_sesexport.records.iter_records` yields them.
    :param job_id: the export job's id, the last column.
    """
    columns = MESSAGE_INSIGHTS_COLUMNS
    known = set(columns)
    # One reader per layout of keys (a JSON record leaves out members without a value, so layouts vary).
    readers: dict[tuple[str, ...], Callable[[dict[str, Any]], tuple[Any, ...]]] = {}
    warned = False
    for record in records:
        keys = tuple(record)
        read = readers.get(keys)
        if read is None:
            by_lower = {key.lower(): key for key in keys}
            unknown = sorted(set(by_lower) - known)
            if unknown and not warned:
                _warn_unknown_insights_columns(job_id, unknown)
                warned = True
            read = readers[keys] = _row_reader([by_lower.get(name) for name in columns], job_id)
        yield read(record)


def _warn_unknown_insights_columns(job_id: str, unknown: list[str]) -> None:
    log.warning("SES export job %s has columns the table has no place for, left out: %s", job_id, unknown)


def insights_csv_fields(header: list[str], job_id: str) -> tuple[list[str | None], bool] | None:
    """
    The table column each field of a Message Insights CSV header fills, for a load that copies the file as it is.

    Names match whatever their case; a column the table does not know is left out (None), with the same warning
    as :func:`insights_rows`.

    :param header: the header line's fields, as the file has them.
    :param job_id: the export job's id, for the warning.
    :return: ``(columns, trailing)``: one entry per field (``trailing``: the last field is SES's unnamed empty
        one, itself in ``columns`` as None), or None when only the record reader can read the file (an unnamed or
        repeated column, no ``messageid``): it then names the error.
    """
    names = [name.strip().lower() for name in header]
    trailing = len(names) > 1 and names[-1] == ""
    named = names[:-1] if trailing else names
    if "" in named or len(set(named)) != len(named) or "messageid" not in named:
        return None
    known = set(MESSAGE_INSIGHTS_COLUMNS)
    unknown = sorted(set(named) - known)
    if unknown:
        _warn_unknown_insights_columns(job_id, unknown)
    return [name if name in known else None for name in names], trailing


def _row_reader(keys: list[str | None], job_id: str) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """The row of a record whose columns are under ``keys`` (None: not in the record), then ``job_id``."""
    if None not in keys:  # every column there (a CSV file): a C-speed getter
        get = itemgetter(*keys)
        return lambda record: (*get(record), job_id)
    return lambda record: (*(record[key] if key is not None else None for key in keys), job_id)


def metrics_rows(
    records: Iterable[dict[str, Any]], job_id: str, export_start: dt.datetime, export_end: dt.datetime
) -> Iterator[tuple[Any, ...]]:
    """
    The tidy metrics table's rows of ``records``: one per record and ``<METRIC>_<AGGREGATION>`` value.

    A column that is neither a dimension nor a metric (one SES added later) is left out, with one warning.

    :param records: the export's records (CSV: dimension and metric columns; JSON: dimension keys and a
        ``metrics`` object).
    :param job_id: the export job's id.
    :param export_start: the job's ``MetricsDataSource.StartDate``.
    :param export_end: the job's ``MetricsDataSource.EndDate``.
    :raises SesExportRecordsError: a metric name that is not ``<METRIC>_<AGGREGATION>``.
    """
    dimensions = {name: name for name in METRICS_DIMENSIONS}
    dimensions["IDENTITY"] = IDENTITY_KEY
    warned = False
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
            elif not warned:
                warned = True
                log.warning(
                    "SES export job %s: the metrics file has a column %r that is neither a dimension (%s) nor "
                    "<METRIC>_<AGGREGATION>; the table has no place for it, left out.",
                    job_id,
                    key,
                    ", ".join(METRICS_DIMENSIONS),
                )
        for name, value in metrics:
            parts = split_metric_column(name)
            if parts is None:
                raise SesExportRecordsError(
                    f"SES export job {job_id!r}: the metrics file names a metric {name!r}, not <METRIC>_<AGGREGATION>."
                )
            yield (*values.values(), *parts, value, export_start, export_end, job_id)
