"""A file over an iterator of byte chunks: the one adapter between streamed downloads and code that reads files."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

# Internal: nothing here is public API (import what you need from the hooks, operators, sensors and triggers).
__all__ = []

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

#: The first two bytes of every gzip member.
GZIP_MAGIC = b"\x1f\x8b"


class ChunkReader(io.RawIOBase):
    """
    A read-only, non-seekable raw file over an iterator of byte chunks, pulled only as it is read.

    Wrap it in ``io.BufferedReader``: its ``read(n)`` then returns exactly ``n`` bytes until the end, which is what
    boto3's managed upload needs from a non-seekable file (it reads one part at a time in its submission thread while
    earlier parts upload), and what ``gzip`` and ``io.TextIOWrapper`` read from. At most one chunk is held here.

    :param chunks: the source chunks.
    :param transform: applied to each chunk as it is pulled (check, count, compress ...); returns the bytes to hand
        to the reader.
    :param finish: called once after the last chunk; returns final bytes to hand over, or raises to fail the read.
    """

    def __init__(
        self,
        chunks: Iterable[bytes],
        transform: Callable[[bytes], bytes] | None = None,
        finish: Callable[[], bytes] | None = None,
    ) -> None:
        super().__init__()
        self._chunks = iter(chunks)
        self._transform = transform
        self._finish = finish
        self._pending = memoryview(b"")
        self._exhausted = False
        #: The exception the source, ``transform`` or ``finish`` raised (raised again by every later read).
        self.error: BaseException | None = None
        #: Bytes handed to the reader so far.
        self.bytes_out: int = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        """
        Copy the next bytes (at most the rest of one chunk) into ``buffer``; 0 only at the end.

        :param buffer: where to put them.
        """
        if self.error is not None:
            raise self.error
        try:
            while not self._pending and not self._exhausted:
                self._pending = memoryview(self._next_chunk())
        except BaseException as exc:
            self.error = exc
            raise
        with memoryview(buffer) as view:
            n = min(view.nbytes, len(self._pending))
            view.cast("B")[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        self.bytes_out += n
        return n

    def _next_chunk(self) -> bytes:
        chunk = next(self._chunks, None)
        if chunk is not None:
            return self._transform(chunk) if self._transform else chunk
        self._exhausted = True
        return self._finish() if self._finish else b""

    def close(self) -> None:
        """Close the source too, if it can be closed."""
        if not self.closed:
            self._pending = memoryview(b"")
            close = getattr(self._chunks, "close", None)
            if close is not None:
                close()
        super().close()
