"""Load the records of a finished SES v2 export job into a SQL table, streamed, typed and idempotent per export."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields

from airflow_provider_sesexport._compat import get_connection, sql_escape_word
from airflow_provider_sesexport.exceptions import (
    SesExportInputError,
    SesExportJobError,
    SesExportLoadError,
    SesExportRecordsError,
)
from airflow_provider_sesexport.hooks.ses_export import SesExportJobHook
from airflow_provider_sesexport.records import (
    MESSAGE_INSIGHTS,
    METRICS_DATA,
    ExportCheck,
    check_record_count,
    export_content,
)
from airflow_provider_sesexport.transfers._sql_load import ExportLoad, NotCopyable, refused_value, split_header_line
from airflow_provider_sesexport.transfers._sql_tables import (
    DATABASES,
    POSTGRESQL,
    TABLES,
    NulScrubber,
    TableLayout,
    data_source_key,
    insights_csv_fields,
    insights_rows,
    metrics_rows,
    qualified_name,
    table_columns,
    validate_sql_hook,
    validate_sql_identifier,
)
from airflow_provider_sesexport.utils.export_job import utcnow
from airflow_provider_sesexport.utils.validation import invalid, validate_integer, validate_job_id

if TYPE_CHECKING:
    from airflow_provider_sesexport._compat import Context

DEFAULT_COMMIT_EVERY = 1000


class SesExportToSqlOperator(AwsBaseOperator[SesExportJobHook]):
    """
    Load the file of a COMPLETED SES v2 export job into a SQL table through the connection's ``DbApiHook``, in one
    transaction.

    The export is streamed (fresh download URL, resumed downloads, constant memory) through
    :meth:`SesExportJobHook.iter_export_records
    <airflow_provider_sesexport.hooks.ses_export.SesExportJobHook.iter_export_records>` into a staging table
    (``COPY`` into a temporary table on PostgreSQL, where a Message Insights CSV file goes in as it is, without
    the record reader, unless ``COPY`` refuses it; a temporary table on SQLite; on other databases the rows go
    straight into the table inside the transaction), then, in one transaction, the rows of the export's data
    source are deleted and the staged rows inserted (``transfers._sql_load``). Another connection sees the table
    as it was until the commit, then the complete export; a failure anywhere leaves the table as it was. The
    hook is ``BaseHook.get_connection(sql_conn_id).get_hook()``: any common.sql ``DbApiHook``. The table's
    layout depends on the job's source type:

    * Message Insights: the file's twelve columns (timestamps typed), ``job_id`` and ``data_source``.
    * Metrics: a tidy table, ``email_identity``, ``configuration_set``, ``isp``, ``tenant_name`` (null when
      not a dimension of the export), ``metric``, ``aggregation``, ``value``, ``export_start``, ``export_end``
      (the job's data source), ``job_id`` and ``data_source``.

    ``data_source`` is the key of the job's data source (source type, dates, dimensions / filters, metrics):
    a re-export of the same data source replaces its predecessor's rows, loading the same export twice changes
    nothing, and no unique key is needed. The guide (:doc:`/howto/export_to_sql`) gives each table's
    ``CREATE TABLE`` for PostgreSQL and SQLite (what ``create_table=True`` runs); on other databases create the
    table yourself.

    XCom: ``rows`` (rows written), ``table`` (as given, schema-qualified), ``job_id``; the return value is
    ``rows``.

    :param job_id: the export job's id (templated).
    :param table: the table to load into (a plain identifier; quoted in statements, so keywords work).
    :param sql_conn_id: the Airflow connection of the database (postgres, sqlite, or any connection whose
        hook is a common.sql ``DbApiHook``).
    :param schema: the table's schema (PostgreSQL schema, SQLite attached database); None: the default.
    :param commit_every: rows per staging write (bounds memory); the export is one transaction whatever its size.
    :param replace: delete the rows of the export's data source before inserting its own (see above); False:
        add the rows to what is there.
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

    aws_hook_class: type[SesExportJobHook] = SesExportJobHook
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
        validate_sql_identifier(table, "table")
        if schema is not None:
            validate_sql_identifier(schema, "schema")
        if not isinstance(sql_conn_id, str) or not sql_conn_id.strip():
            raise invalid("sql_conn_id", sql_conn_id, "the id of an Airflow connection to a SQL database")
        validate_integer(commit_every, "commit_every", 1)
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

    def execute(self, context: Context) -> int:
        job_id = validate_job_id(self.job_id)
        connection = get_connection(self.sql_conn_id)
        sql_hook = validate_sql_hook(connection.get_hook(), self.sql_conn_id, connection.conn_type)
        database = DATABASES.get(str(connection.conn_type).lower())
        table = qualified_name(self.table, self.schema, database, None if database else sql_escape_word(sql_hook))
        asked_at = utcnow()  # before GetExportJob: the URL's five minutes start no earlier
        job, _ = self.hook.get_completed_export_job(job_id, self.log)
        layout = self._layout(job_id, job)
        self._prepare_table(sql_hook, database, layout, table)
        load = ExportLoad(
            sql_hook,
            database,
            table,
            layout,
            data_source_key(job),
            job_id,
            replace=self.replace,
            batch_size=self.commit_every,
            scrubber=NulScrubber(job_id),
        )
        self.log.info(
            "Loading SES export job %s (%s) into %s on %s (%s): %s",
            job_id,
            layout.source_type,
            table,
            self.sql_conn_id,
            database or connection.conn_type,
            load.how,
        )

        def check(records: int) -> None:
            check_record_count(job_id, job, records, f"nothing was committed to {table}")

        records: _Counted | None = None
        data_format = str((job.get("ExportDestination") or {}).get("DataFormat") or "").upper()
        try:
            written = None
            if database == POSTGRESQL and layout.source_type == MESSAGE_INSIGHTS and data_format == "CSV":
                written = self._load_file(load, job_id, check, job, asked_at)
            if written is None:
                # PostgreSQL parses the timestamps itself (COPY into typed columns): cheaper than datetimes made here
                records = _Counted(
                    self.hook.iter_export_records(
                        job_id, parse_timestamps=database != POSTGRESQL, job=job, retrieved_at=asked_at
                    )
                )
                counted = records
                written = load.run(self._rows(job_id, job, records), lambda rows: check(counted.count))
        except SesExportJobError:
            raise  # the export's own errors (layout, count, download) name their cause already
        except Exception as exc:
            after = f" after {records.count} records" if records is not None else ""
            if refused_value(exc):
                raise SesExportRecordsError(
                    f"{table} refused a value of SES export job {job_id!r}{after}: "
                    f"{type(exc).__name__}: {str(exc).splitlines()[0]}. Nothing was committed; retrying the same "
                    "export does not help."
                ) from None
            raise SesExportLoadError(
                f"Loading SES export job {job_id!r} into {table} failed{after}: "
                f"{type(exc).__name__}: {exc}. Nothing was committed: the table is as it was before the load."
            ) from exc
        scrubber = load.scrubber
        scrubber.warn()
        self.log.info("Loaded SES export job %s into %s: %d rows, one transaction", job_id, table, written)
        self._lineage = {"region": self.hook.conn_region_name, "job_id": job_id, "connection": connection}
        ti = context["ti"]
        ti.xcom_push(key="rows", value=written)
        ti.xcom_push(key="table", value=self.qualified_table)
        ti.xcom_push(key="job_id", value=job_id)
        return written

    @property
    def qualified_table(self) -> str:
        """``schema.table``, or ``table`` without a schema (as given: for XCom and lineage)."""
        return f"{self.schema}.{self.table}" if self.schema else self.table

    @staticmethod
    def _layout(job_id: str, job: dict[str, Any]) -> TableLayout:
        """The table layout of the job's source type (a metrics job must name its dates), before any read."""
        source_type = job.get("ExportSourceType")
        if source_type not in TABLES:
            raise SesExportRecordsError(
                f"SES export job {job_id!r} has ExportSourceType {source_type!r}: only {MESSAGE_INSIGHTS} and "
                f"{METRICS_DATA} exports can be loaded."
            )
        if source_type == METRICS_DATA:
            source = (job.get("ExportDataSource") or {}).get("MetricsDataSource") or {}
            if source.get("StartDate") is None or source.get("EndDate") is None:
                raise SesExportRecordsError(
                    f"SES export job {job_id!r} is a metrics export without MetricsDataSource StartDate / EndDate "
                    "in GetExportJob: export_start and export_end cannot be filled."
                )
        return TABLES[source_type]

    @staticmethod
    def _rows(job_id: str, job: dict[str, Any], records: Iterator[dict[str, Any]]) -> Iterator[tuple[Any, ...]]:
        """The (lazy) rows of the export's records."""
        if job.get("ExportSourceType") == MESSAGE_INSIGHTS:
            return insights_rows(records, job_id)
        source = job["ExportDataSource"]["MetricsDataSource"]
        return metrics_rows(records, job_id, source["StartDate"], source["EndDate"])

    def _load_file(
        self,
        load: ExportLoad,
        job_id: str,
        check: Callable[[int], None],
        job: dict[str, Any],
        asked_at: dt.datetime,
    ) -> int | None:
        """
        Load a Message Insights CSV file as it is (:meth:`ExportLoad.run_file`); return the rows written, or None
        when the file needs the record reader (a header it alone reads, a line ``COPY`` refuses): nothing was
        written then. The download starts with the URL of ``job``, the GetExportJob response asked for at
        ``asked_at`` in this run, while it is fresh.
        """
        with self.hook.open_export_stream(job_id, job=job, retrieved_at=asked_at) as stream:
            header, rest = split_header_line(export_content(ExportCheck(stream).checked(stream)))
            fields = insights_csv_fields(header, job_id) if header is not None else None
            if fields is not None:
                try:
                    return load.run_file(*fields, rest, check)
                except NotCopyable as exc:
                    self.log.info("SES export job %s: COPY refused the file as it is (%s)", job_id, exc)
        load.scrubber = NulScrubber(job_id)  # the record reader counts the NULs again
        self.log.info("Reading SES export job %s record by record (its lines say what is wrong, if anything)", job_id)
        return None

    def _prepare_table(self, sql_hook: Any, database: str | None, layout: TableLayout, table: str) -> None:
        """Create the table (``create_table``), then check it exists with the layout's columns, before any row."""
        if self.create_table:
            if database is None:
                raise invalid(
                    "create_table",
                    True,
                    "False for this connection: it creates tables on PostgreSQL and SQLite only, and "
                    f"{self.sql_conn_id!r} is a {sql_hook.__class__.__name__} connection",
                    "Create the table yourself (the SesExportToSqlOperator guide lists its columns).",
                )
            try:
                for statement in layout.create_statements(database, self.table, self.schema):
                    sql_hook.run(statement)
            except Exception as exc:  # another task may have created it at the same moment: the probe decides
                self.log.info(
                    "Creating %s or its index did not succeed (%s); checking the table", table, type(exc).__name__
                )
        columns = table_columns(sql_hook, database, self.table, self.schema)  # a catalog error is retried
        missing = [name for name in layout.names if name not in (columns or ())]
        if missing:
            named = f"Invalid table={self.table!r}" + (f" (schema={self.schema!r})" if self.schema else "")
            where = f"{table} on {self.sql_conn_id!r}"
            problem = (
                f"{where} does not exist" + (f" (is there a schema {self.schema!r}?)" if self.schema else "")
                if columns is None
                else f"{where} lacks the columns of a {layout.source_type} table: {', '.join(missing)}"
            )
            raise SesExportInputError(
                f"{named}: {problem}. Create it (the SesExportToSqlOperator guide has its CREATE TABLE) "
                "or set create_table=True."
            )

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: input the SES export job, output the table (needs the OpenLineage provider)."""
        from airflow.providers.common.compat.openlineage.facet import Dataset
        from airflow.providers.openlineage.extractors import OperatorLineage

        lineage = getattr(self, "_lineage", None)
        if not lineage:
            return OperatorLineage()
        conn = lineage["connection"]
        scheme = str(conn.conn_type).lower()
        if scheme in ("sqlite",):
            namespace, parts = f"sqlite://{conn.host}", [self.schema or "main", self.table]
        else:
            namespace = f"{scheme}://{conn.host}" + (f":{conn.port}" if conn.port else "")
            default_schema = "public" if scheme in ("postgres", "postgresql") else None
            parts = [p for p in (conn.schema, self.schema or default_schema, self.table) if p]
        return OperatorLineage(
            inputs=[Dataset(namespace=f"aws+sesv2://{lineage['region']}", name=f"export-job/{lineage['job_id']}")],
            outputs=[Dataset(namespace=namespace, name=".".join(parts))],
        )


class _Counted(Iterator[dict[str, Any]]):
    """The records of an export, counted as they are read."""

    def __init__(self, records: Iterator[dict[str, Any]]) -> None:
        self._records = records
        self.count = 0

    def __next__(self) -> dict[str, Any]:
        record = next(self._records)
        self.count += 1
        return record
