"""The on-disk cache: where compiled kernels live between processes.

``cache_dir()`` is ``$METALRT_CACHE_DIR`` if set, else the platform's cache directory plus
``metalrt``. A ``DiskCache`` keeps content-addressed entries in a subdirectory of it: the key is
a SHA-256 over everything that changes the compiled code (cache format version, backend,
target, compiler id, options, source), and each entry is a payload file ``<key><suffix>`` plus
a ``<key>.json`` manifest holding the payload's SHA-256, size and the format version. An entry
whose payload does not match its manifest (truncated, corrupted, written by another version) is
deleted and rebuilt, never handed to a loader. Files are written under temporary names and
renamed into place, so a concurrent process sees a whole entry or none; a per-key file lock
makes concurrent processes build an entry once.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: renames alone keep entries whole; builds may repeat
    fcntl = None  # type: ignore[assignment]

__all__ = ["FORMAT_VERSION", "cache_dir", "DiskCache"]

# Bump when the layout of entries or the meaning of keys changes: old entries then stop matching.
FORMAT_VERSION = 1


def cache_dir() -> Path:
    """The root of metalrt's on-disk caches (created if missing): ``$METALRT_CACHE_DIR``, else
    ``~/Library/Caches/metalrt`` (macOS), ``%LOCALAPPDATA%/metalrt/Cache`` (Windows) or
    ``${XDG_CACHE_HOME:-~/.cache}/metalrt``."""
    env = os.environ.get("METALRT_CACHE_DIR")
    if env:
        root = Path(env).expanduser()
    elif sys.platform == "darwin":
        root = Path.home() / "Library" / "Caches" / "metalrt"
    elif os.name == "nt":
        root = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "metalrt" / "Cache"
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "metalrt"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


class DiskCache:
    """Content-addressed entries under ``cache_dir() / namespace``.

    >>> cache = DiskCache("sim", suffix=".so")
    >>> key = DiskCache.key(backend="sim", target="x86_64", compiler_id="clang 19.1", options=opts, source=src)
    >>> path = cache.get_or_create(key, lambda tmp: compile_to(tmp))   # a verified payload path
    """

    def __init__(self, namespace: str, *, suffix: str = ".bin", root: Path | str | None = None) -> None:
        if not namespace or "/" in namespace or "\\" in namespace or namespace.startswith("."):
            raise ValueError(f"namespace must be a plain directory name, got {namespace!r}")
        self.directory = Path(root) / namespace if root is not None else cache_dir() / namespace
        self.suffix = suffix
        self._verified: dict[str, tuple[int, int, int]] = {}  # key -> (inode, size, mtime) checked
        self._lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}

    @staticmethod
    def key(
        *, backend: str, target: str, compiler_id: str, options: Any, source: str | bytes, extra: tuple = ()
    ) -> str:
        """The SHA-256 (hex) naming an entry. Fields are length-prefixed, so no two different
        field lists hash alike; ``options`` enters through its ``repr`` (CompileOptions is a
        frozen dataclass of sorted tuples, so equal options give equal text)."""
        h = hashlib.sha256()
        version = f"metalrt-cache-v{FORMAT_VERSION}"
        fields = (version, backend, target, compiler_id, repr(options), source, *map(str, extra))
        for field in fields:
            data = field.encode() if isinstance(field, str) else bytes(field)
            h.update(len(data).to_bytes(8, "little"))
            h.update(data)
        return h.hexdigest()

    def payload_path(self, key: str) -> Path:
        return self.directory / f"{key}{self.suffix}"

    def manifest_path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def get(self, key: str) -> Path | None:
        """The payload of a valid entry, or None. An invalid entry (missing or unreadable
        manifest, another format version, wrong size or SHA-256) is deleted."""
        path = self._check(key)
        if path is not None or not self._exists(key):
            return path
        with self._locked(key):  # a writer may be between its two renames: decide under its lock
            path = self._check(key)
            if path is None:
                self._remove(key)
            return path

    def manifest(self, key: str) -> dict | None:
        """The manifest of a valid entry (with the ``meta`` given to put), or None."""
        if self.get(key) is None:
            return None
        try:
            return json.loads(self.manifest_path(key).read_text())
        except (OSError, ValueError):
            return None

    def put(self, key: str, payload: bytes | str | Path, meta: dict | None = None) -> Path:
        """Stores an entry and returns its payload path. ``payload`` is the bytes, or a file
        that is moved into place (it must be on the same filesystem: use ``temp_path``)."""
        with self._locked(key):
            return self._put(key, payload, meta)

    def temp_path(self, key: str, suffix: str | None = None) -> Path:
        """A fresh name in the cache directory for writing an entry's file before the rename."""
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{key[:16]}.", suffix=(suffix or self.suffix) + ".tmp", dir=self.directory)
        os.close(fd)
        return Path(name)

    def get_or_create(self, key: str, build: Callable[[Path], Any], meta: dict | None = None) -> Path:
        """The payload of ``key``, built on a miss by ``build(tmp_path)``, which writes the
        payload file at ``tmp_path``. Concurrent threads and processes build it once."""
        path = self._check(key)
        if path is not None:
            return path
        with self._locked(key):
            path = self._check(key)  # another process may have built it while we waited
            if path is not None:
                return path
            self._remove(key)  # whatever is there is not a valid entry
            tmp = self.temp_path(key)
            try:
                build(tmp)
                if not tmp.exists() or tmp.stat().st_size == 0:
                    raise RuntimeError(f"the cache builder for {key[:16]} wrote nothing at {tmp}")
                return self._put(key, tmp, meta)
            finally:
                _unlink(tmp)

    def remove(self, key: str) -> None:
        """Deletes an entry (payload and manifest)."""
        with self._locked(key):
            self._remove(key)

    def clear(self) -> None:
        """Deletes every entry of this namespace."""
        if not self.directory.exists():
            return
        for p in self.directory.iterdir():
            if p.is_file() and not p.name.endswith(".lock"):
                _unlink(p)
        self._verified.clear()

    # ---- the parts that run under the key's lock (or need none) ----

    def _exists(self, key: str) -> bool:
        return self.payload_path(key).exists() or self.manifest_path(key).exists()

    def _check(self, key: str) -> Path | None:
        """The payload if the entry is valid now; never deletes anything."""
        payload, manifest = self.payload_path(key), self.manifest_path(key)
        try:
            st = payload.stat()
        except FileNotFoundError:
            return None
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        if self._verified.get(key) == stamp:
            return payload
        try:
            meta = json.loads(manifest.read_text())
            valid = (
                isinstance(meta, dict)
                and meta.get("format") == FORMAT_VERSION
                and meta.get("key") == key
                and meta.get("size") == st.st_size
                and meta.get("sha256") == _sha256_file(payload)
            )
        except (OSError, ValueError):
            valid = False
        if not valid:
            return None
        self._verified[key] = stamp
        return payload

    def _put(self, key: str, payload: bytes | str | Path, meta: dict | None) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.payload_path(key)
        if isinstance(payload, (bytes, bytearray, memoryview)):
            tmp = self.temp_path(key)
            with open(tmp, "wb") as f:
                f.write(payload)
                f.flush()
                os.fsync(f.fileno())
        else:
            tmp = Path(payload)
        digest, size = _sha256_file(tmp), tmp.stat().st_size
        record = {
            "format": FORMAT_VERSION,
            "key": key,
            "sha256": digest,
            "size": size,
            "created": time.time(),
            "meta": meta or {},
        }
        _unlink(self.manifest_path(key))  # no moment where an old manifest vouches for a new payload
        os.replace(tmp, target)
        manifest_tmp = self.temp_path(key, ".json")
        manifest_tmp.write_text(json.dumps(record, indent=1, sort_keys=True))
        os.replace(manifest_tmp, self.manifest_path(key))  # the manifest last: it validates the entry
        return target

    def _remove(self, key: str) -> None:
        self._verified.pop(key, None)
        _unlink(self.payload_path(key))
        _unlink(self.manifest_path(key))

    @contextmanager
    def _locked(self, key: str) -> Iterator[None]:
        # A thread lock per key (flock excludes other processes, not other threads of this one),
        # so that building one entry never waits for the build of another.
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            if fcntl is None:
                yield
                return
            self.directory.mkdir(parents=True, exist_ok=True)
            with open(self.directory / f".{key}.lock", "a") as f:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(f.fileno(), fcntl.LOCK_UN)
