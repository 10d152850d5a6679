"""SIP trunks over IPv6: Kamailio on ``[::1]`` as the far end of an offhook trunk.

The plan is the one of ``test_trunk_kamailio`` (alice 1001 on offhook, route
pattern ``9.XXXX`` -> route list -> group -> trunk ``kam`` with CSS
``inbound`` = [internal]); here, on loopback only:

- Kamailio (``interop.kamailio``, ``host="::1"``) listens on ``udp:[::1]:K``;
- offhook listens on ``::`` (one dual-stack socket) with ``external_host``
  pinned to the loopback address of each family (so no test reaches
  anything but loopback), or on ``127.0.0.1`` and ``::1`` (one socket per
  family, IPv4 first: a node whose default host is IPv4);
- alice is baresip over IPv6 registered to offhook (``[::1]:P``), carol is
  baresip over IPv6 registered to Kamailio as 2001.

IPv6 loopback is one address, so the trunk (``::1``, port K) is told from
alice (``::1``, her own port) by its port: a trunk without
``inbound_addresses`` is its exact address and port. The plan writes the
trunk's address in a non-canonical form (``[0:0::1]``, ``0:0:0:0:0:0:0:1``):
offhook stores and compares it canonically.

What is checked, besides calls both ways with media phone to phone (tshark,
as in the IPv4 tests) and call records:

- the wire toward Kamailio (tshark on its port): Request-URI
  ``sip:2001@[::1]:K``, Via sent-by ``[::1]:P`` with ``rport``, Contact and
  From ``[::1]:P``, SDP ``IN IP6``; Kamailio's answers carry
  ``received=::1;rport=P`` (RFC 3581), which offhook takes; offhook's
  answers to Kamailio give its Via back untouched and echo its
  Record-Route, and in-dialog requests follow it;
- ``inbound_addresses`` with IPv6 networks admit the trunk's calls (no
  digest, trunk CSS), and a network that does not hold ``::1`` does not
  (offhook's 407 reaches carol through Kamailio);
- OPTIONS pings and trunk registration to ``[::1]``: the registered IPv6
  contact is then what Kamailio delivers a call to;
- a trunk to a host NAME with only an AAAA record (``v6only.test -> ::1``)
  or both (``dual.test -> 127.0.0.2, ::1``: IPv6 preferred): offhook runs in
  a private mount namespace (``unshare --mount``) whose ``/etc/hosts`` names
  them; nothing on the machine changes. Requests go to ``[::1]:K`` with an
  IPv6 Via/Contact and the name in the Request-URI (RFC 3263: the name
  chooses where to send, the Request-URI keeps it).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import support.server
from interop.baresip import Baresip, BaresipError
from interop.kamailio import Kamailio
from interop.peers import in_ci, require_binary, require_capture
from interop.test_trunk_kamailio import (
    ALICE_DN,
    ALICE_PASSWORD,
    CAROL_USER,
    OUT_PREFIX,
    answered,
    assert_bye_via_kamailio,
    trunk_plan,
    wait_log,
)
from support.capture import Capture, count_between
from support.server import OffhookServer
from support.sipwire import WireMsg, between, requests, responses, sip_on_wire

V6 = "::1"
V4 = "127.0.0.1"
MIN_RTP = 25  # packets each way: ~0.5 s of 20 ms G.711 in a call of ~1.5 s

DUAL = ["::"]  # one dual-stack socket
PER_FAMILY = [V4, V6]  # one socket per family; the default host is IPv4

# A name offhook alone resolves (its private /etc/hosts): only an AAAA record,
# or both an A record (127.0.0.2, where nothing listens) and an AAAA record.
HOSTS_FILE = f"127.0.0.1 localhost\n{V6} v6only.test\n127.0.0.2 dual.test\n{V6} dual.test\n"


# -- setup -----------------------------------------------------------------------


def trunk6_plan(kam: Kamailio, **trunk: Any) -> dict[str, Any]:
    """``test_trunk_kamailio``'s plan with trunk ``kam`` changed by ``trunk``."""
    plan = trunk_plan(kam)
    kam_trunk = plan["trunks"][0]
    del kam_trunk["inbound_addresses"]  # "::1/32" would not be a network
    kam_trunk["host"] = "[0:0::1]"  # any written form of ::1
    kam_trunk.update(trunk)
    return plan


class NamespacedServer(OffhookServer):
    """An offhook node whose processes see ``hosts`` as /etc/hosts.

    Every ``offhook`` command (``load``, ``serve``, ``cdr`` ...) runs as
    ``unshare --mount --propagation private sh -c 'mount --bind HOSTS
    /etc/hosts && exec offhook ...'``: a private mount namespace that ends
    with the process. The network namespace is the machine's, so peers and
    tests reach the node on loopback as usual.
    """

    def __init__(self, *args: Any, hosts: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hosts_path = self.dir / "hosts"
        self.hosts_path.write_text(hosts)
        self.wrapper = private_hosts_argv(self.hosts_path)

    @contextlib.contextmanager
    def _wrapped(self) -> Iterator[None]:
        saved = support.server.CLI
        support.server.CLI = [*self.wrapper, *saved]
        try:
            yield
        finally:
            support.server.CLI = saved

    def start(self, timeout: float = 30.0) -> OffhookServer:
        with self._wrapped():
            return super().start(timeout)

    def run_cli(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        with self._wrapped():
            return super().run_cli(*args, **kwargs)


def private_hosts_argv(hosts: Path) -> list[str]:
    return [
        "unshare", "--mount", "--propagation", "private",
        "sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"', str(hosts),
    ]  # fmt: skip


def require_private_hosts(tmp_path: Path) -> None:
    """Skip (fail under CI=true) unless a process can be given its own /etc/hosts."""
    hosts = tmp_path / "probe-hosts"
    hosts.write_text(HOSTS_FILE)
    reason = None
    if shutil.which("unshare") is None:
        reason = "unshare (util-linux) not installed"
    else:
        probe = subprocess.run(
            [*private_hosts_argv(hosts), "getent", "ahosts", "v6only.test"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
        if probe.returncode != 0 or V6 not in probe.stdout:
            reason = (
                "cannot give a process its own /etc/hosts (unshare --mount + bind mount; "
                f"needs CAP_SYS_ADMIN): rc={probe.returncode} {probe.stderr.strip()!r}"
            )
        elif "v6only.test" in Path("/etc/hosts").read_text():
            reason = "/etc/hosts itself names v6only.test: the test would prove nothing"
    if reason is not None:
        if in_ci():
            pytest.fail(f"CI=true: {reason}", pytrace=False)
        pytest.skip(reason)


def node_config(listen: list[str]) -> dict[str, dict[str, Any]]:
    return {
        "sip": {
            "listen": listen,
            "allow": ["127.0.0.0/8", "::1/128"],
            "external_host": [V4, V6],
        },
        "tftp": {"enabled": False},
    }


@contextlib.contextmanager
def trunk6_setup(
    tmp_path: Path,
    *,
    listen: list[str] | None = None,
    forward: bool = True,
    hosts: str | None = None,
    **trunk: Any,
) -> Iterator[tuple[OffhookServer, Kamailio, Baresip, Baresip]]:
    """Kamailio on [::1], offhook, alice (IPv6, on offhook), carol (IPv6, on Kamailio)."""
    require_binary("kamailio")
    require_binary("baresip")
    kam = Kamailio(tmp_path, host=V6)
    plan = trunk6_plan(kam, **trunk)
    config = node_config(listen or DUAL)
    srv: OffhookServer
    if hosts is None:
        srv = OffhookServer(tmp_path, plan, extra_config=config, log_level="debug")
    else:
        srv = NamespacedServer(tmp_path, plan, extra_config=config, log_level="debug", hosts=hosts)
    if forward:
        kam.forward_to = (V6, srv.sip_port)
    with kam:
        srv.start()
        try:
            with contextlib.ExitStack() as uas:
                alice = start_ua(
                    uas,
                    lambda: Baresip(
                        tmp_path,
                        "alice",
                        aor=f"sip:alice@[{V6}]:{srv.sip_port}",
                        password=ALICE_PASSWORD,
                        regint=120,
                        host=V6,
                    ),
                )
                carol = start_ua(
                    uas,
                    lambda: Baresip(
                        tmp_path, "carol", aor=kam.uri(CAROL_USER), regint=120, host=V6
                    ),
                )
                alice.wait_registered()
                carol.wait_registered()
                yield srv, kam, alice, carol
        finally:
            srv.stop()


def start_ua(stack: contextlib.ExitStack, make: Callable[[], Baresip]) -> Baresip:
    """Start a baresip; if another process took one of its ports meanwhile, again
    on new ports (support.ports hands out ports free at that moment; on a machine
    running other tests one can be taken before baresip binds it)."""
    for attempt in range(3):
        ua = make()
        try:
            return stack.enter_context(ua)
        except BaresipError as exc:
            ua.stop()
            if "Address already in use" not in str(exc) or attempt == 2:
                raise
    raise AssertionError("unreachable")


# -- the wire ----------------------------------------------------------------------


_IPV4 = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")


def addressing(msg: WireMsg) -> str:
    """The start line and header fields that carry addresses (not Call-ID: an
    opaque word, RFC 3261 §8.1.1.4, offhook's names its default host)."""
    lines = msg.text.split("\r\n\r\n", 1)[0].split("\r\n")
    keep = [lines[0]]
    for line in lines[1:]:
        if line.partition(":")[0].strip().lower() not in ("call-id", "i"):
            keep.append(line)
    return "\r\n".join(keep)


def assert_ipv6_request_to_trunk(msg: WireMsg, node_port: int, ruri: str) -> None:
    """offhook's request to the trunk: all IPv6 (RFC 5118 §4), rport asked for."""
    me = f"[{V6}]:{node_port}"
    assert msg.uri == ruri, msg.text
    via = msg.header("Via", "v")
    assert via.startswith(f"SIP/2.0/UDP {me};"), msg.text
    assert re.search(r";rport(;|$)", via), msg.text  # RFC 3581 §3: asked, no value
    if msg.method in ("INVITE", "REGISTER"):
        assert f"@{me}>" in msg.header("Contact", "m") or f"@{me};" in msg.header("Contact", "m"), (
            msg.text
        )
    assert f"@{me}>" in msg.header("From", "f") or msg.method == "REGISTER", msg.text
    assert not _IPV4.search(addressing(msg)), f"IPv4 toward an IPv6 trunk:\n{msg.text}"
    assert "::ffff:" not in msg.text, msg.text
    if msg.body:
        assert re.search(r"^c=IN IP6 ::1\s*$", msg.body, re.M), msg.body
        assert "IN IP4" not in msg.body, msg.body


def assert_kamailio_answer_stamped(msg: WireMsg, node_port: int) -> None:
    """Kamailio answers offhook's request with received=::1 and rport=P (RFC 3581 §4)."""
    via = msg.header("Via", "v")
    assert f"rport={node_port}" in via, msg.text
    assert re.search(r";received=(::1|\[::1\])(;|$)", via), msg.text


# -- capture -----------------------------------------------------------------------


@contextlib.contextmanager
def synced_capture(pcap: Path, bpf: str) -> Iterator[Capture]:
    """A loopback capture that is known to be writing packets when entered.

    tshark says "Capturing on" before it captures: here the first packets
    can be lost for up to ~0.75 s (seen), which would miss a call's INVITE
    exchange. So probe datagrams go to a port where nothing listens, inside
    the filter, until one is in the file. They are no SIP and no RTP.
    """
    with contextlib.closing(socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)) as probe:
        probe.bind((V6, 0))
        port = probe.getsockname()[1]  # ours, unconnected: probes to it are read by nobody
        with Capture(pcap, f"({bpf}) or (udp and dst port {port})") as cap:
            deadline = time.monotonic() + 15
            while not pcap.exists():
                assert time.monotonic() < deadline, "tshark wrote no capture file"
                time.sleep(0.01)
            empty = pcap.stat().st_size
            while pcap.stat().st_size <= empty:
                assert time.monotonic() < deadline, "tshark captured no probe in 15 s"
                probe.sendto(b"capture-probe", (V6, port))
                time.sleep(0.02)
            yield cap


# -- calls -------------------------------------------------------------------------


def call_with_media_on_wire(
    tmp_path: Path,
    srv: OffhookServer,
    kam: Kamailio,
    caller: Baresip,
    callee: Baresip,
    uri: str,
    ender: Baresip,
) -> list[WireMsg]:
    """caller dials uri, callee answers, 1.5 s of audio, ender hangs up; SIP on the wire."""
    other = callee if ender is caller else caller
    ranges = " or ".join("portrange {}-{}".format(*ua.rtp_ports) for ua in (caller, callee))
    bpf = f"udp and (port {kam.port} or port {srv.sip_port} or {ranges})"
    with synced_capture(tmp_path / "call.pcap", bpf) as cap:
        caller.dial(uri)
        callee.wait_event("CALL_INCOMING", timeout=10)
        caller.wait_event("CALL_RINGING", "CALL_PROGRESS", timeout=10)
        callee.accept()
        caller.wait_event("CALL_ESTABLISHED", timeout=10)
        callee.wait_event("CALL_ESTABLISHED", timeout=10)
        time.sleep(1.5)
        ender_mark, other_mark = ender.mark(), other.mark()
        ender.hangup()
        other.wait_event("CALL_CLOSED", timeout=10, since=other_mark)
        ender.wait_event("CALL_CLOSED", timeout=10, since=ender_mark)
        cap.stop()
        flows = cap.rtp_flows()
    # Phone to phone over IPv6, both ways: neither offhook nor Kamailio relays media.
    assert count_between(flows, caller.rtp_ports, callee.rtp_ports) >= MIN_RTP, flows
    assert count_between(flows, callee.rtp_ports, caller.rtp_ports) >= MIN_RTP, flows
    return sip_on_wire(cap.pcap)


def dial_out(srv: OffhookServer) -> str:
    return f"sip:{OUT_PREFIX}{CAROL_USER}@[{V6}]:{srv.sip_port}"


# -- outbound: alice -> offhook -> trunk [::1] -> Kamailio -> carol ------------------


@pytest.mark.parametrize(
    ("listen", "hangup_side"),
    [(DUAL, "offhook-phone"), (DUAL, "kamailio-ua"), (PER_FAMILY, "offhook-phone")],
    ids=["dual-stack-alice-hangs-up", "dual-stack-carol-hangs-up", "per-family-sockets"],
)
def test_outbound_call_over_ipv6_trunk(tmp_path: Path, listen: list[str], hangup_side: str) -> None:
    require_capture()
    with trunk6_setup(tmp_path, listen=listen) as (srv, kam, alice, carol):
        ender = alice if hangup_side == "offhook-phone" else carol
        wire = call_with_media_on_wire(tmp_path, srv, kam, alice, carol, dial_out(srv), ender)
        assert f"INVITE sip:{CAROL_USER}@{kam.domain}" in kam.log(), kam.log_tail()
        assert_bye_via_kamailio(kam)
        rows = srv.wait_cdr(lambda r: r["calling_device"] == "alice")
    node, trunk = (V6, srv.sip_port), (V6, kam.port)
    to_kam = between(wire, node, trunk)
    invites = requests(to_kam, "INVITE")
    assert len(invites) == 1, [m.first_line for m in to_kam]
    assert_ipv6_request_to_trunk(invites[0], srv.sip_port, f"sip:{CAROL_USER}@{kam.domain}")
    assert invites[0].header("To", "t") == f"<sip:{CAROL_USER}@{kam.domain}>"
    # Kamailio's answers stamped received/rport; offhook took them (the call ran).
    from_kam = between(wire, trunk, node)
    answers = responses(from_kam, "INVITE")
    assert [m.status for m in answers if m.status >= 200] == [200], [m.first_line for m in answers]
    for answer in answers:
        assert_kamailio_answer_stamped(answer, srv.sip_port)
    # The ACK and (when alice hangs up) the BYE go over the trunk too, all IPv6.
    for method in ("ACK", "BYE") if ender_is_alice(hangup_side) else ("ACK",):
        sent = requests(to_kam, method)
        assert sent, (method, [m.first_line for m in to_kam])
        for msg in sent:
            assert msg.header("Via", "v").startswith(f"SIP/2.0/UDP [{V6}]:{srv.sip_port};")
            assert not _IPV4.search(addressing(msg)), msg.text
    row = rows[-1]
    answered(row)
    assert row["called_device"] == "kam", row
    assert row["called"] in {OUT_PREFIX + CAROL_USER, CAROL_USER}, row


def ender_is_alice(hangup_side: str) -> bool:
    return hangup_side == "offhook-phone"


# -- inbound: carol -> Kamailio [::1] -> trunk -> offhook (trunk CSS) -> alice -------


@pytest.mark.parametrize("hangup_side", ["kamailio-ua", "offhook-phone"])
def test_inbound_call_over_ipv6_trunk(tmp_path: Path, hangup_side: str) -> None:
    """The trunk is its exact address and port, written 0:0:0:0:0:0:0:1 in the plan."""
    require_capture()
    with trunk6_setup(tmp_path, host="0:0:0:0:0:0:0:1") as (srv, kam, alice, carol):
        ender = alice if hangup_side == "offhook-phone" else carol
        wire = call_with_media_on_wire(
            tmp_path, srv, kam, carol, alice, kam.uri(ALICE_DN), ender=ender
        )
        assert_bye_via_kamailio(kam)
        rows = srv.wait_cdr(lambda r: r["called_device"] == "alice")
    row = rows[-1]
    answered(row)
    assert row["calling_device"] == "kam", row  # no digest: the trunk's call
    assert row["called"] == ALICE_DN, row
    assert row["calling"] == CAROL_USER, row
    node, trunk = (V6, srv.sip_port), (V6, kam.port)
    invite = requests(between(wire, trunk, node), "INVITE")[0]
    kam_via = invite.header("Via", "v")
    record_route = invite.header("Record-Route")
    assert f"[{V6}]:{kam.port}" in record_route or f"{V6}:{kam.port}" in record_route
    answers = responses(between(wire, node, trunk), "INVITE")
    assert [m.status for m in answers if m.status >= 200] == [200], [m.first_line for m in answers]
    for answer in answers:
        # Kamailio's Via back as it was: its sent-by is the source, so no received
        # (RFC 3261 §18.2.1), and rport only when asked for (RFC 3581).
        assert answer.header("Via", "v") == kam_via, answer.text
        assert "::ffff:" not in answer.text and not _IPV4.search(addressing(answer)), answer.text
    ok = next(m for m in answers if m.status == 200)
    assert ok.header("Record-Route") == record_route, ok.text  # RFC 3261 §12.1.1
    contact = ok.header("Contact", "m")
    assert f"@[{V6}]:{srv.sip_port}" in contact, ok.text
    assert re.search(r"^c=IN IP6 ::1\s*$", ok.body, re.M), ok.body
    if hangup_side == "offhook-phone":
        # offhook's BYE goes to Kamailio (the Record-Route), Request-URI carol's contact.
        byes = requests(between(wire, node, trunk), "BYE")
        assert len(byes) == 1, [m.first_line for m in between(wire, node, trunk)]
        assert byes[0].header("Route").startswith("<sip:"), byes[0].text
        assert byes[0].header("Via", "v").startswith(f"SIP/2.0/UDP [{V6}]:{srv.sip_port};")


# -- inbound_addresses: IPv6 networks ------------------------------------------------


def test_inbound_addresses_ipv6_network_admits_the_trunk(tmp_path: Path) -> None:
    """``inbound_addresses`` = an IPv4 network and ``[::1]`` (any port of ::1)."""
    require_capture()
    trunk = {"inbound_addresses": ["127.0.0.2/32", f"[{V6}]"]}
    with trunk6_setup(tmp_path, **trunk) as (srv, kam, alice, carol):
        call_with_media_on_wire(tmp_path, srv, kam, carol, alice, kam.uri(ALICE_DN), ender=carol)
        rows = srv.wait_cdr(lambda r: r["called_device"] == "alice")
    answered(rows[-1])
    assert rows[-1]["calling_device"] == "kam", rows[-1]


def test_inbound_addresses_without_the_source_refuse_the_call(tmp_path: Path) -> None:
    """``inbound_addresses`` = 2001:db8::/32 only: Kamailio's call from ::1 is no
    trunk call, so offhook asks for credentials (407), which carol does not have
    (baresip answers the challenge with none, which offhook refuses: 403)."""
    trunk = {"inbound_addresses": ["2001:DB8::/32"]}
    with trunk6_setup(tmp_path, **trunk) as (srv, kam, alice, carol):
        mark = alice.mark()
        carol.dial(kam.uri(ALICE_DN))
        closed = carol.wait_event("CALL_CLOSED", timeout=15)
        assert closed.param.split()[0] in ("401", "403", "407"), closed.data
        assert "CALL_INCOMING" not in alice.event_types()[mark:]
        assert "SIP/2.0 407 " in srv.log(), srv.log_tail()
        assert [r for r in srv.cdr_rows() if r["calling_device"] == "kam"] == []


# -- OPTIONS pings and registration to [::1] -----------------------------------------


def test_options_ping_and_registration_over_ipv6(tmp_path: Path) -> None:
    """The trunk pings Kamailio every second and registers ``1001`` (its DID) there;
    Kamailio (which forwards nothing to offhook here) then delivers carol's call
    for 1001 to the IPv6 contact offhook registered."""
    require_capture()
    trunk = {"options_ping": 1, "register": True, "username": ALICE_DN, "password": "unused"}
    with (
        synced_capture(tmp_path / "trunk.pcap", "udp") as cap,
        trunk6_setup(tmp_path, forward=False, **trunk) as (srv, kam, alice, carol),
    ):
        wait_log(srv, "trunk kam is up", timeout=10)
        wait_log(srv, "trunk kam registration: registered", timeout=10)
        rows = [t for t in srv.status()["trunks"] if t["name"] == "kam"]
        assert rows and rows[0]["state"] == "up" and rows[0]["registration"] == "registered"
        assert rows[0]["host"] == V6, rows  # stored canonical, not "[0:0::1]"
        mark = alice.mark()
        carol.dial(kam.uri(ALICE_DN))
        alice.wait_event("CALL_INCOMING", timeout=10, since=mark)
        alice.accept()
        carol.wait_event("CALL_ESTABLISHED", timeout=10)
        mark = alice.mark()
        carol.hangup()
        alice.wait_event("CALL_CLOSED", timeout=10, since=mark)
        cdrs = srv.wait_cdr(lambda r: r["called_device"] == "alice")
        cap.stop()
        wire = sip_on_wire(cap.pcap)
    node, far = (V6, srv.sip_port), (V6, kam.port)
    to_kam, from_kam = between(wire, node, far), between(wire, far, node)
    pings = requests(to_kam, "OPTIONS")
    assert pings, [m.first_line for m in to_kam]
    for ping in pings:
        assert_ipv6_request_to_trunk(ping, srv.sip_port, f"sip:{kam.domain}")
        assert ping.header("To", "t") == f"<sip:{kam.domain}>"
    for answer in responses(from_kam, "OPTIONS"):
        assert answer.status == 200, answer.text
        assert_kamailio_answer_stamped(answer, srv.sip_port)
    registers = requests(to_kam, "REGISTER")
    assert registers, [m.first_line for m in to_kam]
    reg = registers[0]
    assert_ipv6_request_to_trunk(reg, srv.sip_port, f"sip:{kam.domain}")
    assert reg.header("To", "t") == f"<sip:{ALICE_DN}@{kam.domain}>"
    assert reg.header("Contact", "m") == f"<sip:{ALICE_DN}@[{V6}]:{srv.sip_port}>"
    ok = [m for m in responses(from_kam, "REGISTER") if m.status == 200]
    assert ok, [m.first_line for m in from_kam]
    assert f"<sip:{ALICE_DN}@[{V6}]:{srv.sip_port}>" in ok[0].header("Contact", "m")
    # Kamailio's lookup turned the Request-URI into offhook's registered contact.
    invite = requests(from_kam, "INVITE")[0]
    assert invite.uri == f"sip:{ALICE_DN}@[{V6}]:{srv.sip_port}", invite.text
    answered(cdrs[-1])
    assert cdrs[-1]["calling_device"] == "kam", cdrs[-1]


# -- a trunk to a host NAME with AAAA records ----------------------------------------


@pytest.mark.parametrize(
    ("name", "listen"),
    [("v6only.test", PER_FAMILY), ("v6only.test", DUAL), ("dual.test", DUAL)],
    ids=["aaaa-only-per-family-sockets", "aaaa-only-dual-stack", "a-and-aaaa-dual-stack"],
)
def test_trunk_to_a_name_with_aaaa_records(tmp_path: Path, name: str, listen: list[str]) -> None:
    """offhook alone resolves the name (its own /etc/hosts); it prefers IPv6, and
    gives the trunk an IPv6 Via/Contact even where its default host is IPv4."""
    require_capture()
    require_private_hosts(tmp_path)
    trunk = {"host": name, "options_ping": 1}
    with trunk6_setup(tmp_path, listen=listen, hosts=HOSTS_FILE, **trunk) as (
        srv,
        kam,
        alice,
        carol,
    ):
        wait_log(srv, "trunk kam is up", timeout=10)  # OPTIONS by name reached [::1]
        wire = call_with_media_on_wire(tmp_path, srv, kam, alice, carol, dial_out(srv), alice)
        rows = srv.wait_cdr(lambda r: r["calling_device"] == "alice")
        assert f"INVITE sip:{CAROL_USER}@{name}:{kam.port} from ::1:{srv.sip_port}" in kam.log()
    node, far = (V6, srv.sip_port), (V6, kam.port)
    to_kam = between(wire, node, far)
    invites = requests(to_kam, "INVITE")
    assert len(invites) == 1, [(m.dst, m.first_line) for m in wire]
    # The name stays in the Request-URI and To; the datagram went to [::1]:K.
    ruri = f"sip:{CAROL_USER}@{name}:{kam.port}"
    assert_ipv6_request_to_trunk(invites[0], srv.sip_port, ruri)
    assert invites[0].header("To", "t") == f"<{ruri}>"
    assert not [m for m in wire if m.dst in ("127.0.0.2",)], "the A record was used"
    assert requests(to_kam, "BYE"), [m.first_line for m in to_kam]
    answered(rows[-1])
    assert rows[-1]["called_device"] == "kam", rows[-1]
