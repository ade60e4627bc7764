"""ObjectStore on a local directory: atomic renames, metadata sidecars, owner-only files."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO

from analytics_core.errors import NotFound, StoreUnavailable
from analytics_core.objects import MetadataArg, key_segments, resolve_metadata

READ_CHUNK_BYTES = 1024 * 1024
_METADATA_DIR = ".metadata"

class LocalDirectoryObjectStore:
    """Objects are files under `root`; their metadata lives under `root/.metadata/<key>.json`.

    Each put writes a temporary file beside the target, fsyncs it and renames it into place, so
    readers see either the previous object or the complete new one. Files are created 0600.
    """

    name = "object_store"

    def __init__(self, root: Path) -> None:
        self._root = Path(root)

    def put(
        self, key: str, chunks: Iterable[bytes], *, metadata: MetadataArg, content_type: str,
    ) -> int:
        """Store the concatenated chunks atomically; return the size in bytes."""
        target = self._path(key)
        _make_dirs(target.parent)
        with _TempFile(target.parent) as temp:
            size = 0
            for chunk in chunks:
                temp.write(chunk)
                size += len(chunk)
            values = resolve_metadata(metadata)
            sidecar = self._metadata_path(key)
            _make_dirs(sidecar.parent)
            document = {"content_type": content_type, "size": size, "metadata": values}
            _write_atomically(sidecar, json.dumps(document, sort_keys=True).encode())
            temp.commit(target)
        return size

    def open(self, key: str) -> Iterator[bytes]:
        """Stream the object's bytes; NotFound when absent."""
        path = self._path(key)
        try:
            handle = path.open("rb")
        except (FileNotFoundError, IsADirectoryError) as e:
            raise NotFound(f"object {key!r} not found") from e
        except OSError as e:
            raise StoreUnavailable(f"cannot read object {key!r}: {e.strerror}") from e
        return _read_chunks(handle, key)

    def signed_url(self, key: str, ttl: timedelta) -> str | None:
        """Always None: a local directory cannot sign URLs, the API streams the file."""
        key_segments(key)
        return None

    def delete(self, key: str) -> None:
        """Remove the object and its metadata; absent keys are ignored."""
        for path in (self._path(key), self._metadata_path(key)):
            try:
                path.unlink(missing_ok=True)
            except OSError as e:
                raise StoreUnavailable(f"cannot delete object {key!r}: {e.strerror}") from e

    def exists(self, key: str) -> bool:
        """Whether a complete object is stored under `key`."""
        return self._path(key).is_file()

    def metadata(self, key: str) -> dict[str, str]:
        """The metadata stored with the object; NotFound when absent."""
        if not self.exists(key):
            raise NotFound(f"object {key!r} not found")
        try:
            document = json.loads(self._metadata_path(key).read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            raise StoreUnavailable(f"cannot read metadata of {key!r}: {e}") from e
        return {str(k): str(v) for k, v in document.get("metadata", {}).items()}

    def check(self) -> None:
        """Readiness: the root exists (or can be created) and is writable."""
        _make_dirs(self._root)
        if not os.access(self._root, os.W_OK | os.X_OK):
            raise StoreUnavailable(f"object store directory {self._root} is not writable")

    def _path(self, key: str) -> Path:
        return self._root.joinpath(*key_segments(key))

    def _metadata_path(self, key: str) -> Path:
        segments = key_segments(key)
        return self._root.joinpath(_METADATA_DIR, *segments[:-1], f"{segments[-1]}.json")


class _TempFile:
    """A 0600 temporary file in the target's directory, renamed into place on commit."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._path: Path | None = None
        self._handle: BinaryIO | None = None

    def __enter__(self) -> _TempFile:
        try:
            fd, name = tempfile.mkstemp(dir=self._directory, prefix=".", suffix=".tmp")
        except OSError as e:
            raise StoreUnavailable(f"cannot write to {self._directory}: {e.strerror}") from e
        self._path = Path(name)
        self._handle = os.fdopen(fd, "wb")
        return self

    def write(self, chunk: bytes) -> None:
        assert self._handle is not None
        try:
            self._handle.write(chunk)
        except OSError as e:
            raise StoreUnavailable(f"cannot write object: {e.strerror}") from e

    def commit(self, target: Path) -> None:
        assert self._handle is not None
        assert self._path is not None
        try:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
            self._path.replace(target)
            _fsync_dir(target.parent)
        except OSError as e:
            raise StoreUnavailable(f"cannot store {target.name}: {e.strerror}") from e
        self._path = None

    def __exit__(self, *exc_info: object) -> None:
        if self._handle is not None:
            self._handle.close()
        if self._path is not None:
            with contextlib.suppress(OSError):
                self._path.unlink()


def _write_atomically(target: Path, data: bytes) -> None:
    with _TempFile(target.parent) as temp:
        temp.write(data)
        temp.commit(target)


def _make_dirs(directory: Path) -> None:
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as e:
        raise StoreUnavailable(f"cannot create directory {directory}: {e.strerror}") from e


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_chunks(handle: BinaryIO, key: str) -> Iterator[bytes]:
    with handle:
        while True:
            try:
                chunk = handle.read(READ_CHUNK_BYTES)
            except OSError as e:
                raise StoreUnavailable(f"cannot read object {key!r}: {e.strerror}") from e
            if not chunk:
                return
            yield chunk
