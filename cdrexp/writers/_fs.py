"""The output root as a tiny filesystem: local paths go through ``os``, URLs through fsspec.

Every path below is relative to the output root and uses ``/``. Errors are ``OutputError``
naming the full path (the local path or the URL), so a full disk or an unwritable ``out``
tells the user where.
"""
from __future__ import annotations

import errno
import os
import posixpath
from typing import BinaryIO

from ._direct import DirectFile

# big enough that the CSV writer's multi-megabyte buffers go straight to write(2)
_LOCAL_BUFFER = 1 << 20


class OutputError(OSError):
    """Writing the output failed; the message names the path."""


def is_url(root: str) -> bool:
    return "://" in root


def output_fs(root: str, direct_io: bool = False) -> "LocalFs | UrlFs":
    """The filesystem of an output root: a local directory or an fsspec URL.
    ``direct_io``: local files are written around the page cache where the filesystem
    allows it (``_direct``); meant for the bulk data files."""
    return UrlFs(root) if is_url(root) else LocalFs(root, direct_io)


def _fail(what: str, path: str, exc: BaseException) -> OutputError:
    code = getattr(exc, "errno", None) or errno.EIO
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return OutputError(code, f"cannot {what} {path}: {reason}")


class LocalFs:
    """A local directory; the fast path (plain ``os`` calls, no fsspec)."""

    def __init__(self, root: str, direct_io: bool = False):
        self.root = os.path.abspath(os.path.expanduser(root))
        self.direct_io = direct_io

    def full(self, rel: str) -> str:
        return os.path.join(self.root, *rel.split("/")) if rel else self.root

    def makedirs(self, rel: str = "") -> None:
        path = self.full(rel)
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as exc:
            raise _fail("create directory", path, exc) from exc
        if not os.access(path, os.W_OK | os.X_OK):
            raise OutputError(errno.EACCES, f"cannot write in {path}: permission denied")

    def open_write(self, rel: str) -> BinaryIO:
        path = self.full(rel)
        try:
            if self.direct_io:
                return DirectFile(path)
            return open(path, "wb", buffering=_LOCAL_BUFFER)
        except OSError as exc:
            raise _fail("create", path, exc) from exc

    def rename(self, src: str, dst: str) -> None:
        try:
            os.replace(self.full(src), self.full(dst))
        except OSError as exc:
            raise _fail("rename to", self.full(dst), exc) from exc

    def remove(self, rel: str) -> None:
        """Remove a file; a missing one is fine (cleanup must be repeatable)."""
        try:
            os.remove(self.full(rel))
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise _fail("remove", self.full(rel), exc) from exc

    def rmdir_if_empty(self, rel: str) -> None:
        try:
            os.rmdir(self.full(rel))
        except OSError:
            pass

    def isdir(self, rel: str) -> bool:
        return os.path.isdir(self.full(rel))

    def islink(self, rel: str) -> bool:
        return os.path.islink(self.full(rel))

    def exists(self, rel: str) -> bool:
        return os.path.exists(self.full(rel))

    def listdir(self, rel: str) -> list[str]:
        try:
            return os.listdir(self.full(rel))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def read_bytes(self, rel: str) -> bytes:
        with open(self.full(rel), "rb") as fh:
            return fh.read()

    def size(self, rel: str) -> int:
        return os.path.getsize(self.full(rel))


class UrlFs:
    """An fsspec URL (``s3://``, ``memory://``, ``file://`` ...). No atomic rename on object
    stores: write under a temporary key, then ``mv`` -- the best such stores offer."""

    def __init__(self, root: str):
        import fsspec  # installed with dask; only URLs pay for the import

        self.url = root.rstrip("/")
        self.fs, self.root = fsspec.core.url_to_fs(self.url)
        self.root = self.root.rstrip("/")

    def full(self, rel: str) -> str:
        return posixpath.join(self.root, rel) if rel else self.root

    def _url(self, rel: str) -> str:
        return f"{self.url}/{rel}" if rel else self.url

    def makedirs(self, rel: str = "") -> None:
        try:
            self.fs.makedirs(self.full(rel), exist_ok=True)
        except Exception as exc:  # fsspec backends raise their own types
            raise _fail("create directory", self._url(rel), exc) from exc

    def open_write(self, rel: str) -> BinaryIO:
        try:
            return self.fs.open(self.full(rel), "wb")
        except Exception as exc:
            raise _fail("create", self._url(rel), exc) from exc

    def rename(self, src: str, dst: str) -> None:
        try:
            self.fs.mv(self.full(src), self.full(dst))
        except Exception as exc:
            raise _fail("rename to", self._url(dst), exc) from exc

    def remove(self, rel: str) -> None:
        try:
            if self.fs.exists(self.full(rel)):
                self.fs.rm_file(self.full(rel))
        except FileNotFoundError:
            pass
        except Exception as exc:
            raise _fail("remove", self._url(rel), exc) from exc

    def rmdir_if_empty(self, rel: str) -> None:
        try:
            if not self.fs.ls(self.full(rel)):
                self.fs.rmdir(self.full(rel))
        except Exception:
            pass

    def isdir(self, rel: str) -> bool:
        return self.fs.isdir(self.full(rel))

    def islink(self, rel: str) -> bool:
        return False        # object stores have no links

    def exists(self, rel: str) -> bool:
        return self.fs.exists(self.full(rel))

    def listdir(self, rel: str) -> list[str]:
        try:
            return [posixpath.basename(p.rstrip("/"))
                    for p in self.fs.ls(self.full(rel), detail=False)]
        except (FileNotFoundError, NotADirectoryError):
            return []

    def read_bytes(self, rel: str) -> bytes:
        return self.fs.cat_file(self.full(rel))

    def size(self, rel: str) -> int:
        return self.fs.size(self.full(rel))


def display(fs, rel: str) -> str:
    """The path a user should see in a message."""
    return fs._url(rel) if isinstance(fs, UrlFs) else fs.full(rel)
