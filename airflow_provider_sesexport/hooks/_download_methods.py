"""
The download methods of the hook; the machinery behind them (``requests``, resuming, ``s3://`` reads)
lives in :mod:`airflow_provider_sesexport.hooks._download` and is imported only when a download starts,
so a DAG file importing the hook does not pay for it.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from botocore.config import Config

    from airflow_provider_sesexport.hooks._download import ExportStream

DEFAULT_CHUNK_SIZE = 1024 * 1024
#: Failed attempts in a row (no byte delivered in between) before a download gives up.
DEFAULT_MAX_ATTEMPTS = 6


class SesExportDownloadMixin:
    """
    Download methods of :class:`~airflow_provider_sesexport.hooks.ses_export.SesExportJobHook`.

    ``download_timeout`` is ``(connect, read)`` seconds for https downloads; ``download_retry_delay``
    the first pause after a network error (doubled on each failure in a row).
    """

    download_timeout: tuple[float, float] = (10.0, 60.0)
    download_retry_delay: float = 1.0
    download_max_attempts: int = DEFAULT_MAX_ATTEMPTS
    _export_s3_hook_cache: Any = None

    # Provided by AwsBaseHook.
    log: logging.Logger
    aws_conn_id: str | None
    region_name: str | None
    verify: bool | str | None
    config: Config

    def get_export_job(self, job_id: str) -> dict[str, Any]:  # pragma: no cover - implemented by the hook
        raise NotImplementedError

    def _fresh_export_url(self, job_id: str) -> tuple[str, dt.datetime, dict[str, Any]]:
        """GetExportJob now: ``(url, expires_at, job)``; the job must be COMPLETED."""
        from airflow_provider_sesexport.exceptions import SesExportJobError
        from airflow_provider_sesexport.utils.export_job import observe_export_job
        from airflow_provider_sesexport.utils.job_summary import s3_url_of, url_expires_at, utcnow

        job = self.get_export_job(job_id)
        retrieved_at = utcnow()
        outcome = observe_export_job(job_id, job, self.log, retrieved_at)
        if not outcome.succeeded:
            raise SesExportJobError(
                f"SES export job {job_id!r} has not finished (status {outcome.job_status}), so it has no file "
                "to download yet: put SesExportJobSensor upstream of this task."
            )
        url = s3_url_of(job)
        if not url:
            raise SesExportJobError(f"SES export job {job_id!r} is COMPLETED but GetExportJob returned no S3Url.")
        return url, url_expires_at(url, retrieved_at), job

    def get_export_download_url(self, job_id: str) -> tuple[str, dt.datetime]:
        """
        Return a fresh download URL of a COMPLETED export job and when it expires.

        Calls GetExportJob now: the URL is valid for five minutes from this call. It is a bearer
        credential (registered with the secrets masker here): do not log it or push it to XCom.

        :param job_id: the export job's id.
        :return: ``(url, expires_at)``; ``url`` is https pre-signed or ``s3://bucket/key``,
            ``expires_at`` a timezone-aware UTC datetime.
        """
        url, expires_at, _ = self._fresh_export_url(job_id)
        return url, expires_at

    def open_export_stream(
        self, job_id: str, chunk_size: int = DEFAULT_CHUNK_SIZE, max_attempts: int | None = None
    ) -> ExportStream:
        """
        Fetch a fresh URL for a COMPLETED export job and return the stream of its file's bytes.

        The :class:`ExportStream` also tells the job response, the file size, ETag and progress.

        :param job_id: the export job's id.
        :param chunk_size: bytes per chunk.
        :param max_attempts: failed attempts in a row before giving up (default ``download_max_attempts``).
        """
        from airflow_provider_sesexport.hooks._download import ExportStream

        stream = ExportStream(
            self,
            job_id,
            chunk_size=chunk_size,
            max_attempts=max_attempts or self.download_max_attempts,
            retry_delay=self.download_retry_delay,
        )
        return stream.open()

    def stream_export(self, job_id: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
        """
        Yield the bytes of a COMPLETED export job's file, in chunks of ``chunk_size``, in constant memory.

        An expired or rejected URL, or a dropped connection, is retried with a fresh URL from a new
        GetExportJob, resuming with ``Range`` where the server allows it.

        :param job_id: the export job's id.
        :param chunk_size: bytes per chunk (the last one may be shorter).
        """
        with self.open_export_stream(job_id, chunk_size=chunk_size) as stream:
            yield from stream

    def iter_export_records(self, job_id: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[dict[str, Any]]:
        """
        Yield the records of a COMPLETED export job's file, one dict per record, in constant memory.

        The file is streamed as by :meth:`stream_export` (fresh URL, resumed downloads) and read in
        the layout the job names (``ExportSourceType``, ``ExportDestination.DataFormat``); values are
        normalised as :func:`~airflow_provider_sesexport.records.iter_records` describes.

        :param job_id: the export job's id.
        :param chunk_size: bytes per downloaded chunk.
        :raises SesExportRecordsError: the file is not in the layout the job names.
        """
        from airflow_provider_sesexport.records import iter_records

        with self.open_export_stream(job_id, chunk_size=chunk_size) as stream:
            yield from iter_records(
                stream,
                source_type=stream.job.get("ExportSourceType"),
                data_format=(stream.job.get("ExportDestination") or {}).get("DataFormat"),
            )

    def download_export(self, job_id: str, path: str | os.PathLike[str], chunk_size: int = DEFAULT_CHUNK_SIZE) -> int:
        """
        Download a COMPLETED export job's file to ``path`` (written to ``path.part``, renamed when complete,
        removed if the download fails).

        :param job_id: the export job's id.
        :param path: the local file to write.
        :param chunk_size: bytes per write.
        :return: the number of bytes written.
        """
        target = Path(path)
        partial = target.with_name(target.name + ".part")
        try:
            with self.open_export_stream(job_id, chunk_size=chunk_size) as stream, partial.open("wb") as out:
                for chunk in stream:
                    out.write(chunk)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        os.replace(partial, target)
        self.log.info("Downloaded SES export job %s: %d bytes to %s", job_id, stream.bytes_read, target)
        return stream.bytes_read

    # -- helpers ------------------------------------------------------------------------------
    def _download_verify(self) -> bool | str:
        """``verify`` for https downloads: the hook's setting (True unless it says otherwise)."""
        verify = self.verify
        return True if verify is None else verify

    def _export_s3_hook(self) -> Any:
        """The Amazon provider's S3Hook on this hook's connection, for ``s3://`` export URLs."""
        hook = getattr(self, "_export_s3_hook_cache", None)
        if hook is None:
            from airflow.providers.amazon.aws.hooks.s3 import S3Hook

            hook = S3Hook(aws_conn_id=self.aws_conn_id, region_name=self.region_name, verify=self.verify)
            self._export_s3_hook_cache = hook
        return hook
