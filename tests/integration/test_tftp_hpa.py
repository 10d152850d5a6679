"""The asyncio TFTP server fetched with Debian's ``tftp-hpa`` client (plain RFC 1350).

tftp-hpa sends no options, so this covers the no-OACK path against a C
client, in binary (octet) and ascii (netascii) mode. Skipped when the
``tftp`` command is missing (``scripts/install-deps.sh`` installs it as root),
except under CI=true, where it fails.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from offhook.tftp.aio import TftpServer
from offhook.tftp.cnf import CallManagerNode, DeviceConfig, device_cnf, generator
from offhook.tftp.files import FileSource

DEVICE = DeviceConfig("SEP001122334455", nodes=(CallManagerNode("127.0.0.1"),))
BIG = bytes((i * 13) % 256 for i in range(100_000))
TEXT = b"line one\nline two\r\nlast\n" * 100

TFTP = shutil.which("tftp")
if TFTP is None:
    if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}:
        raise RuntimeError("tftp (Debian tftp-hpa) is missing under CI=true")
    pytest.skip("tftp-hpa not installed", allow_module_level=True)


async def tftp_get(port: int, name: str, out: Path, mode: str = "binary") -> int:
    assert TFTP is not None
    proc = await asyncio.create_subprocess_exec(
        TFTP,
        "127.0.0.1",
        str(port),
        "-m",
        mode,
        "-c",
        "get",
        name,
        str(out),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        await asyncio.wait_for(proc.communicate(), 20.0)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode or 0


def test_tftp_hpa_fetches(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "big.bin").write_bytes(BIG)
    (root / "exact.bin").write_bytes(b"x" * 512 * 3)
    (root / "text.txt").write_bytes(TEXT)
    server = TftpServer(FileSource(root, generator({DEVICE.device_name: DEVICE})), "127.0.0.1", 0)

    async def main() -> None:
        await server.start()
        try:
            port = server.port
            await tftp_get(port, "SEP001122334455.cnf.xml", tmp_path / "cnf")
            assert (tmp_path / "cnf").read_bytes() == device_cnf(DEVICE)
            await tftp_get(port, "big.bin", tmp_path / "big")
            assert (tmp_path / "big").read_bytes() == BIG
            await tftp_get(port, "exact.bin", tmp_path / "exact")
            assert (tmp_path / "exact").read_bytes() == b"x" * 1536
            await tftp_get(port, "text.txt", tmp_path / "text", mode="ascii")
            assert (tmp_path / "text").read_bytes() == TEXT  # netascii there and back
            await tftp_get(port, "../etc/passwd", tmp_path / "nope")
            assert not (tmp_path / "nope").exists() or (tmp_path / "nope").stat().st_size == 0
        finally:
            await server.close()

    asyncio.run(main())
    assert server.completed == 4
    assert server.failed == 1
