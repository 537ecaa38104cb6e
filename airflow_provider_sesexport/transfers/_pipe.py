"""
The pieces between the export download and boto3's managed upload: the chunk reader and gzip.

``upload_fileobj`` given a non-seekable file reads it one part at a time in its submission thread
and uploads earlier parts in parallel; :class:`~airflow_provider_sesexport.utils.chunks.ChunkReader`
pulls the export stream's chunks as those reads ask for them, checking, counting and optionally
gzipping on the way. Memory stays bounded by boto3's in-flight parts plus one chunk, whatever the
file size. An error while pulling (including a failed end-of-stream check) is raised from ``read()``,
so boto3 aborts the multipart upload and no partial object is ever created.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

from airflow_provider_sesexport.utils.chunks import ChunkReader

__all__ = ["ChunkReader", "gzip_transform"]


def gzip_transform() -> tuple[Callable[[bytes], bytes], Callable[[], bytes]]:
    """``(compress, flush)`` producing one gzip member from the chunks fed to ``compress``."""
    deflate = zlib.compressobj(6, zlib.DEFLATED, 31)
    return deflate.compress, deflate.flush
