"""One output file in the making: temporary name, checksum as written, rename when complete.

A ``PartFile`` is also a minimal binary file object, so pyarrow's compressed streams and
the Parquet writer can write into it directly and every byte is hashed on its way to disk.
"""
from __future__ import annotations

import os
import posixpath
import secrets
import time

from ..stats import FileInfo
from ._checksum import new_hash
from ._fs import OutputError, _fail, display


def temp_name(rel: str) -> str:
    """A hidden name next to the final one; pid + random token, because Dask workers on
    different hosts may share pids and write to the same bucket."""
    folder, name = posixpath.split(rel)
    return posixpath.join(folder, f".{name}.tmp-{os.getpid()}-{secrets.token_hex(3)}")


class PartFile:
    def __init__(self, fs, rel: str, checksum: str):
        self.fs, self.rel = fs, rel
        self.tmp = temp_name(rel)
        self.bytes = 0
        self.write_s = 0.0      # time spent hashing and writing (the "writing" phase)
        self._hash = new_hash(checksum)
        t0 = time.perf_counter()
        self._fh = fs.open_write(self.tmp)
        # written around the page cache to a device (``_direct``)
        self.to_device = bool(getattr(self._fh, "to_device", False))
        self.write_s += time.perf_counter() - t0
        self._done = False

    # -- the file-object surface pyarrow needs -------------------------------------------
    def write(self, data) -> int:
        t0 = time.perf_counter()
        n = memoryview(data).nbytes
        try:
            self._hash.update(data)     # both hashes drop the GIL on large buffers
            self._fh.write(data)
        except OSError as exc:
            raise _fail("write", display(self.fs, self.rel), exc) from exc
        self.bytes += n
        self.write_s += time.perf_counter() - t0
        return n

    def tell(self) -> int:
        return self.bytes

    def flush(self) -> None:
        pass

    @property
    def closed(self) -> bool:
        return self._done

    def writable(self) -> bool:
        return True

    def close(self) -> None:
        """pyarrow closes its sink when a stream ends; the real close is ``commit``."""

    # -- completion ----------------------------------------------------------------------
    def commit(self, rows: int) -> FileInfo:
        """Close the temporary file and give it its final name. No fsync: rename already
        guarantees that a killed process leaves no partial file under a final name; fsync
        would only add power-loss safety, at the cost of waiting for the disk per file."""
        t0 = time.perf_counter()
        try:
            self._fh.close()
        except OSError as exc:  # a full disk may surface only when the buffer flushes
            raise _fail("write", display(self.fs, self.rel), exc) from exc
        self.fs.rename(self.tmp, self.rel)
        self._done = True
        self.write_s += time.perf_counter() - t0
        return FileInfo(path=self.rel, rows=rows, bytes=self.bytes,
                        checksum=self._hash.hexdigest())

    def discard(self) -> None:
        """Drop the temporary file (after a failure); never raises over the original error."""
        if self._done:
            return
        self._done = True
        try:
            self._fh.close()
        except Exception:
            pass
        try:
            self.fs.remove(self.tmp)
        except OutputError:
            pass
