"""The output root as a tiny filesystem: local paths go through ``os``, URLs through fsspec.

Every path below is relative to the output root and uses ``/``. Errors are ``OutputError``
naming the full path (the local path or the URL, its password masked), so a full disk,
an unwritable ``out``, a missing bucket or refused credentials tell the user where.

Object stores (``s3://``): a file is written under a hidden temporary key and copied to
its final key when complete (``mv``: a server-side copy, then a delete), so no object
exists under a final key until it is whole; a failed part's temporary key is deleted.
A dead endpoint fails within about a minute (short connect timeout, few retries) where
botocore and s3fs would retry for many minutes; ``check_url_root`` (run before any work)
writes and deletes one empty object, so a missing bucket, refused credentials or a
server that does not answer are one line before anything is generated.
"""
from __future__ import annotations

import errno
import logging
import os
import posixpath
import secrets
from typing import BinaryIO

from .._secrets import mask_secrets
from ._direct import DirectFile

# per protocol: options fsspec gets unless the user's fsspec config sets them
# ("retries" is s3fs's own retry loop: an attribute, set on the instance)
_URL_DEFAULTS = {
    "s3": {"retries": 2,
           "config_kwargs": {"connect_timeout": 10, "read_timeout": 60,
                             "retries": {"max_attempts": 3, "mode": "standard"}}},
}
_PROBE_DEFAULTS = {
    "s3": {"retries": 1, "skip_instance_cache": True,
           "config_kwargs": {"connect_timeout": 5, "read_timeout": 10,
                             "retries": {"max_attempts": 1, "mode": "standard"}}},
}

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
    if isinstance(exc, OutputError):
        return exc      # names its path already (a layer below said it)
    code = getattr(exc, "errno", None) or errno.EIO
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    reason = (reason.strip().splitlines() or [type(exc).__name__])[0]
    return OutputError(code, mask_secrets(f"cannot {what} {path}: {reason}"))


def check_url_root(url: str) -> None:
    """Write and delete one empty object under ``url``: the bucket (or directory) exists,
    the credentials are accepted, the server answers, within seconds. Raises
    ``OutputError`` with one line naming the URL."""
    fs = UrlFs(url, _PROBE_DEFAULTS)
    probe = f".cdrexp-probe-{os.getpid()}-{secrets.token_hex(3)}"
    try:
        fs.fs.pipe_file(fs.full(probe), b"")
    except Exception as exc:
        raise _fail("write in", fs.url, exc) from None
    try:
        fs.fs.rm_file(fs.full(probe))
    except Exception as exc:
        raise _fail("delete a test object in", fs.url, exc) from None


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


class _UrlFile:
    """An fsspec file being written whose failures are ``OutputError`` naming its URL:
    backends raise their own types (botocore's EndpointConnectionError for a server
    gone mid-run), which would otherwise reach the user as a bare endpoint address."""

    def __init__(self, fh, url: str):
        self._fh, self._url = fh, url

    def write(self, data) -> int:
        try:
            return self._fh.write(data)
        except Exception as exc:
            raise _fail("write", self._url, exc) from exc

    def close(self) -> None:
        try:
            self._fh.close()
        except Exception as exc:
            raise _fail("write", self._url, exc) from exc

    def __getattr__(self, name):
        return getattr(self._fh, name)


class UrlFs:
    """An fsspec URL (``s3://``, ``memory://``, ``file://`` ...). No atomic rename on object
    stores: write under a temporary key, then ``mv`` -- the best such stores offer."""

    def __init__(self, root: str, defaults: dict = _URL_DEFAULTS):
        import fsspec  # installed with dask; only URLs pay for the import

        self.url = root.rstrip("/")
        protocol = self.url.split("://", 1)[0].split("::")[-1]
        options = dict(defaults.get(protocol, {}))
        options = {k: v for k, v in options.items()
                   if k not in fsspec.config.conf.get(protocol, {})}
        if protocol == "s3":
            # "Found credentials in environment variables" on every worker, at INFO
            logging.getLogger("aiobotocore.credentials").setLevel(logging.WARNING)
        retries = options.pop("retries", None)
        try:
            self.fs, self.root = fsspec.core.url_to_fs(self.url, **options)
        except Exception as exc:    # a backend that rejects an option, a bad URL
            raise _fail("open", self.url, exc) from None
        if retries is not None and hasattr(self.fs, "retries"):
            self.fs.retries = retries
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
            return _UrlFile(self.fs.open(self.full(rel), "wb"), self._url(rel))
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
    return mask_secrets(fs._url(rel)) if isinstance(fs, UrlFs) else fs.full(rel)
