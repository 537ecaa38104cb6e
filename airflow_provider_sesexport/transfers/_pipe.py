"""
A read-only file over a download running in a background thread, for boto3's managed upload.

The downloader thread pulls chunks from the export stream, counts records, optionally gzips, and puts
the result into a bounded queue; ``upload_fileobj`` reads parts from the other end. Download and
upload overlap, and memory stays bounded by the queue plus boto3's in-flight parts, whatever the
file size. An error on the download side (including a failed end-of-stream check) is raised from
``read()``, so boto3 aborts the multipart upload and no partial object is ever created.
"""

from __future__ import annotations

import queue
import threading
import zlib
from collections.abc import Callable, Iterator

_EOF = object()
_GZIP_MAGIC = b"\x1f\x8b"
_DECOMPRESS_STEP = 16 * 1024 * 1024
_NOT_QUOTE_OR_NEWLINE = bytes(b for b in range(256) if b not in b'"\n')


class _Stopped(Exception):
    """The reading side went away."""


class RecordCounter:
    """
    Counts records in an export file while it streams by: lines, minus the header for CSV.

    Newlines inside double-quoted CSV fields do not end a record. A final line without a newline
    counts. A gzip-compressed file is counted on its decompressed content.

    :param data_format: ``CSV`` or ``JSON`` (JSON Lines); anything else counts lines.
    """

    def __init__(self, data_format: str | None) -> None:
        self.csv = (data_format or "").upper() == "CSV"
        self.newlines = 0
        self.open_line = False
        self._in_quote = False
        self._started = False
        self._inflate: zlib._Decompress | None = None

    def update(self, chunk: bytes) -> None:
        """
        Feed the next chunk of the file.

        :param chunk: raw bytes, as stored.
        """
        if not chunk:
            return
        if not self._started:
            self._started = True
            if chunk[:2] == _GZIP_MAGIC:
                self._inflate = zlib.decompressobj(wbits=47)
        if self._inflate is None:
            self._count(chunk)
            return
        data = self._inflate.decompress(chunk, _DECOMPRESS_STEP)
        while True:
            self._count(data)
            if not self._inflate.unconsumed_tail:
                break
            data = self._inflate.decompress(self._inflate.unconsumed_tail, _DECOMPRESS_STEP)

    def _count(self, data: bytes) -> None:
        if not data:
            return
        last = data.rfind(b"\n")
        if last >= 0:
            self.open_line = not data[last + 1 :].isspace() and last + 1 < len(data)
        elif not data.isspace():
            self.open_line = True
        newlines = data.count(b"\n")
        if self.csv and (self._in_quote or b'"' in data):
            newlines -= self._quoted_newlines(data)
        self.newlines += newlines

    def _quoted_newlines(self, data: bytes) -> int:
        """
        Newlines of ``data`` inside double-quoted CSV fields, tracking the open quote across chunks.

        Only quotes and newlines matter, so the rest is deleted (C speed); two adjacent quotes enclose
        no newline and never change the quote parity at any newline (``""`` escapes included), so they
        go too. What is left is short: fields that really contain newlines.
        """
        reduced = data.translate(None, _NOT_QUOTE_OR_NEWLINE).replace(b'""', b"")
        inside = 0
        for i, part in enumerate(reduced.split(b'"')):
            if i:
                self._in_quote = not self._in_quote
            if self._in_quote:
                inside += len(part)  # only newlines are left
        return inside

    @property
    def records(self) -> int:
        """Records seen so far (complete lines, plus a final line without newline; minus the CSV header)."""
        lines = self.newlines + (1 if self.open_line else 0)
        return max(0, lines - 1) if self.csv else lines


class DownloadPipe:
    """
    A non-seekable file whose ``read(n)`` returns what a background thread downloads.

    :param chunks: the source chunks (consumed, and closed, in the background thread).
    :param transform: applied to each chunk in the background thread (count, compress ...);
        returns the bytes to hand to the reader.
    :param finish: called in the background thread after the last chunk; returns final bytes to
        hand over, or raises to fail the transfer.
    :param max_chunks: how many transformed chunks may wait in the queue.
    """

    def __init__(
        self,
        chunks: Iterator[bytes],
        transform: Callable[[bytes], bytes] | None = None,
        finish: Callable[[], bytes] | None = None,
        max_chunks: int = 8,
    ) -> None:
        self._chunks = chunks
        self._transform = transform
        self._finish = finish
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max(1, max_chunks))
        self._stop = threading.Event()
        self._buffer = b""
        self._offset = 0
        self._eof = False
        self.error: BaseException | None = None
        self.bytes_out = 0
        self._thread = threading.Thread(target=self._produce, name="ses-export-download", daemon=True)

    def start(self) -> DownloadPipe:
        """Start downloading in the background."""
        self._thread.start()
        return self

    # -- background thread --------------------------------------------------------------------
    def _put(self, item: object) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue
        raise _Stopped

    def _produce(self) -> None:
        try:
            for chunk in self._chunks:
                out = self._transform(chunk) if self._transform else chunk
                if out:
                    self._put(out)
            tail = self._finish() if self._finish else b""
            if tail:
                self._put(tail)
            self._put(_EOF)
        except _Stopped:
            pass
        except BaseException as exc:
            self.error = exc
            try:
                self._put(_EOF)
            except _Stopped:
                pass
        finally:
            close = getattr(self._chunks, "close", None)
            if close is not None:
                close()

    # -- reading side -------------------------------------------------------------------------
    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def _next_item(self) -> bool:
        """Move the next queued chunk into the buffer; False at end of stream."""
        item = self._queue.get()
        if item is _EOF:
            self._eof = True
            if self.error is not None:
                raise self.error
            return False
        assert isinstance(item, bytes)
        self._buffer, self._offset = item, 0
        return True

    def read(self, size: int | None = -1) -> bytes:
        """
        Up to ``size`` bytes (all the rest when ``size`` is negative); fewer only at the end.

        :param size: how many bytes.
        """
        if self.error is not None and self._eof:
            raise self.error
        parts: list[bytes] = []
        wanted = -1 if size is None or size < 0 else size
        got = 0
        while wanted < 0 or got < wanted:
            if self._offset >= len(self._buffer) and (self._eof or not self._next_item()):
                break
            take = (
                len(self._buffer) - self._offset if wanted < 0 else min(wanted - got, len(self._buffer) - self._offset)
            )
            parts.append(self._buffer[self._offset : self._offset + take])
            self._offset += take
            got += take
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        self.bytes_out += len(data)
        return data

    def close(self) -> None:
        """Stop the background thread (if still running) and wait for it."""
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=0.1)
            except queue.Empty:
                pass
        if self._thread.ident is not None:
            self._thread.join()


def gzip_transform() -> tuple[Callable[[bytes], bytes], Callable[[], bytes]]:
    """``(compress, flush)`` producing one gzip member from the chunks fed to ``compress``."""
    deflate = zlib.compressobj(6, zlib.DEFLATED, 31)
    return deflate.compress, deflate.flush
