"""
Writing batches of rows through a common.sql ``DbApiHook``, idempotently per natural key.

Two paths, chosen per database and installed common.sql (:func:`choose_path`):

* **upsert**: ``hook.insert_rows(rows, replace=True, replace_index=<natural key>)``, one call (one
  transaction) per batch. Taken on PostgreSQL when the hook or its common.sql dialect builds its own
  upsert (``INSERT ... ON CONFLICT (<key>) DO UPDATE``), and on SQLite, whose ``REPLACE INTO`` (the generic
  statement) replaces the row with the same natural key through the table's unique key.
* **delete-then-insert**: on one connection, per batch, ``DELETE FROM <table> WHERE <key> = ...`` for the
  batch's keys (``IS NULL`` for a null key column), then ``INSERT``, then one commit; rolled back on any
  error. Taken everywhere else: it needs no unique key on the table and no database-specific statement.

Either way a failed batch leaves nothing behind, and the batches committed before it hold rows a re-run
writes again in place.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import closing
from typing import Any

from airflow_provider_sesexport._compat import sql_replace_statement
from airflow_provider_sesexport.transfers._sql_tables import POSTGRESQL, SQLITE, TableLayout

UPSERT = "upsert"
DELETE_THEN_INSERT = "delete-then-insert"
INSERT = "insert"

_SQLITE_REPLACE = ("REPLACE INTO", "INSERT OR REPLACE INTO")


def choose_path(hook: Any, database: str | None, replace: bool) -> tuple[str, str]:
    """
    ``(path, how)``: how batches are written, and the statement that does it (for the log).

    :param hook: the connection's ``DbApiHook``.
    :param database: ``postgresql``, ``sqlite`` or None (another database).
    :param replace: False writes plain ``INSERT`` statements (a re-run adds the rows again).
    """
    if not replace:
        return INSERT, "INSERT through insert_rows"
    statement = sql_replace_statement(hook)
    if database == POSTGRESQL and statement is None:
        return UPSERT, "INSERT ... ON CONFLICT (natural key) DO UPDATE through insert_rows"
    if database == SQLITE and statement is not None and statement.strip().upper().startswith(_SQLITE_REPLACE):
        return UPSERT, f"{statement.split('{')[0].strip()} through insert_rows"
    return DELETE_THEN_INSERT, "DELETE of the batch's natural keys, then INSERT, in one transaction per batch"


class BatchWriter:
    """
    Writes batches of rows of one layout into ``table`` along ``path``.

    :param hook: the connection's ``DbApiHook``.
    :param table: the table, schema-qualified when it has one.
    :param layout: the table's layout (columns and natural key).
    :param path: :data:`UPSERT`, :data:`DELETE_THEN_INSERT` or :data:`INSERT`.
    """

    def __init__(self, hook: Any, table: str, layout: TableLayout, path: str) -> None:
        self.hook = hook
        self.table = table
        self.layout = layout
        self.path = path

    def write(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """
        Write ``rows`` in one transaction; on an error nothing of them stays written.

        :param rows: the rows, in the layout's column order.
        """
        if not rows:
            return
        if self.path == DELETE_THEN_INSERT:
            self._delete_then_insert(rows)
            return
        kwargs: dict[str, Any] = {}
        if self.path == UPSERT:
            kwargs = {"replace": True, "replace_index": list(self.layout.key)}
        # commit_every = len(rows): insert_rows commits once, after the last row; an error before that closes
        # the connection uncommitted, which rolls the batch back.
        self.hook.insert_rows(
            self.table,
            rows,
            target_fields=list(self.layout.names),
            commit_every=len(rows),
            executemany=True,
            **kwargs,
        )

    def _delete_then_insert(self, rows: Sequence[tuple[Any, ...]]) -> None:
        names = self.layout.names
        key_at = [names.index(name) for name in self.layout.key]
        placeholder = self.hook.placeholder
        serialize = getattr(self.hook, "_serialize_cells", None)
        insert = f"INSERT INTO {self.table} ({', '.join(names)}) VALUES ({', '.join([placeholder] * len(names))})"
        # Rows whose key has nulls in the same columns share one DELETE statement (``col IS NULL`` there).
        deletes: dict[tuple[bool, ...], set[tuple[Any, ...]]] = {}
        for row in rows:
            key = tuple(row[i] for i in key_at)
            deletes.setdefault(tuple(value is None for value in key), set()).add(key)
        with closing(self.hook.get_conn()) as conn:
            if getattr(self.hook, "supports_autocommit", False):
                self.hook.set_autocommit(conn, False)
            try:
                with closing(conn.cursor()) as cur:
                    for nulls, keys in deletes.items():
                        where = " AND ".join(
                            f"{name} IS NULL" if null else f"{name} = {placeholder}"
                            for name, null in zip(self.layout.key, nulls, strict=True)
                        )
                        params = [self._cells([v for v in key if v is not None], serialize, conn) for key in keys]
                        cur.executemany(f"DELETE FROM {self.table} WHERE {where}", params)
                    cur.executemany(insert, [self._cells(row, serialize, conn) for row in rows])
                conn.commit()
            except BaseException:
                conn.rollback()
                raise

    @staticmethod
    def _cells(values: Sequence[Any], serialize: Any, conn: Any) -> tuple[Any, ...]:
        """The values as the hook's ``insert_rows`` would bind them (e.g. datetimes as ISO strings on SQLite)."""
        return tuple(serialize(values, conn)) if serialize is not None else tuple(values)
