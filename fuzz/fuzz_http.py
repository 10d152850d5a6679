"""atheris fuzz target for the provisioning HTTP request parser (6970).

``offhook.tftp.http.HttpFileServer`` (what phones fetch their cnf.xml and
firmware with) reads a request head from a peer and answers it (the node's
control endpoint, which was HTTP too, speaks JSON lines now:
``fuzz_control.py``). Each input is one connection: its
bytes are fed to a real ``asyncio.StreamReader`` (then EOF) and the server's
connection callback runs to the end against an in-memory writer. Invariant:

- the callback returns (a peer's bytes never raise out of it, and it never
  waits on anything but the reader: EOF ends every read);
- whatever was written is one well-formed response (status line,
  ``Content-Length`` equal to the body, or no body for HEAD) and the
  connection is closed;
- provisioning serves only files under its root or generated ones: a file
  beside the root (``../secret``) never leaks, whatever the path encoding.

The first byte is not used (it picked the server when there were two; the
seeds keep it), the second is the peer's source address (the rate limiter
is per source; a fresh server per input keeps inputs independent). Seeds: ``fuzz/corpus/fuzz_http``.

    python fuzz/fuzz_http.py -max_total_time=60 -max_len=8192 fuzz/corpus/fuzz_http
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import atheris

with atheris.instrument_imports():
    from offhook.core.directory import DeviceInfo, LineInfo, PlanSnapshot
    from offhook.tftp.files import FileSource
    from offhook.tftp.http import HttpFileServer, HttpLimits
    from offhook.tftp.provision import CnfSettings, ProvisioningFiles

SECRET = b"SECRET-OUTSIDE-THE-ROOT-0d8f1c"


def _scratch(prefix: str) -> Path:
    """This process's scratch directory (tmpfs when there is one).

    libFuzzer exits without running atexit handlers, so each run removes the
    directories of runs whose process is gone instead.
    """
    base = Path("/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir())
    for old in base.glob(f"{prefix}-*"):
        pid = old.name.rsplit("-", 1)[1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(old, ignore_errors=True)
    path = base / f"{prefix}-{os.getpid()}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir()
    return path


_BASE = _scratch("fuzz_http")
_ROOT = _BASE / "tftproot"
_ROOT.mkdir()
(_BASE / "secret").write_bytes(SECRET)
(_ROOT / "SEP001122334455.cnf.xml").write_bytes(b"<device>static</device>")
(_ROOT / "ring1.raw").write_bytes(b"\x7f" * 64)
(_ROOT / "sub").mkdir()
(_ROOT / "sub" / "load.bin").write_bytes(b"firmware")
(_ROOT / "escape").symlink_to(_BASE / "secret")
_SNAPSHOT = PlanSnapshot.build(
    [DeviceInfo("SEPAABBCCDDEEFF", "sccp", (LineInfo("1001", "Alice"),), model="7960")]
)
_FILES = ProvisioningFiles(lambda: _SNAPSHOT, lambda: CnfSettings("127.0.0.1", 2000), _ROOT)
_SOURCE = FileSource(_ROOT, _FILES)
_LIMITS = HttpLimits(max_head=2048, request_timeout=5.0, send_timeout=5.0)
_STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([1-5][0-9][0-9]) [^\r\n]*\r\n")


class _Transport:
    def __init__(self) -> None:
        self.closing = False

    def abort(self) -> None:
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing


class _Writer:
    """The parts of ``asyncio.StreamWriter`` the servers use, in memory."""

    def __init__(self, peer: tuple[str, int]) -> None:
        self.transport = _Transport()
        self.peer = peer
        self.out = bytearray()
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.peer if name == "peername" else default

    def write(self, data: bytes) -> None:
        if self.closed or self.transport.closing:
            raise AssertionError("write after close")
        self.out += data

    async def drain(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True
        self.transport.closing = True

    def is_closing(self) -> bool:
        return self.transport.closing

    async def wait_closed(self) -> None:
        return None


def _check_response(out: bytes, head_request: bool) -> int:
    m = _STATUS_LINE.match(out)
    if m is None:
        raise AssertionError(f"not an HTTP response: {out[:80]!r}")
    head, sep, body = out.partition(b"\r\n\r\n")
    if not sep:
        raise AssertionError("response head not terminated")
    lengths = [
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")[1:]
        if line.lower().startswith(b"content-length:")
    ]
    if len(lengths) != 1:
        raise AssertionError(f"Content-Length {lengths}")
    if len(body) != (0 if head_request and body == b"" else lengths[0]):
        raise AssertionError(f"body of {len(body)} bytes, Content-Length {lengths[0]}")
    return int(m.group(1))


async def _connection(handler: Any, data: bytes, peer: tuple[str, int], limit: int) -> _Writer:
    reader = asyncio.StreamReader(limit=limit)
    reader.feed_data(data)
    reader.feed_eof()
    writer = _Writer(peer)
    await asyncio.wait_for(handler(reader, writer), 10.0)
    return writer


def test_one_input(data: bytes) -> None:
    if len(data) < 2:
        return
    peer = (f"127.0.{data[1] >> 4}.{data[1] & 15 or 1}", 40000 + data[1])
    request = data[2:]
    loop = asyncio.get_event_loop()
    server = HttpFileServer(_SOURCE, limits=_LIMITS, allow=lambda host: True)
    writer = loop.run_until_complete(_connection(server._handle, request, peer, _LIMITS.max_head))
    if SECRET in writer.out:
        raise AssertionError("served a file outside the root")
    if not writer.closed:
        raise AssertionError("connection left open")
    if writer.out:
        _check_response(bytes(writer.out), request.startswith(b"HEAD "))


def main() -> None:
    asyncio.set_event_loop(asyncio.new_event_loop())
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
