"""Driver for a Kamailio (Debian ``kamailio`` 5.6) registrar + stateful proxy.

:class:`Kamailio` writes a minimal configuration -- no database (usrloc
``db_mode 0``), no authentication, UDP only -- listening on a loopback
address and free port, starts ``kamailio -f CFG -DD -E -m 64 -M 8`` in its
own process group, waits until it answers an OPTIONS, and on exit stops it
(SIGTERM, then SIGKILL to the group it created).  Its stderr log goes to a
file; :meth:`Kamailio.stop` prints the tail, which pytest shows only when a
test failed.

Routing (the whole point of the config, see :data:`CONFIG`):

- ``REGISTER`` is saved in the in-memory location table;
- an initial request whose Request-URI user is registered is relayed to the
  registered contact (``lookup("location")``);
- any other initial request with a user part is relayed to ``forward_to``
  (the offhook node, via ``$du``) -- unless it came from ``forward_to``
  itself, which gets 404 (no loop between offhook's trunk and Kamailio);
- ``record_route()`` on INVITEs, so in-dialog requests (ACK, BYE, re-INVITE)
  pass through Kamailio with ``loose_route()``, as they would through a
  carrier's proxy;
- with ``reject``, every other initial request gets that status instead
  (a trunk peer that answers OPTIONS but refuses calls, e.g. 503);
- ``OPTIONS`` to Kamailio itself (no user part: a trunk keepalive or the
  readiness probe) is answered 200 statelessly.

Kamailio is meant to be the far end of an offhook SIP trunk: bind it on a
loopback address other than 127.0.0.1 (default ``127.0.0.2``), because a
trunk's ``inbound_addresses`` skip digest authentication and offhook's own
phones are on 127.0.0.1.

``host="::1"`` runs it over IPv6 (``listen=udp:[::1]:PORT``): URIs, the
alias and ``forward_to`` are then written with brackets (RFC 3261 §25.1),
``$si`` compared bare, and the readiness OPTIONS goes over IPv6. IPv6
loopback has one address, so a trunk to it is told from offhook's IPv6
phones by its port (a trunk without ``inbound_addresses`` is its exact
address and port).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from offhook.common.addr import uri_host
from support.ports import free_port
from support.server import sip_options_ping

BINARY = "kamailio"
MODULE_PATH = "/usr/lib/x86_64-linux-gnu/kamailio/modules/"
DEFAULT_HOST = "127.0.0.2"

MODULES = (
    "kex",
    "corex",
    "tm",
    "sl",
    "rr",
    "pv",
    "maxfwd",
    "textops",
    "siputils",
    "usrloc",
    "registrar",
    "sanity",
    "xlog",
)

CONFIG = """\
#!KAMAILIO
# Written by tests/interop/kamailio.py: registrar + stateful proxy, no database.
debug={debug}
log_stderror=yes
children=2
disable_tcp=yes
auto_aliases=no
dns=no
rev_dns=no
listen=udp:{uhost}:{port}
alias="{uhost}:{port}"
mpath="{mpath}"

{loadmodules}

modparam("usrloc", "db_mode", 0)
modparam("registrar", "max_expires", 3600)
modparam("rr", "append_fromtag", 1)

request_route {{
    if (!mf_process_maxfwd_header("10")) {{
        sl_send_reply("483", "Too Many Hops");
        exit;
    }}
    if (!sanity_check("17895", "7")) {{
        xlog("L_WARN", "malformed $rm from $si:$sp\\n");
        exit;
    }}
    xlog("L_INFO", "$rm $ru from $si:$sp call-id $ci\\n");

    # In-dialog requests follow the Record-Route set.
    if (has_totag()) {{
        if (loose_route()) {{
            route(RELAY);
        }}
        if (is_method("ACK")) {{
            if (t_check_trans()) {{
                route(RELAY);
            }}
            exit;
        }}
        sl_send_reply("404", "Not here");
        exit;
    }}

    if (is_method("CANCEL")) {{
        if (t_check_trans()) {{
            route(RELAY);
        }}
        exit;
    }}
    if (!is_method("ACK")) {{
        t_check_trans();
    }}
    remove_hf("Route");
    {reject_block}
    if (is_method("REGISTER")) {{
        if (!save("location")) {{
            sl_reply_error();
        }}
        exit;
    }}
    if ($rU == $null) {{
        if (is_method("OPTIONS")) {{
            sl_send_reply("200", "OK");
            exit;
        }}
        sl_send_reply("484", "Address Incomplete");
        exit;
    }}
    if (is_method("INVITE")) {{
        record_route();
    }}
    if (lookup("location")) {{
        route(RELAY);
    }}
    {forward_block}
}}

route[RELAY] {{
    if (!t_relay()) {{
        sl_reply_error();
    }}
    exit;
}}
"""

FORWARD_BLOCK = """\
if ($si == "{fhost}" && $sp == {fport}) {{
        sl_send_reply("404", "Not Found");
        exit;
    }}
    $du = "sip:{ufhost}:{fport}";
    route(RELAY);"""

REJECT_BLOCK = """\
if (!is_method("OPTIONS|REGISTER|ACK")) {{
        sl_send_reply("{code}", "{reason}");
        exit;
    }}
"""

NO_FORWARD_BLOCK = """\
sl_send_reply("404", "Not Found");
    exit;"""


class KamailioError(RuntimeError):
    """Kamailio did not start, or died."""


def free_udp_port(host: str) -> int:
    """A UDP port free on ``host`` (Kamailio here listens on UDP only), IPv4 or IPv6."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with contextlib.closing(socket.socket(family, socket.SOCK_DGRAM)) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class Kamailio:
    """One Kamailio registrar/proxy on ``host``:``port`` (UDP).

    ``forward_to`` is ``(host, port)`` of the node that gets every initial
    request whose user is not registered here (the offhook trunk peer);
    without it such requests get 404.  ``reject=(503, "Service
    Unavailable")`` makes it answer every initial request other than
    OPTIONS/REGISTER with that status (a trunk peer that is up but refuses
    calls).
    """

    def __init__(
        self,
        workdir: Path,
        *,
        host: str = DEFAULT_HOST,
        port: int | None = None,
        forward_to: tuple[str, int] | None = None,
        reject: tuple[int, str] | None = None,
        debug: int = 2,
    ) -> None:
        self.dir = Path(workdir) / f"kamailio-{os.getpid()}-{time.monotonic_ns() % 10**6}"
        self.dir.mkdir(parents=True)
        self.host = host
        if port is None:
            # IPv6: a port the test process hands out once (support.ports), so a
            # UA started next cannot be given the same number.
            port = free_port() if ":" in host else free_udp_port(host)
        self.port = port
        self.forward_to = forward_to
        self.reject = reject
        self.debug = debug
        self.config_path = self.dir / "kamailio.cfg"
        self.log_path = self.dir / "kamailio.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def domain(self) -> str:
        """``host:port`` as a SIP URI writes it (``[::1]:PORT`` for IPv6)."""
        return f"{uri_host(self.host)}:{self.port}"

    def uri(self, user: str) -> str:
        """``sip:USER@HOST:PORT`` -- an address served by this proxy."""
        return f"sip:{user}@{self.domain}"

    def config(self) -> str:
        if self.forward_to is not None:
            fhost, fport = self.forward_to
            forward = FORWARD_BLOCK.format(fhost=fhost, ufhost=uri_host(fhost), fport=fport)
        else:
            forward = NO_FORWARD_BLOCK
        return CONFIG.format(
            debug=self.debug,
            uhost=uri_host(self.host),
            port=self.port,
            mpath=MODULE_PATH,
            loadmodules="\n".join(f'loadmodule "{m}.so"' for m in MODULES),
            forward_block=forward,
            reject_block=REJECT_BLOCK.format(code=self.reject[0], reason=self.reject[1])
            if self.reject is not None
            else "",
        )

    def write_config(self) -> None:
        self.config_path.write_text(self.config())

    # -- process --------------------------------------------------------------

    def start(self, timeout: float = 15.0) -> Kamailio:
        binary = shutil.which(BINARY)
        if binary is None:
            raise KamailioError("kamailio binary not found")
        self.write_config()
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                binary,
                "-f", str(self.config_path),
                "-DD", "-E",
                "-m", "64", "-M", "8",
                "-Y", str(self.dir),  # runtime dir: nothing under /run
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.dir,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise KamailioError(
                    f"kamailio exited {self.proc.returncode} before answering OPTIONS:\n"
                    f"{self.log_tail()}"
                )
            if sip_options_ping(self.port, host=self.host) is not None:
                return self
            time.sleep(0.1)
        self.stop()
        raise KamailioError(
            f"kamailio did not answer OPTIONS on {self.domain} in {timeout}s:\n{self.log_tail()}"
        )

    def stop(self, show_log: bool = True) -> int | None:
        rc = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    # The group was created by start() (start_new_session).
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait()
            rc = self.proc.returncode
        with contextlib.suppress(AttributeError):
            self._log.close()
        if show_log:
            print(f"--- kamailio log ({self.log_path}), exit {rc} ---")
            print(self.log_tail())
        return rc

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 80) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def __enter__(self) -> Kamailio:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
