"""
Loading one export's rows into a SQL table in one transaction: staged, then merged.

Every path ends the same way: in one transaction, the rows of the export's data source and of its job are
deleted (``DELETE FROM <table> WHERE data_source = <key> OR job_id = <job>``; skipped with ``replace=False``),
the staged rows are inserted, the caller's last check runs, and the transaction commits. A failure anywhere rolls it all
back, so another connection sees the table as it was until the commit, then the complete new export.

* **PostgreSQL**: ``COPY <staging> FROM STDIN (FORMAT csv)`` into a temporary table (``ON COMMIT DROP``)
  with the target's column types, so the server parses timestamps and numbers; psycopg 3's
  ``cursor.copy`` or psycopg2's ``copy_expert``, whichever driver the connection is. The merge takes
  ``SHARE ROW EXCLUSIVE`` on the table (readers go on; a second load of the same export waits, then
  deletes the first one's rows).
* **SQLite**: rows go into a temporary table (its own transaction, nothing shared), then the merge runs in
  ``BEGIN IMMEDIATE`` (one writer at a time; readers see the old state until the commit).
* **any other database**: the rows are inserted straight into the table inside the one transaction
  (``executemany`` through the connection of its ``DbApiHook``); concurrent loads of the same export are not
  serialised there.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing, suppress
from itertools import islice
from typing import Any

from airflow_provider_sesexport.transfers._sql_tables import POSTGRESQL, SQLITE, NulScrubber, TableLayout

STAGING = "ses_export_staging"
#: Seconds a SQLite load waits for another writer before it fails (and is retried).
SQLITE_BUSY_TIMEOUT_MS = 60_000


def refused_value(exc: BaseException) -> bool:
    """
    Whether ``exc`` is the database refusing a value (SQLSTATE class 22, "data exception": a timestamp it cannot
    read, a number out of range...): the same export fails the same way on every retry.

    :param exc: what the driver raised (psycopg2 sets ``pgcode``, psycopg 3 ``sqlstate``).
    """
    code = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    return isinstance(code, str) and code.startswith("22")


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
        copy = f"COPY {STAGING} ({names}) FROM STDIN WITH (FORMAT csv)"
        with closing(conn.cursor()) as cur:
            cur.execute(
                f"CREATE TEMPORARY TABLE {STAGING} ON COMMIT DROP AS SELECT {names} FROM {self.table} WITH NO DATA"
            )
            chunks = self._csv_chunks(rows)
            if hasattr(cur, "copy_expert"):  # psycopg2
                source = _ChunkFile(chunks)
                try:
                    cur.copy_expert(copy, source)
                except Exception:
                    if source.error is not None:  # psycopg2 reports it as QueryCanceled: raise the cause itself
                        raise source.error from None
                    raise
            else:  # psycopg 3
                with cur.copy(copy) as writer:
                    for chunk in chunks:
                        writer.write(chunk)
            cur.execute(f"LOCK TABLE {self.table} IN SHARE ROW EXCLUSIVE MODE")
            self._merge(cur, "%s")
        before_commit(self.rows)
        conn.commit()

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
        cur.execute(f"CREATE TEMPORARY TABLE {STAGING} AS SELECT {names} FROM {self.table} WHERE 0")
        cur.execute("BEGIN")
        insert = f"INSERT INTO temp.{STAGING} ({names}) VALUES ({', '.join('?' * len(self.layout.row_names))})"
        for batch in batches(rows, self.batch_size):
            cur.executemany(insert, self._cells(batch, conn))
            self.rows += len(batch)
        cur.execute("COMMIT")  # the temporary table only
        cur.execute("BEGIN IMMEDIATE")
        self._merge(cur, "?")
        before_commit(self.rows)
        cur.execute("COMMIT")
        cur.execute(f"DROP TABLE temp.{STAGING}")

    # -- any other database -----------------------------------------------------------------------------
    def _generic(self, conn: Any, rows: Iterable[tuple[Any, ...]], before_commit: Callable[[int], None]) -> None:
        if getattr(self.hook, "supports_autocommit", False):
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
    def _merge(self, cur: Any, placeholder: str) -> None:
        """Delete the data source's rows (with ``replace``) and insert the staged ones, in the open transaction."""
        if self.replace:
            self._delete_predecessors(cur, placeholder)
        names = ", ".join(self.layout.row_names)
        cur.execute(
            f"INSERT INTO {self.table} ({names}, data_source) SELECT {names}, {placeholder} FROM {STAGING}",
            (self.data_source,),
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


class _ChunkFile:
    """
    A read-only text file over chunks of text, for psycopg2's ``copy_expert``.

    ``read`` returns one whole chunk whatever size is asked: psycopg2 sends what it gets, and slicing a
    chunk into its 8 KiB reads would copy it over and over.
    """

    def __init__(self, chunks: Iterator[str]) -> None:
        self._chunks = chunks
        self.error: BaseException | None = None

    def read(self, size: int = -1) -> str:
        try:
            return next(self._chunks, "")
        except BaseException as exc:  # the export's own error (a malformed line, a failed download)
            self.error = exc
            raise

    readline = read
