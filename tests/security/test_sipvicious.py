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

Under ``CI=true`` a missing tool is a failure, not a skip.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from interop.peers import in_ci
from offhook.sip.auth import parse_digest
from offhook.sip.message import SipResponse
from support.attack import Probe
from support.ports import HOST, free_port
from support.server import OffhookServer, device, plan_of

PASSWORDS = {"alice": "alice-Secret-1", "bob": "bob-Secret-2", "carol": "carol-Secret-3"}
DNS = {"alice": "1001", "bob": "1002", "carol": "1003"}
PLAN = plan_of([device(name, PASSWORDS[name], DNS[name]) for name in DNS])
FAKE = ["admin", "operator", "1009", "nobody"]
TOOL_TIMEOUT = 120.0


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


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OffhookServer]:
    server = OffhookServer(
        tmp_path_factory.mktemp("sipvicious"),
        PLAN,
        extra_config={"sip": {"allow": ["127.0.0.1/32", "127.0.8.0/24"]}},
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


# --------------------------------------------------------------------------
# svmap


def test_svmap_sees_only_what_the_allow_list_allows(node: OffhookServer, tmp_path: Path) -> None:
    svmap = tool("sipvicious_svmap")
    before = node.status()["counters"]["rejections"].get("sip", {}).get("acl", 0)
    outside = run([svmap, "-b", "127.0.0.2", "-p", str(node.sip_port), HOST], tmp_path)
    out = outside.stdout + outside.stderr
    assert "found nothing" in out and str(node.sip_port) not in out
    after = node.status()["counters"]["rejections"].get("sip", {}).get("acl", 0)
    assert after > before  # refused before parsing, and counted

    inside = run([svmap, "-b", HOST, "-p", str(node.sip_port), HOST], tmp_path)
    rows = [line for line in inside.stdout.splitlines() if f"{HOST}:{node.sip_port}" in line]
    assert len(rows) == 1, inside.stdout
    cells = [c.strip() for c in rows[0].strip().strip("|").split("|")]
    assert cells == [f"{HOST}:{node.sip_port}", "offhook"], cells  # no version disclosed


# --------------------------------------------------------------------------
# svwar


@pytest.mark.parametrize("method", ["REGISTER", "INVITE", "OPTIONS"])
def test_svwar_finds_no_extension(node: OffhookServer, tmp_path: Path, method: str) -> None:
    svwar = tool("sipvicious_svwar")
    words = tmp_path / "names.txt"
    words.write_text("\n".join([*DNS, *DNS.values(), *FAKE]) + "\n")
    base = [svwar, "-b", HOST, "-p", str(node.sip_port), "-m", method, "--force"]
    for scan in (["-e", "1000-1010"], ["-d", str(words)]):
        proc = run([*base, *scan, HOST], tmp_path)
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


def test_answers_do_not_tell_users_apart(node: OffhookServer) -> None:
    """REGISTER and INVITE, without and with wrong credentials, OPTIONS: one answer for all.

    Each name is asked from its own address (127.0.8.x), so that no source
    collects enough failures to be throttled: this is about the answers.
    """
    names = [*DNS, *DNS.values(), *FAKE, *(str(n) for n in range(1000, 1011))]
    seen: dict[tuple[str, bool], set[tuple[Any, ...]]] = {}
    for i, name in enumerate(names):
        with Probe((HOST, node.sip_port), node.realm, source=f"127.0.8.{i + 1}") as probe:
            for method in ("REGISTER", "INVITE", "OPTIONS"):
                first = probe.ask(method, name)
                seen.setdefault((method, False), set()).add(fingerprint(first))
                if method == "OPTIONS":
                    continue
                challenge = first.headers.get(
                    "WWW-Authenticate" if method == "REGISTER" else "Proxy-Authenticate"
                )
                assert challenge, (method, name, first.status)
                wrong = probe.ask(method, name, password="not-it", challenge=challenge)
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


def test_svcrack_is_throttled_blocked_and_cracks_nothing(tmp_path: Path) -> None:
    svcrack = tool("sipvicious_svcrack")
    words = tmp_path / "words.txt"
    guesses = ["1234", "password", "alice", "1001", "secret", "alice-Secret"]
    guesses += [f"alice-Secret-{n}" for n in range(2, 200)]  # never the real one (-1)
    assert PASSWORDS["alice"] not in guesses
    words.write_text("\n".join(guesses) + "\n")
    with OffhookServer(tmp_path, PLAN, extra_config={"auth": CRACK_AUTH}) as server:
        proc = run(
            [
                svcrack,
                "-p", str(server.sip_port),
                "-u", "alice",
                "-d", str(words),
                "--maximumtime", "5",  # give up 5 s after the last answer
                HOST,
            ],
            tmp_path,
        )  # fmt: skip
        out = proc.stdout + proc.stderr
        assert proc.returncode != 40, out  # svcrack exits 40 when it cracked a password
        assert "The password for" not in out and "found nothing" in out, out

        status = server.status()
        auth = status["auth"]
        print(f"status auth: {auth}; sip counters: {status['counters']['sip']}")
        assert auth["blocks"] == 1 and auth["blocked_now"] == 1
        assert CRACK_AUTH["block_after"] <= auth["failures"] < CRACK_AUTH["block_after"] + 3
        assert auth["throttled"] > 0 and auth["dropped_throttled"] > 0
        assert auth["dropped_blocked"] > 0  # svcrack went on sending into the block
        assert status["counters"]["sip"]["blocked_requests"] > 0

        # alice's own phone, from another address, is not locked out.
        with Probe((HOST, server.sip_port), server.realm, source="127.0.0.8") as phone:
            ok = phone.register("alice", PASSWORDS["alice"])
        assert ok.status == 200, (ok.status, ok.reason)
