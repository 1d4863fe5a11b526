"""One small file-store interface over a local folder or an S3 prefix.

Everything the platform persists goes through a `Store`, so local disk and S3 behave the same: keys are
'/'-separated paths under the store's root, and every write is atomic (a reader sees the old object or the
whole new one, never a half-written file). Locally that is a temp file renamed into place; on S3 an object
only appears when its upload completes, so a killed upload leaves nothing behind.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import shutil
import stat
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlparse

import pyarrow.fs as pafs
from botocore.exceptions import ClientError

from engagement_assets.errors import NotARegularFile
from engagement_assets.storage.layout import STAGING_PREFIX
from engagement_assets.storage.s3 import arrow_s3_filesystem, is_missing, s3_client

# Local temp names start with a dot: listings skip them and partition keys may not start with one.
_TEMP_PREFIX = "."


@dataclass(frozen=True)
class StoredFile:
    key: str
    size: int
    modified: float = 0.0  # epoch seconds of the last write

    @property
    def version(self) -> str:
        """Names this version of the file: the same text only when nothing changed."""
        return f"{self.key}@{self.modified:.6f}:{self.size}"


class Store:
    """Abstract base: see LocalStore and S3Store."""

    url: str

    def uri(self, key: str) -> str:
        raise NotImplementedError

    def exists(self, key: str) -> bool:
        raise NotImplementedError

    def list_files(
        self, prefix: str = "", modified_since: float | None = None, skipped: list[str] | None = None
    ) -> list[StoredFile]:
        """Files under `prefix` (recursively), temp files excluded, sorted by key; with `modified_since`
        (epoch seconds) only those written at or after it. Only regular files are files: the keys of
        anything else found (a symbolic link, a FIFO, a device) are appended to `skipped`."""
        raise NotImplementedError

    def size(self, key: str) -> int | None:
        """The object's size in bytes, or None when there is no such object."""
        raise NotImplementedError

    def open_read(self, key: str) -> BinaryIO:
        """A binary stream of the object; FileNotFoundError when there is no such object."""
        raise NotImplementedError

    def put_file(self, local_path: Path, key: str) -> None:
        """Atomically store a local file under `key` (the local file is left in place)."""
        raise NotImplementedError

    def delete(self, key: str) -> None:
        raise NotImplementedError

    def arrow(self) -> tuple[pafs.FileSystem, str]:
        """A pyarrow filesystem and the root path within it, for reading Parquet datasets in place."""
        raise NotImplementedError

    def put_bytes(self, data: bytes, key: str, scratch: Path | None = None) -> None:
        scratch_dir = Path(scratch or _scratch_root())
        scratch_dir.mkdir(parents=True, exist_ok=True)
        local = scratch_dir / f"{_TEMP_PREFIX}upload-{uuid.uuid4().hex}"
        try:
            local.write_bytes(data)
            self.put_file(local, key)
        finally:
            local.unlink(missing_ok=True)

    def read_bytes(self, key: str) -> bytes:
        with self.open_read(key) as stream:
            return stream.read()

    def delete_prefix(self, prefix: str) -> int:
        files = self.list_files(prefix)
        for stored in files:
            self.delete(stored.key)
        return len(files)

    def replace_folder(self, prefix: str, files: Mapping[str, Path]) -> None:
        """Make `prefix/` hold exactly `files` ({name: local path}), each file written atomically."""
        prefix = prefix.rstrip("/")
        for name, local in files.items():
            self.put_file(local, f"{prefix}/{name}")
        keep = {f"{prefix}/{name}" for name in files}
        for stale in self.list_files(prefix + "/"):
            if stale.key not in keep:
                self.delete(stale.key)


class LocalStore(Store):
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser().resolve()
        self.url = str(self.root)

    def path(self, key: str) -> Path:
        return self.root / key

    def uri(self, key: str) -> str:
        return str(self.path(key))

    def exists(self, key: str) -> bool:
        return _is_regular(self.path(key))

    def list_files(
        self, prefix: str = "", modified_since: float | None = None, skipped: list[str] | None = None
    ) -> list[StoredFile]:
        base = self.path(prefix) if prefix.endswith("/") or not prefix else self.path(prefix).parent
        if not base.is_dir():
            return []
        # scandir with keys built as text, old files dropped before anything is made of them: the sessions
        # sensor lists a folder of one file per learner every tick.
        since = float("-inf") if modified_since is None else modified_since
        found = []
        folders = [(str(base), base.relative_to(self.root).as_posix() + "/" if base != self.root else "")]
        while folders:
            folder, key_prefix = folders.pop()
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.name.startswith(_TEMP_PREFIX):
                        continue
                    key = key_prefix + entry.name
                    if entry.is_dir(follow_symlinks=False):
                        folders.append((entry.path, key + "/"))
                    elif not key.startswith(prefix):
                        continue
                    elif entry.is_file(follow_symlinks=False):
                        info = entry.stat(follow_symlinks=False)
                        if info.st_mtime >= since:
                            found.append(StoredFile(key, info.st_size, info.st_mtime))
                    elif skipped is not None:
                        skipped.append(key)
        return sorted(found, key=lambda stored: stored.key)

    def size(self, key: str) -> int | None:
        path = self.path(key)
        return path.lstat().st_size if _is_regular(path) else None

    def open_read(self, key: str) -> BinaryIO:
        return _open_regular(self.path(key))

    def put_file(self, local_path: Path, key: str) -> None:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.with_name(f"{_TEMP_PREFIX}{target.name}.{uuid.uuid4().hex}.tmp")
        try:
            shutil.copyfile(local_path, temp)
            os.replace(temp, target)
        finally:
            temp.unlink(missing_ok=True)

    def replace_folder(self, prefix: str, files: Mapping[str, Path]) -> None:
        """Locally the whole folder is swapped in with renames, so readers never see a mix of versions."""
        target = self.path(prefix.rstrip("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        # Staged at the root, not beside the target: a glob over the asset's folder never sees a half-built
        # or retired copy.
        scratch = self.path(STAGING_PREFIX)
        scratch.mkdir(parents=True, exist_ok=True)
        _sweep_stale(scratch)
        staging = scratch / f"{uuid.uuid4().hex}.staging"
        retired = scratch / f"{uuid.uuid4().hex}.retired"
        staging.mkdir()
        try:
            for name, local in files.items():
                shutil.copyfile(local, staging / name)
            if not target.exists():
                os.replace(staging, target)
            elif not _exchange(staging, target):
                # No atomic exchange here: two renames, with a moment in between when the folder is absent.
                os.replace(target, retired)
                os.replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            shutil.rmtree(retired, ignore_errors=True)

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> int:
        count = super().delete_prefix(prefix)
        folder = self.path(prefix.rstrip("/"))
        if prefix.endswith("/") and folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
        return count

    def arrow(self) -> tuple[pafs.FileSystem, str]:
        return pafs.LocalFileSystem(), str(self.root)


# renameat2's RENAME_EXCHANGE (Linux 3.15+): two paths trade places in one step.
_AT_FDCWD, _RENAME_EXCHANGE = -100, 2
# A staged or retired copy older than this was left by a killed process.
STALE_STAGING_SECONDS = 3600.0


def _exchange(first: Path, second: Path) -> bool:
    """Swap two folders atomically, so a reader (or a kill) never finds `second` missing; False where the
    system cannot."""
    rename = getattr(_libc(), "renameat2", None)
    if rename is None:
        return False
    if rename(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):  # an old kernel, or a file system without it
        return False
    raise OSError(code, os.strerror(code), str(second))


@functools.cache
def _libc():
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def _sweep_stale(scratch: Path) -> None:
    """Staged and retired copies left behind by killed processes (never visible to readers: they live
    outside every asset folder) are removed once they are old."""
    cutoff = time.time() - STALE_STAGING_SECONDS
    for entry in scratch.iterdir():
        try:
            if entry.lstat().st_mtime < cutoff:
                shutil.rmtree(entry, ignore_errors=True)
        except FileNotFoundError:
            continue  # another writer's sweep got there first


def _is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.lstat().st_mode)
    except OSError:
        return False


def _open_regular(path: Path) -> BinaryIO:
    """A regular file opened for reading; a link at the end of the path is not followed and a FIFO is not
    waited on (the landing area is written by others)."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        descriptor = os.open(path, flags)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise NotARegularFile(f"{path.name}: a symbolic link, not read") from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise NotARegularFile(f"{path.name}: not a regular file, not read")
        os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


class S3Store(Store):
    def __init__(self, bucket: str, prefix: str = "", client=None):
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self._client = client

    @cached_property
    def client(self):
        return self._client or s3_client()

    def object_key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.object_key(key)}"

    def exists(self, key: str) -> bool:
        return self.size(key) is not None

    def size(self, key: str) -> int | None:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as err:
            if is_missing(err):
                return None
            raise
        return head["ContentLength"]

    def list_files(
        self, prefix: str = "", modified_since: float | None = None, skipped: list[str] | None = None
    ) -> list[StoredFile]:
        strip = len(self.object_key(""))
        since = float("-inf") if modified_since is None else modified_since
        found = []
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.object_key(prefix)
        ):
            for item in page.get("Contents", []):
                modified = item["LastModified"].timestamp()
                if modified >= since:
                    found.append(StoredFile(item["Key"][strip:], item["Size"], modified))
        return sorted(found, key=lambda stored: stored.key)

    def open_read(self, key: str) -> BinaryIO:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self.object_key(key))["Body"]
        except ClientError as err:
            if is_missing(err):
                raise FileNotFoundError(f"no object at {self.uri(key)}") from None
            raise
        return _ClosingStream(body)

    def put_file(self, local_path: Path, key: str) -> None:
        # upload_file aborts its multipart upload on failure, so no partial object is ever visible.
        self.client.upload_file(str(local_path), self.bucket, self.object_key(key))

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key))

    def arrow(self) -> tuple[pafs.FileSystem, str]:
        return arrow_s3_filesystem(), f"{self.bucket}/{self.prefix}".rstrip("/")


class _ClosingStream:
    """botocore's StreamingBody as a context manager with the file-like surface the readers use."""

    def __init__(self, body):
        self._body = body

    def read(self, size: int = -1) -> bytes:
        return self._body.read(None if size is None or size < 0 else size)

    def close(self) -> None:
        self._body.close()

    def interrupt(self) -> None:
        """Make a read blocked in another thread return now (a deadline passed): closing alone would leave
        it waiting on the socket, urllib3's shutdown wakes it."""
        raw = getattr(self._body, "_raw_stream", None)
        if hasattr(raw, "shutdown"):
            raw.shutdown()
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __iter__(self) -> Iterator[bytes]:
        return iter(lambda: self.read(1 << 20), b"")


def open_store(url: str | os.PathLike, s3_client=None) -> Store:
    """A store for `s3://bucket/prefix` (optionally with its own boto3 client) or a local folder."""
    text = str(url)
    if text.startswith("s3://"):
        parsed = urlparse(text)
        if not parsed.netloc:
            raise ValueError(f"{text!r}: an S3 URL needs a bucket, as in s3://bucket/prefix")
        return S3Store(parsed.netloc, parsed.path, s3_client)
    if "://" in text:
        raise ValueError(f"{text!r}: storage must be a local folder or an s3://bucket/prefix URL")
    return LocalStore(text)


def _scratch_root() -> Path:
    return Path(tempfile.gettempdir()) / "engagement-assets"


def read_url(url: str | os.PathLike) -> bytes:
    """The bytes of one object named by a local path or an s3://bucket/key URL."""
    text = str(url)
    if text.startswith("s3://"):
        parsed = urlparse(text)
        return S3Store(parsed.netloc).read_bytes(parsed.path.lstrip("/"))
    return Path(text).expanduser().read_bytes()
