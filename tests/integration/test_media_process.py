"""``offhook media`` as a real process: control over Unix and TCP sockets, RTP, SIGTERM.

The command is started as an operator would (``python -m offhook media
--config FILE --control ADDR``), driven over its control socket, heard
through RTP sockets on loopback, and stopped with SIGTERM (exit status 0,
the Unix socket removed).
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import soundfile

from support.audio import rms, sine, tone_power
from support.mediaserver import HOST, ControlPeer, Phone, child_env, write_config
from support.ports import free_port


def run(coro: Coroutine[Any, Any, None], timeout: float = 120.0) -> None:
    asyncio.run(asyncio.wait_for(coro, timeout))


def start(config: Path, control: str, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "offhook", "media", "--config", str(config), "--control", control],
        env=child_env(),
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )


def stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


async def connect_unix(path: Path, proc: subprocess.Popen[bytes]) -> ControlPeer:
    for _ in range(600):
        assert proc.poll() is None, "offhook media exited"
        try:
            return await ControlPeer.connect(f"unix:{path}")
        except OSError:
            await asyncio.sleep(0.05)
    raise TimeoutError("offhook media did not listen")


async def tcp_peer(port: int, proc: subprocess.Popen[bytes]) -> ControlPeer:
    for _ in range(600):
        assert proc.poll() is None, "offhook media exited"
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        return ControlPeer(reader, writer)
    raise TimeoutError("offhook media did not listen")


def test_offhook_media_over_a_unix_socket(tmp_path: Path) -> None:
    sock = tmp_path / "media.sock"
    log = tmp_path / "media.log"
    wav = tmp_path / "hold.wav"
    soundfile.write(wav, sine(600, 2.0, rate=44100), 44100, subtype="PCM_16")
    proc = start(write_config(tmp_path, max_streams=4), f"unix:{sock}", log)
    try:

        async def main() -> None:
            peer = await connect_unix(sock, proc)
            hello = await peer.ok("hello", version=1)
            assert hello["server"] == "offhook" and hello["max_streams"] == 4
            assert sock.stat().st_mode & 0o777 == 0o600
            loaded = await peer.ok(
                "sources",
                sources=[
                    {"name": "hold", "path": str(wav)},
                    {"name": "gone", "path": str(tmp_path / "missing.wav")},
                ],
            )
            assert loaded["loaded"] == ["hold"] and "gone" in loaded["errors"]
            phones = [await Phone.open() for _ in range(2)]
            for n, (phone, source) in enumerate(zip(phones, ["moh:hold", "moh:gone"], strict=True)):
                await peer.ok("open", handle=f"h{n}")
                await peer.ok("connect", handle=f"h{n}", address=HOST, port=phone.port)
                await peer.ok("play", handle=f"h{n}", source=source)
            for phone in phones:
                await phone.wait_packets(50)
            assert tone_power(phones[0].audio(), 600) > 0.9  # the 44.1 kHz file, at 8 kHz
            default = phones[1].audio()  # a missing source plays the built-in music
            assert rms(default) > 300 and tone_power(default, 600) < 0.5
            stats = await peer.ok("stats")
            assert stats["streams"] == 2 and stats["counters"]["tx_packets"] >= 100
            for phone in phones:
                phone.close()
            await peer.close()

        run(main())
    finally:
        rc = stop(proc)
    assert rc == 0, log.read_text()
    assert not sock.exists()
    assert "media server stopping" in log.read_text()


def test_offhook_media_over_tcp_with_its_allow_list(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "media.log"
    proc = start(write_config(tmp_path), f"{HOST}:{port}", log)
    try:

        async def main() -> None:
            peer = await tcp_peer(port, proc)
            assert (await peer.ok("ping"))["ok"]
            opened = await peer.ok("open", handle="t")
            assert opened["address"] == HOST
            await peer.close()

        run(main())
    finally:
        assert stop(proc) == 0, log.read_text()

    # control_allow without loopback: the connection is reset before a byte is read.
    proc = start(write_config(tmp_path, control_allow=["10.0.0.0/8"]), f"{HOST}:{port}", log)
    try:

        async def refused() -> None:
            peer = await tcp_peer(port, proc)
            peer.send_raw(json.dumps({"id": 1, "cmd": "ping"}).encode() + b"\n")
            await asyncio.wait_for(peer.closed, 10)
            assert peer.lines == 0

        run(refused())
    finally:
        assert stop(proc) == 0, log.read_text()


def test_offhook_media_needs_a_control_address(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "offhook", "media", "--config", str(write_config(tmp_path))],
        env=child_env(),
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert b"no control address" in done.stderr
