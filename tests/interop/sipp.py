"""Run SIPp (Debian ``sip-tester`` 3.6.1) scenarios from tests/interop/scenarios.

:func:`sipp_cmd` builds the command line (loopback, UDP, a free local port
and media port, bounded by ``-timeout``, message and error traces in the work
directory; ``host="::1"`` for SIPp over IPv6, signalling and media, the
target then written ``[::1]:PORT``); :class:`Sipp` runs one scenario either to completion
(:meth:`Sipp.run`) or in the background (:meth:`Sipp.start` then
:meth:`Sipp.wait`, for a UAS that must be listening before the call).
SIPp exits 0 when every call passed, 1 when some failed, other codes on
fatal errors.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from offhook.common.addr import uri_host
from support.ports import HOST, free_port

SCENARIOS = Path(__file__).resolve().parent / "scenarios"


def scenario(name: str) -> Path:
    path = SCENARIOS / name
    if not path.suffix:
        path = path.with_suffix(".xml")
    if not path.exists():
        raise FileNotFoundError(path)
    return path


def sipp_cmd(
    scenario_file: Path,
    *,
    local_port: int,
    media_port: int,
    target: str | None = None,
    keys: dict[str, str] | None = None,
    service: str | None = None,
    auth: tuple[str, str] | None = None,
    calls: int = 1,
    timeout_s: int = 30,
    pause_ms: int | None = None,
    workdir: Path | None = None,
    name: str = "sipp",
    extra: list[str] | None = None,
    host: str = HOST,
) -> list[str]:
    cmd = [
        "sipp", "-sf", str(scenario_file),
        "-i", host, "-p", str(local_port), "-mp", str(media_port), "-t", "u1",
        "-m", str(calls), "-nostdin",
        "-timeout", f"{timeout_s}s", "-timeout_error",
        "-max_socket", "64",
    ]  # fmt: skip
    if workdir is not None:
        cmd += [
            "-trace_msg", "-message_file", str(workdir / f"{name}.messages.log"),
            "-trace_err", "-error_file", str(workdir / f"{name}.errors.log"),
            "-trace_screen", "-screen_file", str(workdir / f"{name}.screen.log"),
        ]  # fmt: skip
    for k, v in (keys or {}).items():
        cmd += ["-key", k, v]
    if service is not None:
        cmd += ["-s", service]
    if auth is not None:
        cmd += ["-au", auth[0], "-ap", auth[1]]
        if service is not None and target is not None:
            # SIPp's digest uri defaults to sip:HOST:PORT; RFC 3261 §22.4 wants
            # the Request-URI, which a strict server checks.
            cmd += ["-auth_uri", f"{service}@{target}"]
        elif target is not None and ":" in host:
            # Over IPv6 SIPp's default digest uri is "sip:::1:PORT", not a URI
            # (RFC 3261 §25.1 wants "sip:[::1]:PORT", the Request-URI).
            cmd += ["-auth_uri", target]
    if pause_ms is not None:
        cmd += ["-d", str(pause_ms)]
    cmd += extra or []
    if target is not None:
        cmd.append(target)
    return cmd


@dataclass
class SippResult:
    returncode: int
    output: str
    messages: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class Sipp:
    """One SIPp process for one scenario (``role`` is only used in file names)."""

    def __init__(
        self,
        workdir: Path,
        scenario_name: str,
        role: str,
        *,
        target: str | None = None,
        keys: dict[str, str] | None = None,
        service: str | None = None,
        auth: tuple[str, str] | None = None,
        calls: int = 1,
        timeout_s: int = 30,
        pause_ms: int | None = None,
        local_port: int | None = None,
        extra: list[str] | None = None,
        host: str = HOST,
    ) -> None:
        if shutil.which("sipp") is None:
            raise RuntimeError("sipp not installed")
        self.workdir = Path(workdir)
        self.role = role
        self.host = host
        self.port = local_port or free_port()
        self.media_port = free_port(span=4)  # RTP/RTCP, and video on +2
        self.cmd = sipp_cmd(
            scenario(scenario_name),
            local_port=self.port,
            media_port=self.media_port,
            target=target,
            keys=keys,
            service=service,
            auth=auth,
            calls=calls,
            timeout_s=timeout_s,
            pause_ms=pause_ms,
            workdir=self.workdir,
            name=role,
            extra=extra,
            host=host,
        )
        self.timeout_s = timeout_s
        self.proc: subprocess.Popen[str] | None = None
        self.out_path = self.workdir / f"{role}.out"

    @property
    def uri_host(self) -> str:
        return f"{uri_host(self.host)}:{self.port}"

    def start(self, listening: bool = True) -> Sipp:
        """Start SIPp; with ``listening`` (a UAS), give it time to bind first."""
        self._out = open(self.out_path, "w")  # noqa: SIM115 - closed in wait()
        self.proc = subprocess.Popen(
            self.cmd,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=self.workdir,
        )
        if not listening:
            return self
        time.sleep(0.2)  # let it bind before anyone sends to it
        if self.proc.poll() is not None:
            raise RuntimeError(f"sipp {self.role} exited at once:\n{self.result().output}")
        return self

    def wait(self, timeout: float | None = None) -> SippResult:
        assert self.proc is not None
        try:
            self.proc.wait(timeout=timeout if timeout is not None else self.timeout_s + 10)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()
        return self.result()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.wait(timeout=5)

    def result(self) -> SippResult:
        rc = self.proc.returncode if self.proc is not None else -1
        out = self.out_path.read_text(errors="replace") if self.out_path.exists() else ""
        for suffix in ("errors.log", "screen.log"):
            p = self.workdir / f"{self.role}.{suffix}"
            if p.exists():
                out += f"\n--- {p.name} ---\n" + p.read_text(errors="replace")[-4000:]
        msgs = self.workdir / f"{self.role}.messages.log"
        messages = msgs.read_text(errors="replace") if msgs.exists() else ""
        return SippResult(rc if rc is not None else -1, out, messages)

    def run(self) -> SippResult:
        self.start(listening=False)
        return self.wait()

    def __enter__(self) -> Sipp:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def describe(result: SippResult) -> str:
    """Failure message: exit code, output and the last messages exchanged."""
    return (
        f"sipp exit {result.returncode}\n{result.output[-4000:]}\n"
        f"--- messages (tail) ---\n{result.messages[-6000:]}"
    )
