"""Copy the file of a finished SES v2 export job into your own S3 bucket, streaming, in constant memory."""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from functools import cached_property, partial
from itertools import chain
from typing import TYPE_CHECKING, Any, BinaryIO

from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields

from airflow_provider_sesexport._compat import AssetOrDataset
from airflow_provider_sesexport.exceptions import (
    SesExportDestinationExistsError,
    SesExportRecordsError,
    SesExportTransferError,
)
from airflow_provider_sesexport.hooks._download import ExportStream
from airflow_provider_sesexport.hooks.ses_export import SesExportJobHook
from airflow_provider_sesexport.links import S3ObjectLink
from airflow_provider_sesexport.records import ExportCheck, RecordCounter, check_record_count
from airflow_provider_sesexport.transfers._conditional_write import create_only
from airflow_provider_sesexport.transfers._destination import (
    check_destination_args,
    console_key,
    is_templated,
    resolve_destination,
    s3_uri,
)
from airflow_provider_sesexport.transfers._pipe import ChunkReader, gzip_transform
from airflow_provider_sesexport.utils.caller import with_frame_walk
from airflow_provider_sesexport.utils.chunks import GZIP_MAGIC
from airflow_provider_sesexport.utils.validation import invalid, validate_job_id

if TYPE_CHECKING:
    from airflow_provider_sesexport._compat import Context

MIB = 1024 * 1024
#: S3 allows at most 10,000 parts per multipart upload.
MAX_PARTS = 10_000
#: A file up to this size is stored with one PutObject, as boto3's ``upload_file`` does (s3transfer's default
#: threshold): a multipart upload costs three more requests, the larger part of copying an export of a few MiB.
SINGLE_PUT_BYTES = 8 * MIB
CONTENT_TYPES = {"CSV": "text/csv", "JSON": "application/json"}


class SesExportToS3Operator(AwsBaseOperator[SesExportJobHook]):
    """
    Copy the file of a COMPLETED SES v2 export job to an S3 object, streaming it through this task.

    Right before downloading, it calls GetExportJob for a fresh pre-signed URL (the one in XCom may
    have expired: it lives five minutes), then streams the file into a multipart upload with the
    Amazon provider's ``S3Hook`` (boto3 managed transfer): the file is never held in memory or
    written to local disk. An expired URL or a dropped connection is retried with a fresh URL,
    resuming where it stopped. Before any of it is stored, the response is checked to be an export of the job's
    ``DataFormat`` (:class:`~airflow_provider_sesexport.records.ExportCheck`: its content type and first bytes), so
    a proxy's error page or a captive portal answering in S3's place fails the task and writes nothing. The byte
    count is checked, and the record count (rows of the CSV,
    objects of the JSON array, read by :mod:`airflow_provider_sesexport.records`) must equal
    ``Statistics.ExportedRecordsCount`` when AWS gives it (real SES returns only ``ProcessedRecordsCount``);
    on a mismatch the upload is aborted (no object is written) and the task fails. A file with no records is
    stored, with a warning; so is one whose records cannot be parsed (``records`` null), unless AWS gave a count.

    With ``replace=False`` the write is conditional (``If-None-Match: *``): of two copies to the same key at once
    (two DAG runs, a backfill beside a scheduled run), one stores its object and the other fails with
    :class:`~airflow_provider_sesexport.exceptions.SesExportDestinationExistsError`, its upload aborted. With
    ``replace=True`` the last writer wins.

    XCom: ``s3_uri``, ``size_bytes`` (the stored object's size), ``records`` (null when not
    counted), ``etag``; the return value is the ``s3://`` URI.

    Data awareness: when the destination is literal (no Jinja), the operator declares it as an
    outlet (an ``Asset`` on Airflow 3, a ``Dataset`` on Airflow 2), so DAGs can be scheduled on
    ``s3://bucket/key``. A templated destination is only known at run time: pass ``outlets=`` yourself
    (e.g. ``Asset("s3://bucket/ses/vdm")``) to schedule downstream DAGs on it. Each outlet's event
    gets ``extra`` with the URI, size and record count. With the OpenLineage provider installed,
    lineage goes from the SES export job to the S3 object.

    :param job_id: the export job's id (templated).
    :param s3_bucket: destination bucket (templated); with ``s3_key``, or use ``dest``.
    :param s3_key: destination key (templated).
    :param dest: the destination as one ``s3://bucket/key`` URI (templated), instead of
        ``s3_bucket`` / ``s3_key``.
    :param dest_aws_conn_id: connection for the destination bucket; None (default) uses
        ``aws_conn_id`` with the same ``region_name``, ``verify`` and ``botocore_config``.
    :param replace: overwrite an existing object; if False (default) an existing object fails the task, and so
        does one another writer creates while the copy runs.
    :param gzip: store the object gzip-compressed (name the key ``.gz``); a file that is
        gzip-compressed already is stored as it is. Records are counted on the uncompressed content.
    :param chunk_size: download chunk size in bytes.
    :param part_size: multipart upload part size in bytes (at least 5 MiB; grown for very large
        files so that no more than 10,000 parts are needed).
    :param max_concurrency: parts uploaded in parallel.
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
    template_fields: Sequence[str] = aws_template_fields("job_id", "s3_bucket", "s3_key", "dest")
    ui_color = "#ffd89b"

    @property
    def operator_extra_links(self) -> tuple[Any, ...]:
        """
        The console link to the copied object.

        A property, as the Amazon provider's EMR Serverless operator does it; Airflow's serialization reads it
        from the task, mapped or not.
        """
        return (S3ObjectLink(),)

    def __init__(
        self,
        *,
        job_id: str,
        s3_bucket: str | None = None,
        s3_key: str | None = None,
        dest: str | None = None,
        dest_aws_conn_id: str | None = None,
        replace: bool = False,
        gzip: bool = False,
        chunk_size: int = MIB,
        part_size: int = 5 * MIB,
        max_concurrency: int = 4,
        **kwargs: Any,
    ) -> None:
        check_destination_args(dest, s3_bucket, s3_key)
        for name, value, low in (("chunk_size", chunk_size, 1), ("part_size", part_size, 5 * MIB)):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise invalid(name, value, f"an integer number of bytes >= {low}")
        if not isinstance(max_concurrency, int) or isinstance(max_concurrency, bool) or max_concurrency < 1:
            raise invalid("max_concurrency", max_concurrency, "an integer >= 1")
        for name, flag in (("replace", replace), ("gzip", gzip)):
            if not isinstance(flag, bool):
                raise invalid(name, flag, "True or False")
        literal = [v for v in (dest, s3_bucket, s3_key) if v is not None]
        if kwargs.get("outlets") is None and not any(is_templated(v) for v in literal):
            bucket, key = resolve_destination(dest, s3_bucket, s3_key)
            kwargs["outlets"] = [AssetOrDataset(s3_uri(bucket, key))]
        super().__init__(**kwargs)
        self.job_id = job_id
        self.s3_bucket = s3_bucket
        self.s3_key = s3_key
        self.dest = dest
        self.dest_aws_conn_id = dest_aws_conn_id
        self.replace = replace
        self.gzip = gzip
        self.chunk_size = chunk_size
        self.part_size = part_size
        self.max_concurrency = max_concurrency
        self._lineage: dict[str, Any] = {}

    @cached_property
    def dest_hook(self) -> Any:
        """The Amazon provider's S3Hook for the destination."""
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        if self.dest_aws_conn_id is None:
            hook = S3Hook(
                aws_conn_id=self.aws_conn_id,
                region_name=self.region_name,
                verify=self.verify,
                config=self.botocore_config,
            )
        else:
            hook = S3Hook(aws_conn_id=self.dest_aws_conn_id)
        return with_frame_walk(hook)

    def execute(self, context: Context) -> str:
        job_id = validate_job_id(self.job_id)
        bucket, key = resolve_destination(self.dest, self.s3_bucket, self.s3_key)
        uri = s3_uri(bucket, key)
        s3 = self.dest_hook
        if not self.replace and s3.head_object(key, bucket) is not None:
            raise SesExportDestinationExistsError(uri)
        # A fresh GetExportJob right before downloading: the URL is valid for five minutes from now.
        stream = self.hook.open_export_stream(job_id, chunk_size=self.chunk_size)
        try:
            size_bytes, records = self._copy(stream, s3, bucket, key)
        finally:
            stream.close()
        head = s3.head_object(key, bucket) or {}
        if head.get("ContentLength") is not None and head["ContentLength"] != size_bytes:
            raise SesExportTransferError(
                f"{uri} holds {head['ContentLength']} bytes after the upload, but {size_bytes} were sent."
            )
        etag = str(head.get("ETag", "")).strip('"') or None
        if records == 0:
            self.log.warning("SES export job %s has no records: stored %s all the same.", job_id, uri)
        self._lineage = {"job_id": job_id, "bucket": bucket, "key": key, "region": self.hook.conn_region_name}
        ti = context["ti"]
        ti.xcom_push(key="s3_uri", value=uri)
        ti.xcom_push(key="size_bytes", value=size_bytes)
        ti.xcom_push(key="records", value=records)
        ti.xcom_push(key="etag", value=etag)
        S3ObjectLink.persist(
            context=context,
            operator=self,
            region_name=s3.conn_region_name,
            aws_partition=s3.conn_partition,
            bucket_name=bucket,
            key=console_key(key),
        )
        self._add_outlet_extra(context, {"s3_uri": uri, "size_bytes": size_bytes, "records": records, "job_id": job_id})
        self.log.info(
            "Copied SES export job %s to %s: %d bytes, %s records, %d URL refreshes, %d resumes",
            job_id,
            uri,
            size_bytes,
            "unchecked" if records is None else records,
            stream.url_refreshes,
            stream.resumes,
        )
        return uri

    def _part_size(self, size: int | None) -> int:
        """The part size: ``part_size``, grown (in MiB steps) when the file would need too many parts."""
        if not size:
            return self.part_size
        needed = math.ceil(size / (MAX_PARTS - 1) / MIB) * MIB
        return max(self.part_size, needed)

    def _copy(self, stream: ExportStream, s3: Any, bucket: str, key: str) -> tuple[int, int | None]:
        """Stream the export into ``s3://bucket/key``; return ``(bytes stored, records or None)``."""
        from boto3.s3.transfer import TransferConfig

        data_format = (stream.job.get("ExportDestination") or {}).get("DataFormat")
        # Counted by the reader's parser, in a thread of its own fed the chunks as they pass.
        counter = RecordCounter(data_format=str(data_format)) if str(data_format).upper() in CONTENT_TYPES else None
        records: int | None = None
        check = ExportCheck(stream)
        first = next(stream, b"")  # the first response tells the size, which sets the part size
        part = self._part_size(stream.size)
        compress, flush = gzip_transform() if self.gzip else (None, None)
        if self.gzip and first[:2] == GZIP_MAGIC:
            self.log.info("The export file is gzip-compressed already: storing it as it is.")
            compress, flush = None, None

        def transform(chunk: bytes) -> bytes:
            check.update(chunk)  # raises (and so aborts the upload) as soon as the content is not an export
            if counter is not None:
                counter.update(chunk)
            return compress(chunk) if compress else chunk

        def finish() -> bytes:
            nonlocal records
            if stream.size is not None and stream.bytes_read != stream.size:
                raise SesExportTransferError(
                    f"Received {stream.bytes_read} bytes of SES export job {stream.job_id!r}, "
                    f"but the server announced {stream.size}."
                )
            check.finish()
            if counter is not None:
                uncounted = ""
                try:
                    records = counter.records
                except SesExportRecordsError as exc:
                    uncounted = str(exc)
                    self.log.warning("SES export job %s: records not counted: %s", stream.job_id, exc)
                outcome = f"not writing s3://{bucket}/{key}"
                check_record_count(stream.job_id, stream.job, records, outcome, uncounted=uncounted)
            return flush() if flush else b""

        content_type = "application/gzip" if self.gzip else CONTENT_TYPES.get(str(data_format).upper())
        config = TransferConfig(
            multipart_threshold=max(part, SINGLE_PUT_BYTES),
            multipart_chunksize=part,
            max_concurrency=self.max_concurrency,
            max_io_queue=self.max_concurrency,
            use_threads=True,
            # The classic client: it runs botocore's events, which make the write conditional (replace=False).
            preferred_transfer_client="classic",
        )
        # Parts read but not yet uploaded (s3transfer's default is 10): this bounds memory.
        config.max_in_memory_upload_chunks = self.max_concurrency
        extra_args = {**s3.extra_args, **({"ContentType": content_type} if content_type else {})}
        # boto3's managed transfer on the S3Hook's client: multipart, parts uploaded in parallel.
        upload = partial(s3.get_conn().upload_fileobj, Bucket=bucket, Key=key, ExtraArgs=extra_args, Config=config)
        try:
            with nullcontext() if self.replace else create_only(s3.get_conn(), bucket, key):
                size = self._stream_into(upload, chain([first], stream), transform, finish)
        finally:
            if counter is not None:
                counter.close()
        return size, records

    def _stream_into(
        self,
        upload: Callable[[BinaryIO], object],
        chunks: Iterator[bytes],
        transform: Callable[[bytes], bytes],
        finish: Callable[[], bytes],
    ) -> int:
        """
        Hand ``upload`` a file reading ``chunks``, each through ``transform``, then ``finish``.

        :param upload: ``upload_fileobj`` with the destination bound.
        :param chunks: the export file's chunks.
        :param transform: applied to each chunk (count, compress).
        :param finish: called after the last chunk (end-of-stream checks); returns the last bytes.
        :return: the bytes read.
        """
        source = ChunkReader(chunks, transform=transform, finish=finish)
        try:
            # An error raised while reading makes boto3 abort the multipart upload.
            with io.BufferedReader(source) as body:
                upload(body)
        except BaseException:
            if source.error is not None:  # the cause, not whatever boto3 made of it
                raise source.error from None
            raise
        return source.bytes_out

    def _add_outlet_extra(self, context: Context, extra: dict[str, Any]) -> None:
        """Attach ``extra`` to the events of this task's Asset / Dataset outlets."""
        events = context.get("outlet_events")  # type: ignore[attr-defined]
        if events is None:
            return
        for outlet in self.outlets or []:
            if isinstance(outlet, AssetOrDataset):
                try:
                    events[outlet].extra.update(extra)
                except Exception as exc:  # extras are a courtesy; never fail a finished copy over them
                    self.log.debug("Could not attach extra to outlet %s: %s", outlet, exc)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: input the SES export job, output the S3 object (needs the OpenLineage provider)."""
        from airflow.providers.common.compat.openlineage.facet import Dataset
        from airflow.providers.openlineage.extractors import OperatorLineage

        if not self._lineage:
            return OperatorLineage()
        lineage = self._lineage
        return OperatorLineage(
            inputs=[Dataset(namespace=f"aws+sesv2://{lineage['region']}", name=f"export-job/{lineage['job_id']}")],
            outputs=[Dataset(namespace=f"s3://{lineage['bucket']}", name=lineage["key"])],
        )
