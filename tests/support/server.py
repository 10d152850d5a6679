"""Run a real ``offhook serve`` as a subprocess for integration/interop tests.

:class:`OffhookServer` writes a TOML config in a temporary directory (SQLite
database there, SIP on a loopback port free on both UDP and TCP, the node's
control endpoint (``[admin]``) on another free port, SCCP on a free TCP port,
the web process's port (``[web]``, off unless ``web=True``), TFTP and its HTTP
twin on free ports of their own with ``tftproot/`` there as the root, so
that nodes never collide or need root for port 69), imports a plan with
``offhook load``, starts ``offhook serve --config FILE``, waits until it
answers a SIP OPTIONS over UDP, and on exit stops it (SIGTERM, then
SIGKILL). Its log goes to a file; on stop the tail is printed, which pytest
shows only for a failed test. ``control(op, **args)`` asks the node's control
endpoint directly (``ris.control``); ``status()`` goes through the CLI.

``web=True`` enables ``[web]``: ``offhook serve`` then runs the web process
as its child on ``web_port``, and ``start`` also waits until that port
accepts connections.

``listen`` (an address or a list, as the settings take it: ``"::"``,
``["127.0.0.1", "::1"]``) moves every listener (SIP, SCCP, TFTP, HTTP,
admin) off ``127.0.0.1``; the allow-lists then admit both loopbacks
(``127.0.0.0/8`` and ``::1``) unless ``extra_config`` says otherwise, and
the start-up OPTIONS goes to a loopback address the SIP listener serves
(``sip_host``).

The CLI is run as ``python -c 'from offhook.cli import main; main()'`` with
this interpreter, so it works with or without the ``offhook`` console script
on PATH (``src/`` is added to PYTHONPATH for an uninstalled checkout).

Use ``offhook_server(tmp_path, plan)`` as a context manager, or the class.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from offhook.ris.control import ControlError, request_at
from support.ports import HOST, HOST6, RELAY_PORTS, free_port

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src"
CLI = [
    sys.executable,
    "-c",
    "import sys; sys.argv[0] = 'offhook'; from offhook.cli import main; sys.exit(main())",
]


class ServerError(RuntimeError):
    """offhook did not start, died, or a CLI command failed."""


def device(
    name: str, password: str, dn: str, display: str | None = None, **extra: Any
) -> dict[str, Any]:
    """One plan entry: a SIP device with one line."""
    return {
        "name": name,
        "protocol": "sip",
        "password": password,
        "lines": [{"dn": dn, "display": display or name.capitalize()}],
        **extra,
    }


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a valid TOML basic string
    if isinstance(v, list | tuple):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as TOML")


def dump_toml(sections: dict[str, dict[str, Any]]) -> str:
    out = []
    for name, keys in sections.items():
        out.append(f"[{name}]")
        out.extend(f"{k} = {toml_value(v)}" for k, v in keys.items())
        out.append("")
    return "\n".join(out)


def loopback_of(listen: str | Sequence[str]) -> str:
    """A loopback address a listener on ``listen`` serves (IPv4 when it can)."""
    hosts = [listen] if isinstance(listen, str) else list(listen)
    for host in hosts:
        if host in ("0.0.0.0", "::") or host.startswith("127."):
            return host if host.startswith("127.") else HOST
    return HOST6 if HOST6 in hosts else hosts[0]


def sip_options_ping(port: int, host: str = HOST, timeout: float = 0.5) -> str | None:
    """Send one OPTIONS over UDP (IPv4 or IPv6 ``host``); the status line of any SIP answer."""
    v6 = ":" in host
    with contextlib.closing(
        socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
    ) as s:
        s.bind((host, 0))
        lport = s.getsockname()[1]
        tag = uuid.uuid4().hex[:10]
        uhost = f"[{host}]" if v6 else host
        msg = (
            f"OPTIONS sip:{uhost}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {uhost}:{lport};branch=z9hG4bK{tag};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:probe@{uhost}>;tag={tag}\r\n"
            f"To: <sip:{uhost}:{port}>\r\n"
            f"Call-ID: probe-{tag}@{uhost}\r\n"
            "CSeq: 1 OPTIONS\r\n"
            f"Contact: <sip:probe@{uhost}:{lport}>\r\n"
            "Accept: application/sdp\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        s.settimeout(timeout)
        s.sendto(msg.encode(), (host, port))
        try:
            data, _ = s.recvfrom(65535)
        except (TimeoutError, OSError):
            return None
        line = data.split(b"\r\n", 1)[0].decode("utf-8", "replace")
        return line if line.startswith("SIP/2.0 ") else None


def _parent(pid: int) -> int | None:
    """The parent of ``pid`` (a worker's is the supervising ``offhook serve``)."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


class OffhookServer:
    """One offhook node on loopback, with its own config, database and log."""

    def __init__(
        self,
        workdir: Path,
        plan: dict[str, Any] | None = None,
        *,
        realm: str = "offhook.test",
        extra_config: dict[str, dict[str, Any]] | None = None,
        env: dict[str, str] | None = None,
        log_level: str | None = None,
        listen: str | Sequence[str] | None = None,
        web: bool = False,
    ) -> None:
        self.dir = Path(workdir) / f"offhook-{uuid.uuid4().hex[:6]}"
        self.dir.mkdir(parents=True)
        self.sip_port = free_port()
        self.admin_port = free_port()
        self.web_port = free_port()  # TCP
        self.web = web
        self.sccp_port = free_port()  # TCP
        self.tftp_port = free_port()  # UDP
        self.tftp_http_port = free_port()  # TCP
        self.tftp_root = self.dir / "tftproot"
        self.tftp_root.mkdir()
        self.realm = realm
        self.db_path = self.dir / "offhook.db"
        self.config_path = self.dir / "offhook.toml"
        self.log_path = self.dir / "offhook.log"
        self.plan = plan
        self.proc: subprocess.Popen[bytes] | None = None
        where: str | list[str] = HOST if listen is None else _as_listen(listen)
        allow = ["127.0.0.0/8"] if listen is None else ["127.0.0.0/8", "::1/128"]
        sections: dict[str, dict[str, Any]] = {
            "database": {"url": f"sqlite:///{self.db_path}"},
            "sip": {
                "listen": where,
                "port": self.sip_port,
                "allow": allow,
                "realm": realm,
            },
            "admin": {"listen": where, "port": self.admin_port},
            "web": {"enabled": web, "listen": where, "port": self.web_port, "allow": allow},
            "sccp": {"listen": where, "port": self.sccp_port, "allow": allow},
            "tftp": {
                "listen": where,
                "port": self.tftp_port,
                "http_port": self.tftp_http_port,
                "allow": allow,
                "root": str(self.tftp_root),
            },
            "media": {"rtp_ports": RELAY_PORTS},
            # Overload control reads the machine's load: on a shared CI machine it would
            # decide whether a flood or load test's calls go through. Tests of it turn it on.
            "overload": {"enabled": False},
        }
        for name, keys in (extra_config or {}).items():
            sections.setdefault(name, {}).update(keys)
        self.sip_host = loopback_of(sections["sip"]["listen"])
        """A loopback address the SIP listener serves (where the start-up OPTIONS goes)."""
        self.admin_host = loopback_of(sections["admin"]["listen"])
        self.web_host = loopback_of(sections["web"]["listen"])
        self.web = bool(sections["web"]["enabled"])
        self.config_path.write_text(dump_toml(sections))
        base = {k: v for k, v in os.environ.items() if not k.startswith("OFFHOOK_")}
        if "OFFHOOK_TEST_LOG_LEVEL" in os.environ:  # e.g. debug, to see every SIP message
            base["OFFHOOK_LOG__LEVEL"] = os.environ["OFFHOOK_TEST_LOG_LEVEL"]
        pp = os.pathsep.join(p for p in (str(SRC), base.get("PYTHONPATH", "")) if p)
        base["PYTHONPATH"] = pp
        base.setdefault("PYTHONUNBUFFERED", "1")
        if log_level:
            base["OFFHOOK_LOG__LEVEL"] = log_level
        self.env = {**base, **(env or {})}

    # -- CLI ------------------------------------------------------------------

    def run_cli(
        self, *args: str, check: bool = False, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        """Run ``offhook ARGS --config FILE`` and return the completed process."""
        argv = [*CLI, *args]
        if "--config" not in args:
            argv += ["--config", str(self.config_path)]
        proc = subprocess.run(
            argv, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and proc.returncode != 0:
            raise ServerError(
                f"offhook {' '.join(args)} exited {proc.returncode}\n"
                f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
            )
        return proc

    def load(self, plan: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        path = self.dir / f"plan-{uuid.uuid4().hex[:6]}.yaml"
        path.write_text(yaml.safe_dump(plan, sort_keys=False))
        return self.run_cli("load", str(path), check=True)

    def cdr_rows(self) -> list[dict[str, str]]:
        """``offhook cdr`` parsed: one dict per CSV row, keyed by the header."""
        out = self.run_cli("cdr", check=True).stdout
        return list(csv.DictReader(io.StringIO(out)))

    def status(self) -> Any:
        """``offhook status --json`` parsed."""
        return json.loads(self.run_cli("status", "--json", check=True).stdout)

    def control(self, op: str, timeout: float = 10.0, **args: Any) -> Any:
        """One request to the node's control endpoint; its result (``ControlError`` if refused)."""
        return request_at(self.admin_host, self.admin_port, op, timeout=timeout, **args)

    def api_token(self, user: str = "prometheus") -> str:
        """A full-admin ``user`` added to this node's database, and an API token of
        theirs (what a scraper or a REST client is given)."""
        from offhook.db.engine import create_engine_for
        from offhook.db.users import UserStore, password_hasher

        engine = create_engine_for(f"sqlite:///{self.db_path}")
        try:
            users = UserStore(engine, password_hasher(1, 64, 1))
            users.add(user, "full-admin", f"{user}'s long password for the test")
            return users.create_token(user, "scraper")[1]
        finally:
            engine.dispose()

    @property
    def web_url(self) -> str:
        host = f"[{self.web_host}]" if ":" in self.web_host else self.web_host
        return f"http://{host}:{self.web_port}"

    def wait_web(self, timeout: float = 60.0) -> None:
        """Until the web process accepts connections on ``web_port``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise ServerError(f"offhook serve exited:\n{self.log_tail()}")
            with contextlib.suppress(OSError):
                socket.create_connection((self.web_host, self.web_port), timeout=1).close()
                return
            time.sleep(0.1)
        raise ServerError(
            f"the web process did not listen on {self.web_port} in {timeout}s:\n{self.log_tail()}"
        )

    def wait_cdr(
        self,
        predicate: Callable[[dict[str, str]], bool] = lambda row: True,
        count: int = 1,
        timeout: float = 10.0,
    ) -> list[dict[str, str]]:
        """Poll ``offhook cdr`` until ``count`` rows match ``predicate``."""
        rows: list[dict[str, str]] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = self.cdr_rows()
            hits = [r for r in rows if predicate(r)]
            if len(hits) >= count:
                return hits
            time.sleep(0.25)
        raise AssertionError(f"no {count} matching CDR rows within {timeout}s; rows: {rows}")

    # -- process --------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> OffhookServer:
        if self.plan is not None:
            self.load(self.plan)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [*CLI, "serve", "--config", str(self.config_path)],
            env=self.env,
            cwd=self.dir,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(
                    f"offhook serve exited {self.proc.returncode} before answering SIP:\n"
                    f"{self.log_tail()}"
                )
            if sip_options_ping(self.sip_port, self.sip_host) is not None:
                # SIP answers before the later listeners are bound: one of those failing
                # ends the process, so the node is up only once its control endpoint answers.
                self._wait_control(deadline)
                if self.web:
                    self.wait_web(max(5.0, deadline - time.monotonic()))
                return self
            time.sleep(0.1)
        self.stop()
        raise ServerError(
            f"offhook serve did not answer OPTIONS on UDP {self.sip_port} "
            f"({self.sip_host}) in {timeout}s:\n"
            f"{self.log_tail()}"
        )

    def _wait_control(self, deadline: float) -> None:
        """Until the control endpoint listens (its allow-list may refuse this address:
        a completed TCP handshake is enough), or the process ended."""
        assert self.proc is not None
        while True:
            if self.proc.poll() is not None:
                raise ServerError(
                    f"offhook serve exited {self.proc.returncode} after answering SIP:\n"
                    f"{self.log_tail()}"
                )
            with contextlib.suppress(OSError):
                socket.create_connection((self.admin_host, self.admin_port), timeout=2.0).close()
                if self._ours():
                    return
            if time.monotonic() >= deadline:
                self.stop()
                raise ServerError(
                    f"the control endpoint on {self.admin_port} did not listen, or was not "
                    f"this node's:\n{self.log_tail()}"
                )
            time.sleep(0.1)

    def _ours(self) -> bool:
        """Whether the control endpoint on ``admin_port`` is this process's (or its worker's).

        Another test session on this machine can have a node on the same ports; a port
        that answers proves nothing. An endpoint whose allow-list refuses us cannot be
        asked: its handshake is taken as ours.
        """
        assert self.proc is not None
        try:
            status = self.control("status", timeout=2.0)
        except (OSError, ControlError):
            return True
        pid = status.get("pid") if isinstance(status, dict) else None
        if pid is None:
            return True  # a node that does not say (an older tree, run by a benchmark)
        return pid == self.proc.pid or (isinstance(pid, int) and _parent(pid) == self.proc.pid)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self, show_log: bool = True) -> int | None:
        rc = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            rc = self.proc.returncode
        with contextlib.suppress(AttributeError):
            self._log.close()
        if show_log:
            # Captured by pytest: shown only when the test failed.
            print(f"--- offhook log ({self.log_path}), exit {rc} ---")
            print(self.log_tail())
        return rc

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 200) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def __enter__(self) -> OffhookServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _as_listen(listen: str | Sequence[str]) -> str | list[str]:
    return listen if isinstance(listen, str) else list(listen)


@contextlib.contextmanager
def offhook_server(
    workdir: Path, plan: dict[str, Any] | None = None, **kwargs: Any
) -> Iterator[OffhookServer]:
    server = OffhookServer(workdir, plan, **kwargs)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def plan_of(devices: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {"devices": list(devices)}
