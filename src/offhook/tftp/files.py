"""The files TFTP and HTTP provisioning serve: generated ones first, then a root folder.

``FileSource.read(name)`` returns the bytes or raises ``FileRefused`` (a name
that could reach outside the root) or ``FileMissing``. Names are checked
before anything touches the file system: no NUL or other control characters,
no backslash, no absolute path or drive letter, no ``.``/``..``/empty path
components; and the resolved real path (symlinks followed) must still lie
inside the real root and be a regular file.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

MAX_NAME_LENGTH = 255
DEFAULT_MAX_SIZE = 64 * 1024 * 1024

Generator = Callable[[str], bytes | None]


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
    ) -> None:
        self._root = Path(root).resolve() if root is not None else None
        self._generated = generated
        self._max_size = max_size

    def read(self, name: str) -> bytes:
        clean = check_name(name)
        if self._generated is not None:
            made = self._generated(clean)
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
            with os.fdopen(fd, "rb", closefd=False) as fh:
                return fh.read(self._max_size)
        finally:
            os.close(fd)
