"""The files TFTP and HTTP provisioning serve: generated ones first, then a root folder.

``FileSource.read(name, version)`` returns the bytes or raises ``FileRefused`` (a name
that could reach outside the root) or ``FileMissing``. ``version`` is the IP
version (4 or 6) the client asked over: a generator is given it, so that a
generated configuration names the node by the address family the phone
uses; files of the root are the same for both. Names are checked
before anything touches the file system: no NUL or other control characters,
no backslash, no absolute path or drive letter, no ``.``/``..``/empty path
components; and the resolved real path (symlinks followed) must still lie
inside the real root and be a regular file.
"""

from __future__ import annotations

import os
import stat
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

MAX_NAME_LENGTH = 255
DEFAULT_MAX_SIZE = 64 * 1024 * 1024
DEFAULT_CACHE_BYTES = 128 * 1024 * 1024

Generator = Callable[[str, int], bytes | None]
"""``(name, ip_version) -> bytes`` of a generated file, or None: not one of ours."""


class FileError(Exception):
    """A requested file cannot be served."""


class FileRefused(FileError):
    """The name is not acceptable (could escape the root, or is malformed)."""


class FileMissing(FileError):
    """No such file (or it is not a regular file, or too large)."""


def check_name(name: str) -> str:
    """Return the normalised relative name or raise FileRefused."""
    if not name or len(name) > MAX_NAME_LENGTH:
        raise FileRefused("empty or overlong name")
    if any(ord(c) < 0x20 or c == "\x7f" for c in name):
        raise FileRefused("control character in name")
    if "\\" in name or ":" in name:
        raise FileRefused("backslash or drive letter in name")
    if name.startswith("/") or name.startswith("~"):
        raise FileRefused("absolute path")
    parts = name.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise FileRefused("dot or empty path component")
    return "/".join(parts)


class FileSource:
    """Resolve provisioning file names: ``generated`` first, then ``root``."""

    def __init__(
        self,
        root: str | os.PathLike[str] | None,
        generated: Generator | None = None,
        *,
        max_size: int = DEFAULT_MAX_SIZE,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        self._root = Path(root).resolve() if root is not None else None
        self._generated = generated
        self._max_size = max_size
        # A boot storm has hundreds of phones fetch the same firmware: share
        # one copy per file version (LRU, bounded in bytes; read from threads).
        self._cache: OrderedDict[tuple[str, int, int, int], bytes] = OrderedDict()
        self._cache_limit = cache_bytes
        self._cache_used = 0
        self._lock = threading.Lock()

    def read(self, name: str, version: int = 4) -> bytes:
        """The bytes of ``name`` for a client over IP ``version`` (4 or 6)."""
        clean = check_name(name)
        if self._generated is not None:
            made = self._generated(clean, version)
            if made is not None:
                return made
        if self._root is None:
            raise FileMissing(clean)
        candidate = self._root / clean
        try:
            real = candidate.resolve(strict=True)
        except (OSError, RuntimeError):
            raise FileMissing(clean) from None
        if not real.is_relative_to(self._root):
            raise FileRefused("resolves outside the root")
        try:
            fd = os.open(real, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            raise FileMissing(clean) from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_size > self._max_size:
                raise FileMissing(clean)
            key = (str(real), info.st_ino, info.st_mtime_ns, info.st_size)
            with self._lock:
                cached = self._cache.get(key)
                if cached is not None:
                    self._cache.move_to_end(key)
                    return cached
            with os.fdopen(fd, "rb", closefd=False) as fh:
                data = fh.read(self._max_size)
        finally:
            os.close(fd)
        self._remember(key, data)
        return data

    def _remember(self, key: tuple[str, int, int, int], data: bytes) -> None:
        if len(data) > self._cache_limit:
            return
        with self._lock:
            if key in self._cache:
                return
            self._cache[key] = data
            self._cache_used += len(data)
            while self._cache_used > self._cache_limit:
                _, old = self._cache.popitem(last=False)
                self._cache_used -= len(old)

    @property
    def cached_bytes(self) -> int:
        return self._cache_used
