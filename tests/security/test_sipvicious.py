"""SIPVicious against offhook: no extensions found, no password cracked, no node seen.

SIPVicious (PyPI ``sipvicious``) is what toll fraudsters run first against a
SIP server: ``svmap`` finds SIP servers, ``svwar`` enumerates extensions by
how the server answers a request for each, ``svcrack`` guesses an
extension's password. Each tool runs here as a subprocess against a real
``offhook serve`` on loopback, bounded by a timeout:

- ``svmap`` sees only what ``[sip] allow`` allows: with the allow-list
  ``127.0.0.1/32`` (+ ``127.0.8.0/24`` for the probes below), a scan bound
  to 127.0.0.2 finds nothing (and the refusal is counted as ``acl``), one
  from 127.0.0.1 finds the node, whose User-Agent is only the product name
  (no version to look up exploits for).
- ``svwar`` (REGISTER, INVITE and OPTIONS; extensions 1000-1010, and a
  dictionary of the configured device names and made-up ones) finds none of
  the configured extensions; and the node's answers, compared here
  directly, are the same for every name, configured or not, with and without
  (wrong) credentials: same status, reason, header names and challenge
  parameters.
- ``svcrack`` against alice, with a wordlist that does not contain her
  password, cracks nothing: its source (127.0.0.1; svcrack cannot bind to
  another address) is throttled, then blocked, as ``offhook status``
  counts, and alice's own phone, from another address, still registers.

Each test runs twice: against a node listening on 127.0.0.1 (``ipv4``), and
against one dual-stack node (``[sip] listen = "::"``, ``dual-stack``) that
the tools reach over IPv4 (127.0.0.1, arriving on the IPv6 socket as
``::ffff:127.0.0.1``) and over IPv6 (``::1``, the tools' ``-6``):

- ``svmap`` from 127.0.0.2 still finds nothing (a mapped source is checked
  against the IPv4 entries of the allow-list), from 127.0.0.1 and from ::1
  it finds ``offhook`` and no version;
- ``svwar`` finds nothing over either family, and the node's answers are the
  same over IPv6 as over IPv4 (from ::1, the only IPv6 loopback address, a
  few names only: each wrong answer is a failed login of that one source);
  every answer's Via carries ``received`` with the source in its plain form
  (``127.0.8.x``, ``::1``; RFC 3261 §18.2.1, never ``::ffff:127.0.8.x``);
- two ``svcrack`` runs at once, one per family, are throttled and blocked
  each on its own (two blocks: ``127.0.0.1``, and ``::/64``, the failed-login
  guard's unit for IPv6), the node's log names the IPv4 attacker in its
  plain form and never writes ``::ffff:``, and alice's phone from 127.0.0.8
  (also arriving mapped) still registers: IPv4 sources on the dual-stack
  socket are told apart by their address.

The tools write their own IPv6 Via from the address they bind (``-b ::1``)
or are given (``-x``); they write it without brackets (``Via: SIP/2.0/UDP
::1:5060``), which RFC 3261 §25.1 does not allow and the node answers 400
(``bad Via host``), so the IPv6 runs pass ``-x [::1]``, as an attacker who
reads the 400 would.

Under ``CI=true`` a missing tool is a failure, not a skip.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from interop.peers import in_ci
from offhook.sip.auth import parse_digest
from offhook.sip.message import SipResponse
from support.attack import Probe
from support.ports import HOST, HOST6, free_port
from support.server import OffhookServer, device, plan_of

PASSWORDS = {"alice": "alice-Secret-1", "bob": "bob-Secret-2", "carol": "carol-Secret-3"}
DNS = {"alice": "1001", "bob": "1002", "carol": "1003"}
PLAN = plan_of([device(name, PASSWORDS[name], DNS[name]) for name in DNS])
FAKE = ["admin", "operator", "1009", "nobody"]
TOOL_TIMEOUT = 120.0


@dataclass(frozen=True)
class Family:
    """How the tools and probes reach the node over one IP family."""

    name: str
    host: str  # the node's loopback address, and the probes' source
    flags: tuple[str, ...]  # svmap/svwar/svcrack options for this family


IPV4 = Family("ipv4", HOST, ())
# -x: the Via the tools write; theirs would be the unbracketed "::1:port" (see above).
IPV6 = Family("ipv6", HOST6, ("-6", "-x", f"[{HOST6}]"))

# Per listener setup: the [sip] settings, and the families the tools use.
SETUPS: dict[str, tuple[dict[str, Any], tuple[Family, ...]]] = {
    "ipv4": ({}, (IPV4,)),
    "dual-stack": ({"listen": "::"}, (IPV4, IPV6)),
}
# From ::1 (one source) the enumeration check asks these only: two failed logins
# each, below the default throttle_after (10).
IPV6_NAMES = ["alice", "1001", "admin", "1009"]


@dataclass(frozen=True)
class Bed:
    """A running node and the families the tools reach it over."""

    server: OffhookServer
    families: tuple[Family, ...]


def tool(name: str) -> str:
    """The path of a SIPVicious command; skip without it (fail under CI=true)."""
    path = shutil.which(name)
    if path is not None:
        return path
    reason = f"{name} not installed (pip install sipvicious; scripts/install-deps.sh does)"
    if in_ci():
        pytest.fail(f"CI=true: {reason}", pytrace=False)
    pytest.skip(reason)
    raise AssertionError("unreachable")


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # A fresh source port per run: answers the node still sends to an earlier
    # run (held back by throttling) must not reach this one, whose parsers take
    # any datagram on their port for an answer to their own probes.
    argv = [*argv[:1], "-P", str(free_port()), *argv[1:]]
    proc = subprocess.run(
        argv,
        cwd=cwd,  # svwar/svcrack keep session files under ~/.sipvicious unless -s
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT,
        check=False,
    )
    print(f"$ {' '.join(argv)}  -> exit {proc.returncode}\n{proc.stdout}{proc.stderr}")
    return proc


def no_mapped_addresses(server: OffhookServer, status: Any) -> None:
    """IPv4 sources of a dual-stack socket are plain IPv4 in the log and the status."""
    assert "::ffff:" not in server.log(), server.log_tail()
    assert "::ffff:" not in json.dumps(status), status


def via_received(resp: SipResponse) -> str | None:
    m = re.search(r";\s*received=([^;,\s]+)", resp.headers.get("Via") or "")
    return m.group(1) if m else None


@pytest.fixture(scope="module", params=list(SETUPS))
def node(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    sip, families = SETUPS[request.param]
    allow = ["127.0.0.1/32", "127.0.8.0/24"] + (["::1/128"] if IPV6 in families else [])
    server = OffhookServer(
        tmp_path_factory.mktemp("sipvicious"),
        PLAN,
        extra_config={"sip": {**sip, "allow": allow}},
    )
    server.start()
    try:
        yield Bed(server, families)
    finally:
        server.stop()


# --------------------------------------------------------------------------
# svmap


def test_svmap_sees_only_what_the_allow_list_allows(node: Bed, tmp_path: Path) -> None:
    svmap = tool("sipvicious_svmap")
    server = node.server
    before = server.status()["counters"]["rejections"].get("sip", {}).get("acl", 0)
    outside = run([svmap, "-b", "127.0.0.2", "-p", str(server.sip_port), HOST], tmp_path)
    out = outside.stdout + outside.stderr
    assert "found nothing" in out and str(server.sip_port) not in out
    status = server.status()
    after = status["counters"]["rejections"].get("sip", {}).get("acl", 0)
    assert after > before  # refused before parsing, and counted

    for family in node.families:
        address = f"{family.host}:{server.sip_port}"
        inside = run(
            [svmap, *family.flags, "-b", family.host, "-p", str(server.sip_port), family.host],
            tmp_path,
        )
        rows = [line for line in inside.stdout.splitlines() if address in line]
        assert len(rows) == 1, (family.name, inside.stdout)
        cells = [c.strip() for c in rows[0].strip().strip("|").split("|")]
        assert cells == [address, "offhook"], cells  # no version disclosed
    no_mapped_addresses(server, status)


# --------------------------------------------------------------------------
# svwar


@pytest.mark.parametrize("method", ["REGISTER", "INVITE", "OPTIONS"])
def test_svwar_finds_no_extension(node: Bed, tmp_path: Path, method: str) -> None:
    svwar = tool("sipvicious_svwar")
    words = tmp_path / "names.txt"
    words.write_text("\n".join([*DNS, *DNS.values(), *FAKE]) + "\n")
    port = str(node.server.sip_port)
    for family in node.families:
        base = [svwar, *family.flags, "-b", family.host, "-p", port, "-m", method, "--force"]
        for scan in (["-e", "1000-1010"], ["-d", str(words)]):
            proc = run([*base, *scan, family.host], tmp_path)
            out = proc.stdout + proc.stderr
            assert proc.returncode != 40, out  # svwar exits 40 when it found something
            assert "found nothing" in out, out
            for name in [*DNS, *DNS.values()]:
                assert f"'{name}' exists" not in out and f"| {name} " not in out, out


def fingerprint(resp: SipResponse) -> tuple[Any, ...]:
    """What an enumerator can compare: everything but the random parts."""
    challenge = resp.headers.get("WWW-Authenticate") or resp.headers.get("Proxy-Authenticate")
    params: dict[str, str] = parse_digest(challenge)[1] if challenge else {}
    return (
        resp.status,
        resp.reason,
        tuple(name.lower() for name, _ in resp.headers),
        tuple(sorted((k, v) for k, v in params.items() if k != "nonce")),
        resp.body,
    )


def test_answers_do_not_tell_users_apart(node: Bed) -> None:
    """REGISTER and INVITE, without and with wrong credentials, OPTIONS: one answer for all.

    Each name is asked from its own address (127.0.8.x), so that no source
    collects enough failures to be throttled: this is about the answers.
    Over IPv6 (one source, ::1) a few names are asked, and must get the same
    answers as over IPv4.
    """
    server = node.server
    names = [*DNS, *DNS.values(), *FAKE, *(str(n) for n in range(1000, 1011))]
    asks = [(f"127.0.8.{i + 1}", HOST, name) for i, name in enumerate(names)]
    if IPV6 in node.families:
        asks += [(HOST6, HOST6, name) for name in IPV6_NAMES]
    seen: dict[tuple[str, bool], set[tuple[Any, ...]]] = {}
    for source, target, name in asks:
        with Probe((target, server.sip_port), server.realm, source=source) as probe:
            for method in ("REGISTER", "INVITE", "OPTIONS"):
                first = probe.ask(method, name)
                assert via_received(first) == source, first.headers.get("Via")
                seen.setdefault((method, False), set()).add(fingerprint(first))
                if method == "OPTIONS":
                    continue
                challenge = first.headers.get(
                    "WWW-Authenticate" if method == "REGISTER" else "Proxy-Authenticate"
                )
                assert challenge, (method, name, first.status)
                wrong = probe.ask(method, name, password="not-it", challenge=challenge)
                assert via_received(wrong) == source, wrong.headers.get("Via")
                seen.setdefault((method, True), set()).add(fingerprint(wrong))
    for key, prints in seen.items():
        assert len(prints) == 1, (key, prints)
    status = {key: next(iter(prints))[0] for key, prints in seen.items()}
    assert status[("REGISTER", False)] == 401 and status[("INVITE", False)] == 407
    # A wrong answer to the challenge: refused, whoever the name is.
    assert status[("REGISTER", True)] == status[("INVITE", True)] == 403


# --------------------------------------------------------------------------
# svcrack

CRACK_AUTH = {
    "throttle_after": 3,
    "throttle_delay": 0.25,
    "max_delay": 2.0,
    "block_after": 8,
    "block_for": 600.0,
}


# The failed-login guard's unit per family: an IPv4 address, an IPv6 /64.
BLOCKED_AS = {"ipv4": HOST, "ipv6": "::/64"}


@pytest.mark.parametrize("setup", list(SETUPS))
def test_svcrack_is_throttled_blocked_and_cracks_nothing(tmp_path: Path, setup: str) -> None:
    """One svcrack per family, at once on the dual-stack node: each source is blocked."""
    svcrack = tool("sipvicious_svcrack")
    words = tmp_path / "words.txt"
    guesses = ["1234", "password", "alice", "1001", "secret", "alice-Secret"]
    guesses += [f"alice-Secret-{n}" for n in range(2, 200)]  # never the real one (-1)
    assert PASSWORDS["alice"] not in guesses
    words.write_text("\n".join(guesses) + "\n")
    sip, families = SETUPS[setup]
    config: dict[str, dict[str, Any]] = {"auth": CRACK_AUTH}
    if sip:
        config["sip"] = {**sip, "allow": ["127.0.0.0/8", "::1/128"]}
    with OffhookServer(tmp_path, PLAN, extra_config=config) as server:
        argvs = [
            [
                svcrack, *family.flags,
                "-p", str(server.sip_port),
                "-u", "alice",
                "-d", str(words),
                "--maximumtime", "5",  # give up 5 s after the last answer
                family.host,
            ]
            for family in families
        ]  # fmt: skip
        with ThreadPoolExecutor(len(argvs)) as pool:
            procs = list(pool.map(lambda argv: run(argv, tmp_path), argvs))
        for proc in procs:
            out = proc.stdout + proc.stderr
            assert proc.returncode != 40, out  # svcrack exits 40 when it cracked a password
            assert "The password for" not in out and "found nothing" in out, out

        status = server.status()
        auth = status["auth"]
        print(f"status auth: {auth}; sip counters: {status['counters']['sip']}")
        n = len(families)  # one attacking source per family
        assert auth["blocks"] == n and auth["blocked_now"] == n
        assert auth["tracked_sources"] == n
        block_after = CRACK_AUTH["block_after"]
        assert n * block_after <= auth["failures"] < n * (block_after + 3)
        assert auth["throttled"] > 0 and auth["dropped_throttled"] > 0
        assert auth["dropped_blocked"] > 0  # svcrack went on sending into the block
        assert status["counters"]["sip"]["blocked_requests"] > 0
        log = server.log()
        for family in families:
            assert f"auth: source {BLOCKED_AS[family.name]} blocked" in log, server.log_tail()
        no_mapped_addresses(server, status)

        # alice's own phone, from another address, is not locked out.
        with Probe((HOST, server.sip_port), server.realm, source="127.0.0.8") as phone:
            ok = phone.register("alice", PASSWORDS["alice"])
        assert ok.status == 200, (ok.status, ok.reason)
