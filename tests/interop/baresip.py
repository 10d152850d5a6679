"""Driver for a headless baresip (Debian ``baresip-core`` 1.0.0) over ctrl_tcp.

Each :class:`Baresip` writes its own config directory (SIP listener, control
socket, RTP port range, G.711 only, a 440 Hz sine as microphone and the
``sndfile`` filter recording what it hears to WAV files), starts ``baresip -f
DIR`` and talks to it over the ``ctrl_tcp`` module: netstring-framed JSON
(``<len>:<json>,``).  Commands get a token and a response; call and
registration events (REGISTER_OK, CALL_RINGING, CALL_ESTABLISHED,
CALL_CLOSED, ...) arrive asynchronously on the same socket and are collected
by a reader thread in :attr:`Baresip.events`.

There is no sound card: the player is ``aubridge`` (a memory bridge that
nobody reads, so decoded audio is dropped after the filters), the source is
``ausine`` (440 Hz).  Evidence that media flowed: the RTP summary baresip
logs when a call's audio ends (``rtp_stats yes``; :meth:`Baresip.rtp_summaries`),
the ``dump-*-dec.wav`` recording of what it heard (:func:`heard_tone`) and,
in tests, a tshark capture (``support.capture``).  ``net_interface`` is pinned
to 127.0.0.1, otherwise baresip puts the eth0 address in its SDP; with
``host="::1"`` the UA runs over IPv6 (SIP listener ``[::1]:PORT`` and
``net_interface ::1``: baresip 1.0 then has only an IPv6 local address, so
its Via, Contact and SDP are IPv6); its control socket stays on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from offhook.common.addr import uri_host
from support.ports import HOST, free_port, free_range

BINARY = "baresip"
MODULE_PATH = "/usr/lib/baresip/modules"


@dataclass
class Event:
    """One asynchronous event from baresip (the decoded JSON object)."""

    type: str
    data: dict[str, Any]
    at: float = field(default_factory=time.monotonic)

    @property
    def param(self) -> str:
        return str(self.data.get("param", ""))


class BaresipError(RuntimeError):
    """baresip did not do what was asked in time, or its command failed."""


class BaresipTimeout(BaresipError):
    """A control command got no response in time (baresip busy, not failed)."""


def netstring(payload: bytes) -> bytes:
    return str(len(payload)).encode() + b":" + payload + b","


class _NetstringReader:
    def __init__(self) -> None:
        self.buf = b""

    def feed(self, data: bytes) -> Iterator[bytes]:
        self.buf += data
        while True:
            colon = self.buf.find(b":")
            if colon < 0:
                return
            length = int(self.buf[:colon])
            end = colon + 1 + length
            if len(self.buf) < end + 1:
                return
            yield self.buf[colon + 1 : end]
            self.buf = self.buf[end + 1 :]


class Baresip:
    """One baresip user agent.

    ``aor`` is the account address, e.g. ``sip:alice@127.0.0.1:5060``;
    ``password`` enables digest auth; ``regint=0`` means no registration
    (peer to peer).  ``answermode`` may be ``manual`` (default) or ``auto``.
    """

    def __init__(
        self,
        workdir: Path,
        name: str,
        aor: str | None = None,
        *,
        password: str | None = None,
        auth_user: str | None = None,
        regint: int = 0,
        answermode: str = "manual",
        extra_account_params: str = "",
        host: str = HOST,
        tone: int = 440,
    ) -> None:
        self.name = name
        self.tone = tone  # the frequency its microphone (ausine) sends
        self.host = host
        self.dir = Path(workdir) / f"baresip-{name}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.sip_port = free_port(span=2)  # baresip binds TLS on port + 1
        self.ctrl_port = free_port()
        self.rtp_ports = free_range(10)
        self.aor = aor or f"sip:{name}@{uri_host(host)}:{self.sip_port}"
        self.password = password
        self.auth_user = auth_user
        self.regint = regint
        self.answermode = answermode
        self.extra_account_params = extra_account_params
        self.proc: subprocess.Popen[bytes] | None = None
        self.events: list[Event] = []
        self._cond = threading.Condition()
        self._responses: dict[str, dict[str, Any]] = {}
        self._sock: socket.socket | None = None
        self._reader: threading.Thread | None = None
        self._token = 0
        self.log_path = self.dir / "baresip.log"

    # -- configuration -------------------------------------------------------

    @property
    def uri(self) -> str:
        """Where to reach this UA directly (peer to peer)."""
        return f"sip:{self.name}@{uri_host(self.host)}:{self.sip_port}"

    def write_config(self) -> None:
        lo, hi = self.rtp_ports
        config = f"""\
poll_method\t\tepoll
sip_listen\t\t{uri_host(self.host)}:{self.sip_port}
net_interface\t\t{self.host}
audio_player\t\taubridge,{self.name}-out
audio_source\t\tausine,{self.tone}
audio_alert\t\taubridge,{self.name}-alert
ausrc_srate\t\t48000
ausrc_channels\t\t2
auplay_srate\t\t48000
auplay_channels\t\t2
audio_level\t\tno
rtp_ports\t\t{lo}-{hi}
rtp_timeout\t\t0
rtp_stats\t\tyes
jitter_buffer_delay\t1-10
module_path\t\t{MODULE_PATH}
module\t\t\tg711.so
module\t\t\tausine.so
module\t\t\taubridge.so
module\t\t\tsndfile.so
snd_path\t\t{self.dir}
module_app\t\taccount.so
module_app\t\tmenu.so
module_app\t\tctrl_tcp.so
ctrl_tcp_listen\t\t{HOST}:{self.ctrl_port}
"""
        (self.dir / "config").write_text(config)
        params = [f"regint={self.regint}", f"answermode={self.answermode}"]
        if self.password is not None:
            params.append(f"auth_pass={self.password}")
        if self.auth_user is not None:
            params.append(f"auth_user={self.auth_user}")
        params.append("audio_codecs=PCMU/8000/1,PCMA/8000/1")
        acc = f"<{self.aor}>;" + ";".join(params) + self.extra_account_params
        (self.dir / "accounts").write_text(acc + "\n")
        (self.dir / "contacts").write_text("")

    # -- process --------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> Baresip:
        if shutil.which(BINARY) is None:
            raise BaresipError("baresip binary not found")
        self.write_config()
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [BINARY, "-f", str(self.dir), "-v"],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.dir,
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise BaresipError(f"baresip {self.name} exited early:\n{self.log()}")
            try:
                self._sock = socket.create_connection((HOST, self.ctrl_port), timeout=1.0)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise BaresipError(
                        f"baresip {self.name}: ctrl_tcp not listening:\n{self.log()}"
                    ) from None
                time.sleep(0.05)
        self._sock.settimeout(None)
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(BaresipError, OSError):
                self.command("quit", timeout=1.0)
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None
        if getattr(self, "_log", None) is not None:
            self._log.close()

    def __enter__(self) -> Baresip:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    # -- control socket -------------------------------------------------------

    def _read_loop(self) -> None:
        reader = _NetstringReader()
        sock = self._sock
        assert sock is not None
        while True:
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                with self._cond:
                    self.events.append(Event("CTRL_CLOSED", {}))
                    self._cond.notify_all()
                return
            for raw in reader.feed(data):
                try:
                    msg = json.loads(raw.decode("utf-8", "replace"))
                except ValueError:
                    continue
                with self._cond:
                    if msg.get("response"):
                        self._responses[str(msg.get("token", ""))] = msg
                    elif msg.get("event"):
                        self.events.append(Event(str(msg.get("type", "")), msg))
                    self._cond.notify_all()

    def command(self, command: str, params: str | None = None, timeout: float = 5.0) -> str:
        """Run a long command (``dial``, ``accept``, ``hangup``, ``callstat``...).

        Returns the response ``data`` text; raises if baresip answers not ok.
        """
        if self._sock is None:
            raise BaresipError("not started")
        self._token += 1
        token = f"t{self._token}"
        msg: dict[str, str] = {"command": command, "token": token}
        if params is not None:
            msg["params"] = params
        self._sock.sendall(netstring(json.dumps(msg).encode()))
        deadline = time.monotonic() + timeout
        with self._cond:
            while token not in self._responses:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BaresipTimeout(f"{self.name}: no response to {command!r}")
                self._cond.wait(left)
            resp = self._responses.pop(token)
        if not resp.get("ok", False):
            raise BaresipError(f"{self.name}: {command!r} failed: {resp.get('data')!r}")
        return str(resp.get("data", ""))

    def wait_event(
        self,
        *types: str,
        timeout: float = 10.0,
        since: int = 0,
    ) -> Event:
        """Wait for the first event of one of ``types`` at index >= ``since``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for ev in self.events[since:]:
                    if ev.type in types:
                        return ev
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [e.type for e in self.events]
                    raise BaresipError(
                        f"{self.name}: no {'/'.join(types)} within {timeout}s; events: {seen}"
                    )
                self._cond.wait(left)

    def mark(self) -> int:
        """An index into :attr:`events` to pass as ``since`` later."""
        with self._cond:
            return len(self.events)

    def event_types(self) -> list[str]:
        with self._cond:
            return [e.type for e in self.events]

    # -- telephony ------------------------------------------------------------

    def wait_registered(self, timeout: float = 10.0) -> Event:
        """Wait until the account is registered.

        The REGISTER_OK event may fire before the control connection is up,
        so the ``reginfo`` command is polled as well.
        """
        deadline = time.monotonic() + timeout
        while True:
            for ev in self.events:
                if ev.type == "REGISTER_FAIL":
                    raise BaresipError(f"{self.name}: registration failed: {ev.data}")
                if ev.type == "REGISTER_OK":
                    return ev
            info = self._reginfo(deadline)
            if "\x1b[32mOK" in info or " OK " in info.replace("\x1b[;m", " "):
                return Event("REGISTER_OK", {"reginfo": info})
            if "ERR" in info:
                raise BaresipError(f"{self.name}: registration failed: {info!r}")
            if time.monotonic() > deadline:
                raise BaresipError(f"{self.name}: not registered within {timeout}s: {info!r}")
            time.sleep(0.2)

    def _reginfo(self, deadline: float) -> str:
        """``reginfo``, or "" when baresip is too busy to answer within 2 s
        (a loaded box) and the caller's deadline has not passed yet."""
        try:
            return self.command("reginfo", timeout=2.0)
        except BaresipTimeout:
            if time.monotonic() > deadline:
                raise
            return ""

    def wait_register_failed(self, timeout: float = 15.0) -> str:
        """Wait until the registration is refused; returns what baresip reported."""
        deadline = time.monotonic() + timeout
        while True:
            for ev in self.events:
                if ev.type == "REGISTER_FAIL":
                    return str(ev.data)
                if ev.type == "REGISTER_OK":
                    raise BaresipError(f"{self.name}: registered, expected a refusal")
            info = self._reginfo(deadline)
            if "ERR" in info:
                return info
            if "\x1b[32mOK" in info:
                raise BaresipError(f"{self.name}: registered, expected a refusal")
            if time.monotonic() > deadline:
                raise BaresipError(f"{self.name}: no refusal within {timeout}s: {info!r}")
            time.sleep(0.2)

    def dial(self, uri: str) -> None:
        self.command("dial", uri)

    def accept(self) -> None:
        self.command("accept")

    def hangup(self) -> None:
        self.command("hangup")

    def hold(self) -> None:
        """Put the current call on hold (re-INVITE with ``a=sendonly``).

        baresip 1.0 has the ``hold``/``resume`` long commands although
        ``help`` does not list them.
        """
        self.command("hold")

    def resume(self) -> None:
        """Take the current call off hold (re-INVITE with ``a=sendrecv``)."""
        self.command("resume")

    def callstat(self) -> str:
        """The ``callstat`` text (SDP and codecs; 1.0.0 prints no RTP counters here)."""
        return self.command("callstat")

    def rtp_summaries(self) -> list[tuple[int, int]]:
        """(tx packets, rx packets) of every audio stream that ended so far.

        With ``rtp_stats yes`` baresip 1.0.0 logs, when a call's audio is
        destroyed::

            audio           Transmit:     Receive:
            packets:            101          101
        """
        return parse_rtp_summaries(self.log())

    def recorded_wavs(self) -> list[Path]:
        """WAV files the sndfile filter wrote for decoded (received) audio."""
        return sorted(self.dir.glob("dump-*-dec.wav"))


_SUMMARY_RE = re.compile(r"audio\s+Transmit:\s+Receive:\s*\n\s*packets:\s+(\d+)\s+(\d+)", re.I)


def parse_rtp_summaries(log: str) -> list[tuple[int, int]]:
    """Extract (tx, rx) RTP packet counts from a baresip log."""
    return [(int(m.group(1)), int(m.group(2))) for m in _SUMMARY_RE.finditer(log)]


def wav_rms(path: Path) -> float:
    """Root mean square of a 16-bit mono/stereo WAV (0.0 when unreadable)."""
    import array
    import wave

    try:
        with wave.open(os.fspath(path), "rb") as w:
            if w.getsampwidth() != 2:
                return 0.0
            frames = w.readframes(w.getnframes())
    except (OSError, EOFError, wave.Error):
        return 0.0
    samples = array.array("h", frames[: len(frames) // 2 * 2])
    if not samples:
        return 0.0
    return float((sum(x * x for x in samples) / len(samples)) ** 0.5)


def wav_seconds(path: Path) -> float:
    """Length of a WAV file in seconds (0.0 when unreadable)."""
    import wave

    try:
        with wave.open(os.fspath(path), "rb") as w:
            return w.getnframes() / float(w.getframerate() or 1)
    except (OSError, EOFError, wave.Error):
        return 0.0


def heard_tone(path: Path, min_seconds: float = 0.5, min_rms: float = 1000.0) -> bool:
    """True if a recording holds at least ``min_seconds`` of non-silent audio."""
    return wav_seconds(path) >= min_seconds and wav_rms(path) >= min_rms
