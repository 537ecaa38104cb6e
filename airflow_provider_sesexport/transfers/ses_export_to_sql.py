"""Load the records of a finished SES v2 export job into a SQL table, streamed, typed and idempotent per export."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import islice
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields

from airflow_provider_sesexport.hooks.ses_export import SesExportJobHook

if TYPE_CHECKING:
    from airflow_provider_sesexport._compat import Context
    from airflow_provider_sesexport.transfers._sql_tables import TableLayout

DEFAULT_COMMIT_EVERY = 1000


class SesExportToSqlOperator(AwsBaseOperator[SesExportJobHook]):
    """
    Load the file of a COMPLETED SES v2 export job into a SQL table through the connection's ``DbApiHook``.

    The export is streamed (fresh download URL, resumed downloads, constant memory) through
    :meth:`SesExportJobHook.iter_export_records
    <airflow_provider_sesexport.hooks.ses_export.SesExportJobHook.iter_export_records>` and written in
    batches of ``commit_every`` rows, one transaction each, with the hook of ``sql_conn_id``
    (``BaseHook.get_connection(sql_conn_id).get_hook()``: any common.sql ``DbApiHook``, i.e. any database
    with an Airflow SQL provider). The table's layout depends on the job's source type:

    * Message Insights: the file's twelve columns (timestamps typed) and ``job_id``; natural key
      ``(messageid, destination)``.
    * Metrics: a tidy table, ``email_identity``, ``configuration_set``, ``isp``, ``tenant_name`` (null when
      not a dimension of the export), ``metric``, ``aggregation``, ``value``, ``export_start``, ``export_end``
      (the job's data source) and ``job_id``; natural key: every column but ``value`` and ``job_id``.

    The README gives each table's ``CREATE TABLE`` for PostgreSQL and SQLite (what ``create_table=True``
    runs); on other databases create the table yourself.

    With ``replace`` (the default) loading the same export twice, or a new export of the same data source,
    leaves one row per natural key: on PostgreSQL and SQLite through ``insert_rows(replace=True,
    replace_index=<natural key>)`` (``ON CONFLICT ... DO UPDATE``, ``REPLACE INTO``), on other databases
    (and where the installed common.sql has no upsert for the database) by deleting the batch's natural
    keys and inserting its rows in one transaction. A failure rolls back the batch being written; the
    batches committed before it are written again in place by a re-run.

    XCom: ``rows`` (rows written), ``table`` (as written to, schema-qualified), ``job_id``; the return
    value is ``rows``. One log line per committed batch gives the running count.

    :param job_id: the export job's id (templated).
    :param table: the table to load into (a plain identifier).
    :param sql_conn_id: the Airflow connection of the database (postgres, sqlite, or any connection whose
        hook is a common.sql ``DbApiHook``).
    :param schema: the table's schema (PostgreSQL schema, SQLite attached database); None: the default.
    :param commit_every: rows per batch (one transaction each).
    :param replace: write one row per natural key (see above); False: plain ``INSERT`` (a re-run adds the
        rows again, or fails on the table's unique key).
    :param create_table: create the table (``CREATE TABLE IF NOT EXISTS``) on PostgreSQL or SQLite when it
        does not exist; False (default): a missing table fails the task before anything is written.
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
    ui_color = "#d5e8d4"

    def __init__(
        self,
        *,
        job_id: str,
        table: str,
        sql_conn_id: str,
        schema: str | None = None,
        commit_every: int = DEFAULT_COMMIT_EVERY,
        replace: bool = True,
        create_table: bool = False,
        **kwargs: Any,
    ) -> None:
        # the rules load when a DAG builds this operator, not when a DAG file imports the module
        from airflow_provider_sesexport.utils.validation import invalid, validate_attempts, validate_sql_identifier

        validate_sql_identifier(table, "table")
        if schema is not None:
            validate_sql_identifier(schema, "schema")
        if not isinstance(sql_conn_id, str) or not sql_conn_id.strip():
            raise invalid("sql_conn_id", sql_conn_id, "the id of an Airflow connection to a SQL database")
        validate_attempts(commit_every, "commit_every")
        for name, flag in (("replace", replace), ("create_table", create_table)):
            if not isinstance(flag, bool):
                raise invalid(name, flag, "True or False")
        super().__init__(**kwargs)
        self.job_id = job_id
        self.table = table
        self.sql_conn_id = sql_conn_id
        self.schema = schema
        self.commit_every = commit_every
        self.replace = replace
        self.create_table = create_table

    @property
    def qualified_table(self) -> str:
        """``schema.table``, or ``table`` without a schema."""
        return f"{self.schema}.{self.table}" if self.schema else self.table

    def execute(self, context: Context) -> int:
        from airflow_provider_sesexport._compat import get_connection
        from airflow_provider_sesexport.exceptions import SesExportLoadError
        from airflow_provider_sesexport.transfers._sql_tables import DATABASES
        from airflow_provider_sesexport.transfers._sql_writer import BatchWriter, choose_path
        from airflow_provider_sesexport.utils.validation import validate_job_id, validate_sql_hook

        job_id = validate_job_id(self.job_id)
        connection = get_connection(self.sql_conn_id)
        sql_hook = validate_sql_hook(connection.get_hook(), self.sql_conn_id, connection.conn_type)
        database = DATABASES.get(str(connection.conn_type).lower())
        job = self._completed_job(job_id)
        layout, rows = self._rows(job_id, job)
        table = self.qualified_table
        self._prepare_table(sql_hook, database, layout)
        path, how = choose_path(sql_hook, database, self.replace)
        self.log.info(
            "Loading SES export job %s (%s) into %s on %s (%s): %s",
            job_id,
            layout.source_type,
            table,
            self.sql_conn_id,
            database or connection.conn_type,
            how,
        )
        writer = BatchWriter(sql_hook, table, layout, path)
        written = 0
        for number, batch in enumerate(_batches(rows, self.commit_every), 1):
            try:
                writer.write(batch)
            except Exception as exc:
                raise SesExportLoadError(
                    f"Writing batch {number} ({len(batch)} rows) of SES export job {job_id!r} into {table} failed: "
                    f"{type(exc).__name__}: {exc}. That batch was rolled back; the {written} rows committed "
                    "before it are written again in place by a re-run."
                ) from exc
            written += len(batch)
            self.log.info(
                "Committed batch %d into %s: %d rows of SES export job %s so far", number, table, written, job_id
            )
        self.log.info("Loaded SES export job %s into %s: %d rows (%s)", job_id, table, written, path)
        ti = context["ti"]
        ti.xcom_push(key="rows", value=written)
        ti.xcom_push(key="table", value=table)
        ti.xcom_push(key="job_id", value=job_id)
        return written

    def _completed_job(self, job_id: str) -> dict[str, Any]:
        """GetExportJob: the job if it is COMPLETED, else the error (FAILED / CANCELLED / not finished)."""
        from airflow_provider_sesexport.exceptions import SesExportJobError
        from airflow_provider_sesexport.utils.export_job import observe_export_job

        job = self.hook.get_export_job(job_id)
        outcome = observe_export_job(job_id, job, self.log)
        if not outcome.succeeded:
            raise SesExportJobError(
                f"SES export job {job_id!r} has not finished (status {outcome.job_status}), so there is nothing "
                "to load yet: put SesExportJobSensor upstream of this task."
            )
        return job

    def _rows(self, job_id: str, job: dict[str, Any]) -> tuple[TableLayout, Iterator[tuple[Any, ...]]]:
        """The table layout of the job's source type and the (lazy) rows of its export."""
        from airflow_provider_sesexport.exceptions import SesExportRecordsError
        from airflow_provider_sesexport.records import MESSAGE_INSIGHTS, METRICS_DATA
        from airflow_provider_sesexport.transfers._sql_tables import TABLES, insights_rows, metrics_rows

        source_type = job.get("ExportSourceType")
        if source_type not in TABLES:
            raise SesExportRecordsError(
                f"SES export job {job_id!r} has ExportSourceType {source_type!r}: only {MESSAGE_INSIGHTS} and "
                f"{METRICS_DATA} exports can be loaded."
            )
        records = self.hook.iter_export_records(job_id)
        if source_type == MESSAGE_INSIGHTS:
            return TABLES[source_type], insights_rows(records, job_id)
        source = (job.get("ExportDataSource") or {}).get("MetricsDataSource") or {}
        start, end = source.get("StartDate"), source.get("EndDate")
        if start is None or end is None:
            raise SesExportRecordsError(
                f"SES export job {job_id!r} is a metrics export without MetricsDataSource StartDate / EndDate "
                "in GetExportJob: export_start and export_end cannot be filled."
            )
        return TABLES[source_type], metrics_rows(records, job_id, start, end)

    def _prepare_table(self, sql_hook: Any, database: str | None, layout: TableLayout) -> None:
        """Create the table (``create_table``) or check it exists with the layout's columns, before any row."""
        from airflow_provider_sesexport.exceptions import SesExportInputError
        from airflow_provider_sesexport.utils.validation import invalid

        table = self.qualified_table
        probe = f"SELECT {', '.join(layout.names)} FROM {table} WHERE 1 = 0"
        if self.create_table:
            if database is None:
                raise invalid(
                    "create_table",
                    True,
                    "False for this connection: it creates tables on PostgreSQL and SQLite only, and "
                    f"{self.sql_conn_id!r} is a {sql_hook.__class__.__name__} connection",
                    "Create the table yourself (the README lists its columns and natural key).",
                )
            try:
                for statement in layout.create_statements(database, self.table, self.schema):
                    sql_hook.run(statement)
            except Exception:
                # Another task may have created it at the same moment: fine if it is there now.
                try:
                    sql_hook.get_records(probe)
                except Exception:
                    pass
                else:
                    return
                raise
            return
        try:
            sql_hook.get_records(probe)
        except Exception as exc:
            reachable, _ = sql_hook.test_connection()
            if not reachable:  # not the table's fault: an ordinary failure, retries apply
                raise
            raise SesExportInputError(
                f"Invalid table={self.table!r}"
                + (f" (schema={self.schema!r})" if self.schema else "")
                + f": {table} does not exist on {self.sql_conn_id!r} or lacks the columns of a "
                f"{layout.source_type} table ({', '.join(layout.names)}): {type(exc).__name__}: {exc}. "
                "Create it (the README has its CREATE TABLE) or set create_table=True."
            ) from None


def _batches(rows: Iterator[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    """Consecutive lists of up to ``size`` rows."""
    while batch := list(islice(rows, size)):
        yield batch
