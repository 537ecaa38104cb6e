"""
Loading one export's rows into a SQL table in one transaction: staged, then merged.

Every path ends the same way: in one transaction, the rows of the export's data source and of its job are
deleted (``DELETE FROM <table> WHERE data_source = <key> OR job_id = <job>``; skipped with ``replace=False``),
the staged rows are inserted, the caller's last check runs, and the transaction commits. A failure anywhere rolls it
all back, so another connection sees the table as it was until the commit, then the complete new export. The
staging table's name has a random suffix, so it never shadows a table of the user's (a temporary table would).

* **PostgreSQL**: ``COPY <staging> FROM STDIN (FORMAT csv)`` into a temporary table (``ON COMMIT DROP``);
  psycopg 3's ``cursor.copy`` or psycopg2's ``copy_expert``, whichever driver the connection is. A Message
  Insights CSV file goes in as it is (:meth:`ExportLoad.run_file`: its bytes, NULs removed, into columns in the
  file's order); anything else as the records' rows. Either way the staging columns have the table's types, so
  the server parses timestamps and numbers. The transaction raises the session's ``temp_buffers`` to
  ``STAGING_BUFFERS`` first (``SET LOCAL``, where the session has not used a temporary table yet), so a large
  staging table stays in memory instead of going to a temporary file the merge reads back. The merge takes
  ``SHARE ROW EXCLUSIVE`` on the table (readers go on; a second load of the same export waits, then deletes the
  first one's rows).
* **SQLite**: rows go into a temporary table (its own transaction, nothing shared), then the merge runs in
  ``BEGIN IMMEDIATE`` (one writer at a time; readers see the old state until the commit).
* **any other database**: the rows are inserted straight into the table inside the one transaction
  (``executemany`` through the connection of its ``DbApiHook``); concurrent loads of the same export are not
  serialised there.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing, suppress
from itertools import chain, islice
from typing import Any

from airflow_provider_sesexport.transfers._sql_tables import POSTGRESQL, SQLITE, NulScrubber, TableLayout

#: The staging table's name, before its random suffix.
STAGING_PREFIX = "ses_export_staging_"
#: PostgreSQL's SQLSTATE for a row a CHECK constraint refuses.
CHECK_VIOLATION = "23514"
#: ``temp_buffers`` for the staging table (PostgreSQL's default is 8 MB: about 30,000 Message Insights rows).
#: Allocated by the server as the staging table grows, released when the connection closes.
STAGING_BUFFERS = "64MB"
#: The longest header line a file copied as it is may have.
MAX_HEADER_BYTES = 64 * 1024
#: Seconds a SQLite load waits for another writer before it fails (and is retried).
SQLITE_BUSY_TIMEOUT_MS = 60_000


def refused_value(exc: BaseException) -> bool:
    """
    Whether ``exc`` is the database refusing a value (SQLSTATE class 22, "data exception": a timestamp it cannot
    read, a number out of range...): the same export fails the same way on every retry.

    :param exc: what the driver raised (psycopg2 sets ``pgcode``, psycopg 3 ``sqlstate``).
    """
    code = sqlstate(exc)
    return code is not None and code.startswith("22")


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a PostgreSQL error (psycopg2 sets ``pgcode``, psycopg 3 ``sqlstate``), else None."""
    code = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    return code if isinstance(code, str) else None


def batches(rows: Iterable[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    """Consecutive lists of up to ``size`` rows."""
    rows = iter(rows)
    while batch := list(islice(rows, size)):
        yield batch


class ExportLoad:
    """
    One export's load into ``table``.

    :param hook: the connection's ``DbApiHook``.
    :param database: ``postgresql``, ``sqlite`` or None (another database).
    :param table: the table as statements name it (quoted, schema-qualified).
    :param layout: the table's layout.
    :param data_source: the export's :func:`~airflow_provider_sesexport.transfers._sql_tables.data_source_key`.
    :param job_id: the export job's id.
    :param replace: delete the rows of ``data_source`` and of ``job_id`` first.
    :param batch_size: rows per staging write (bounds memory).
    :param scrubber: removes NUL characters from text values (and counts them).
    """

    def __init__(
        self,
        hook: Any,
        database: str | None,
        table: str,
        layout: TableLayout,
        data_source: str,
        job_id: str,
        *,
        replace: bool,
        batch_size: int,
        scrubber: NulScrubber,
    ) -> None:
        self.hook = hook
        self.database = database
        self.table = table
        self.layout = layout
        self.data_source = data_source
        self.job_id = job_id
        self.replace = replace
        self.batch_size = batch_size
        self.scrubber = scrubber
        self.rows = 0
        self.staging = f"{STAGING_PREFIX}{uuid.uuid4().hex[:16]}"

    @property
    def how(self) -> str:
        """The path this load takes, for the log."""
        if self.database == POSTGRESQL:
            return "COPY into a temporary table, then DELETE + INSERT ... SELECT in one transaction"
        if self.database == SQLITE:
            return "INSERT into a temporary table, then DELETE + INSERT ... SELECT in one transaction"
        return "DELETE + INSERT through the DbApiHook's connection in one transaction"

    def run(self, rows: Iterable[tuple[Any, ...]], before_commit: Callable[[int], None]) -> int:
        """
        Load ``rows`` (in the layout's ``row_names`` order); return how many were written.

        :param rows: the export's rows.
        :param before_commit: called with the row count once every row is staged, inside the transaction; an
            exception there rolls everything back.
        """
        load = {POSTGRESQL: self._postgresql, SQLITE: self._sqlite}.get(self.database or "", self._generic)
        with closing(self.hook.get_conn()) as conn:
            try:
                load(conn, rows, before_commit)
            except BaseException:
                with suppress(Exception):  # a dead connection cannot roll back: the server already has
                    conn.rollback()
                raise
        return self.rows

    # -- PostgreSQL --------------------------------------------------------------------------------------
    def _postgresql(self, conn: Any, rows: Iterable[tuple[Any, ...]], before_commit: Callable[[int], None]) -> None:
        names = ", ".join(self.layout.row_names)
        with closing(conn.cursor()) as cur:
            _staging_buffers(cur)
            cur.execute(
                f"CREATE TEMPORARY TABLE {self.staging} ON COMMIT DROP AS SELECT {names} FROM {self.table} WITH NO DATA"
            )
            _copy(cur, f"COPY {self.staging} ({names}) FROM STDIN WITH (FORMAT csv)", self._csv_chunks(rows))
            cur.execute(f"LOCK TABLE {self.table} IN SHARE ROW EXCLUSIVE MODE")
            self._merge(cur, "%s", names)
        before_commit(self.rows)
        conn.commit()

    def run_file(
        self,
        fields: Sequence[str | None],
        trailing: bool,
        content: Iterable[bytes],
        before_commit: Callable[[int], None],
    ) -> int:
        """
        Load a Message Insights CSV file as it is (PostgreSQL): its bytes through ``COPY`` into a staging table with
        one column per field in the file's order, of the table's type for the table's columns (so the server parses
        the timestamps; ``FORCE_NULL``: ``""`` is null, as the record reader has it) and text for the others. Return
        the rows (one per record) written.

        :param fields: the table column each field fills, None for one left out
            (:func:`~airflow_provider_sesexport.transfers._sql_tables.insights_csv_fields`).
        :param trailing: the last field is SES's unnamed empty one: a value there is a malformed line.
        :param content: the file's content bytes after its header line.
        :param before_commit: called with the record count once every row is staged, inside the transaction.
        :raises NotCopyable: ``COPY`` refused the file (a line with another number of fields, a blank line, text that
            is not UTF-8, a value the table's type cannot hold) or the unnamed last field has a value. Nothing was
            written: the record path loads the file, or names the line that is wrong.
        """
        staged = [f"f{i}" for i in range(len(fields))]
        with closing(self.hook.get_conn()) as conn:
            try:
                with closing(conn.cursor()) as cur:
                    types = self._column_types(cur)
                    kinds = [types[column] if column else "TEXT" for column in fields]
                    if trailing:  # SES's unnamed last field: empty on every line, or the line is malformed
                        kinds[-1] = f"TEXT CHECK ({staged[-1]} = '')"
                    columns = ", ".join(f"{name} {kind}" for name, kind in zip(staged, kinds, strict=True))
                    _staging_buffers(cur)
                    cur.execute(f"CREATE TEMPORARY TABLE {self.staging} ({columns}) ON COMMIT DROP")
                    nulls = ", ".join(name for name, column in zip(staged, fields, strict=True) if column)
                    copy = f"COPY {self.staging} FROM STDIN WITH (FORMAT csv, ENCODING 'UTF8', FORCE_NULL ({nulls}))"
                    try:
                        _copy(cur, copy, (self.scrubber.bytes(chunk) for chunk in content))
                    except Exception as exc:
                        if refused_value(exc) or sqlstate(exc) == CHECK_VIOLATION:
                            raise NotCopyable(str(exc).splitlines()[0]) from exc
                        raise
                    field_of = {column: name for column, name in zip(fields, staged, strict=True) if column}
                    values = [field_of.get(name, "NULL") for name in self.layout.row_names[:-1]]
                    cur.execute(f"LOCK TABLE {self.table} IN SHARE ROW EXCLUSIVE MODE")
                    self._merge(cur, "%s", ", ".join([*values, "%s"]), (self.job_id,))
                    self.rows = records = cur.rowcount  # the INSERT's: one row per record
                before_commit(records)
                conn.commit()
            except BaseException:
                with suppress(Exception):  # a dead connection cannot roll back: the server already has
                    conn.rollback()
                raise
        return self.rows

    def _column_types(self, cur: Any) -> dict[str, str]:
        """The table's column types, as a cast names them (PostgreSQL's catalog)."""
        cur.execute(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
            (self.table,),
        )
        return {name: kind for name, kind in cur.fetchall()}

    def _csv_chunks(self, rows: Iterable[tuple[Any, ...]]) -> Iterator[str]:
        """``rows`` as CSV text, one chunk per batch (None: an unquoted empty field, which COPY reads as NULL)."""
        for batch in batches(rows, self.batch_size):
            buffer = io.StringIO()
            csv.writer(buffer, lineterminator="\n").writerows(batch)
            self.rows += len(batch)
            yield self.scrubber.text(buffer.getvalue())

    # -- SQLite --------------------------------------------------------------------------------------------
    def _sqlite(self, conn: Any, rows: Iterable[tuple[Any, ...]], before_commit: Callable[[int], None]) -> None:
        names = ", ".join(self.layout.row_names)
        conn.isolation_level = None  # explicit BEGIN / COMMIT below
        cur = conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute(f"CREATE TEMPORARY TABLE {self.staging} AS SELECT {names} FROM {self.table} WHERE 0")
        cur.execute("BEGIN")
        insert = f"INSERT INTO temp.{self.staging} ({names}) VALUES ({', '.join('?' * len(self.layout.row_names))})"
        for batch in batches(rows, self.batch_size):
            cur.executemany(insert, self._cells(batch, conn))
            self.rows += len(batch)
        cur.execute("COMMIT")  # the temporary table only
        cur.execute("BEGIN IMMEDIATE")
        self._merge(cur, "?", names)
        before_commit(self.rows)
        cur.execute("COMMIT")
        cur.execute(f"DROP TABLE temp.{self.staging}")

    # -- any other database -----------------------------------------------------------------------------
    def _generic(self, conn: Any, rows: Iterable[tuple[Any, ...]], before_commit: Callable[[int], None]) -> None:
        # One transaction whatever the driver's default: many (pyodbc, pymysql, ...) let a connection commit each
        # statement, and a hook's supports_autocommit says nothing about that
        if getattr(self.hook, "supports_autocommit", False) or hasattr(conn, "autocommit"):
            self.hook.set_autocommit(conn, False)
        placeholder = self.hook.placeholder
        names = self.layout.names
        insert = f"INSERT INTO {self.table} ({', '.join(names)}) VALUES ({', '.join([placeholder] * len(names))})"
        with closing(conn.cursor()) as cur:
            if self.replace:
                self._delete_predecessors(cur, placeholder)
            for batch in batches(rows, self.batch_size):
                cur.executemany(insert, self._cells([(*row, self.data_source) for row in batch], conn))
                self.rows += len(batch)
        before_commit(self.rows)
        conn.commit()

    # -- shared --------------------------------------------------------------------------------------------
    def _merge(self, cur: Any, placeholder: str, select: str, params: tuple[Any, ...] = ()) -> None:
        """
        Delete the data source's rows (with ``replace``) and insert the staged ones, in the open transaction.

        :param select: the values of the layout's ``row_names`` from the staging table; ``data_source`` follows.
        :param params: the values of ``select``'s placeholders.
        """
        if self.replace:
            self._delete_predecessors(cur, placeholder)
        names = ", ".join(self.layout.row_names)
        cur.execute(
            f"INSERT INTO {self.table} ({names}, data_source) SELECT {select}, {placeholder} FROM {self.staging}",
            (*params, self.data_source),
        )

    def _delete_predecessors(self, cur: Any, placeholder: str) -> None:
        """Delete the rows of earlier exports of the same data source, and of this job (whatever key it had then)."""
        cur.execute(
            f"DELETE FROM {self.table} WHERE data_source = {placeholder} OR job_id = {placeholder}",
            (self.data_source, self.job_id),
        )

    def _cells(self, batch: Sequence[tuple[Any, ...]], conn: Any) -> list[tuple[Any, ...]]:
        """The rows as the hook's ``insert_rows`` would bind them (e.g. datetimes as ISO strings), NULs removed."""
        serialize = getattr(self.hook, "_serialize_cells", None)
        scrub = self.scrubber.row
        if serialize is None:
            return [scrub(row) for row in batch]
        return [scrub(tuple(serialize(row, conn))) for row in batch]


def split_header_line(content: Iterable[bytes]) -> tuple[list[str] | None, Iterator[bytes]]:
    """
    The CSV header line of ``content`` (its fields), and the content after it.

    :param content: a CSV file's content bytes.
    :return: ``(fields, rest)``; fields is None when the first line is not one CSV line of UTF-8 text (a quoted
        field across lines) or longer than ``MAX_HEADER_BYTES``: only the record reader reads such a file.
    """
    chunks = iter(content)
    head = b""
    for chunk in chunks:
        head += chunk
        end = head.find(b"\n")
        if end >= 0:
            return _csv_fields(head[:end]), chain([head[end + 1 :]], chunks)
        if len(head) > MAX_HEADER_BYTES:
            return None, chunks
    return (_csv_fields(head) if head else None), iter(())


def _csv_fields(line: bytes) -> list[str] | None:
    try:
        return next(csv.reader([line.decode("utf-8").rstrip("\r")], strict=True))
    except (UnicodeDecodeError, csv.Error, StopIteration):
        return None


class NotCopyable(Exception):
    """The export file cannot go through ``COPY`` as it is (nothing was written): load it record by record."""


def _staging_buffers(cur: Any) -> None:
    """
    ``SET LOCAL temp_buffers`` to ``STAGING_BUFFERS`` in the open transaction (PostgreSQL), unless the session has
    used a temporary table already (the server refuses the change then: the load goes on with what it has).
    """
    cur.execute(
        "DO $$ BEGIN PERFORM set_config('temp_buffers', '"
        + STAGING_BUFFERS
        + "', true); EXCEPTION WHEN invalid_parameter_value THEN NULL; END $$"
    )


def _copy(cur: Any, statement: str, chunks: Iterable[str | bytes]) -> None:
    """``COPY ... FROM STDIN`` of ``chunks`` on psycopg 3 (``cursor.copy``) or psycopg2 (``copy_expert``)."""
    if hasattr(cur, "copy_expert"):  # psycopg2
        source = _ChunkFile(iter(chunks))
        try:
            cur.copy_expert(statement, source)
        except Exception:
            if source.error is not None:  # psycopg2 reports it as QueryCanceled: raise the cause itself
                raise source.error from None
            raise
    else:  # psycopg 3
        with cur.copy(statement) as writer:
            for chunk in chunks:
                writer.write(chunk)


class _ChunkFile:
    """
    A read-only file over chunks of text or bytes, for psycopg2's ``copy_expert``.

    ``read`` returns one whole chunk whatever size is asked: psycopg2 sends what it gets, and slicing a
    chunk into its 8 KiB reads would copy it over and over.
    """

    def __init__(self, chunks: Iterator[str | bytes]) -> None:
        self._chunks = chunks
        self.error: BaseException | None = None

    def read(self, size: int = -1) -> str | bytes:
        try:
            for chunk in self._chunks:
                if chunk:  # an empty read is the end of the file to psycopg2
                    return chunk
            return ""
        except BaseException as exc:  # the export's own error (a malformed line, a failed download)
            self.error = exc
            raise

    readline = read
