"""The operations API: the dialed number analyzer (the same answer as ``offhook
dna --json``), call record search, CSV and per-minute counts over rows written
by ``CdrRepository``, and the live routes: 503 while the node is down, the
running node's registrations, calls and trunks when it is up."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy.engine import Engine

from integration.sipclient import HOST, SipClient, sdp, tag
from offhook.db.cdr import CDR_FIELDS, CdrRow
from offhook.web.deps import WebContext
from support.server import SRC
from web.live_node import live_node


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- the dialed number analyzer ---------------------------------------------------


def offhook_dna(db_path: str, device: str, digits: str, tmp_path: Path) -> object:
    config = tmp_path / "offhook.toml"
    config.write_text(f'[database]\nurl = "{db_path}"\n')
    out = subprocess.run(
        [sys.executable, "-m", "offhook", "dna", "--from", device, digits, "--json",
         "--config", str(config)],
        capture_output=True, text=True, check=True, timeout=60,
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    return json.loads(out.stdout)


async def test_analyzer_answers_as_offhook_dna(
    client: httpx.AsyncClient, tokens: dict[str, str], web_ctx: WebContext, tmp_path: Path
) -> None:
    h = bearer(tokens["read-only"])
    db = web_ctx.settings.database.url
    for digits, outcome in (("1002", "dn"), ("5000", "meetme"), ("1500", "hunt"), ("99", None)):
        answer = await client.get(
            "/api/v1/analyze", params={"device": "alice", "digits": digits}, headers=h
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        text = body.pop("text")
        assert text.startswith(f"dialed {digits} from alice")
        assert body == offhook_dna(db, "alice", digits, tmp_path)
        if outcome is not None:
            assert body["outcome"] == outcome
    assert body["outcome"] in ("unknown", "incomplete") and body["cause"]
    bob = (
        await client.get("/api/v1/analyze", params={"device": "alice", "digits": "1002"}, headers=h)
    ).json()
    assert bob["dn"]["devices"] == ["bob"]
    assert "result: directory number 1002" in bob["text"]
    code = await client.get(
        "/api/v1/analyze", params={"device": "alice", "digits": "*78"}, headers=h
    )
    assert code.json()["feature_code"] == "dnd_on"
    assert "feature code dnd_on" in code.json()["text"]
    unknown = await client.get(
        "/api/v1/analyze", params={"device": "nobody", "digits": "1002"}, headers=h
    )
    assert unknown.status_code == 404
    bad = await client.get(
        "/api/v1/analyze", params={"device": "alice", "digits": "10;02"}, headers=h
    )
    assert bad.status_code == 422
    refused = await client.get(
        "/api/v1/analyze",
        params={"device": "alice", "digits": "1002"},
        headers=bearer(tokens["user"]),
    )
    assert refused.status_code == 403


# -- call records ------------------------------------------------------------------


def cdr(
    now: datetime, n: int, calling: str, called: str, cause: int, minutes_ago: int, **extra: str
) -> CdrRow:
    start = now - timedelta(minutes=minutes_ago)
    return CdrRow(
        call_id=f"call-{n}",
        calling=calling,
        called=called,
        original_called=extra.get("original_called", called),
        calling_device="alice",
        called_device="bob",
        start=start,
        answer=start + timedelta(seconds=2) if cause == 16 else None,
        end=start + timedelta(seconds=30),
        duration=28 if cause == 16 else 0,
        cause=cause,
        cause_text="normal call clearing" if cause == 16 else "user busy",
        node="test",
    )


def add_cdrs(web_ctx: WebContext) -> datetime:
    """Five calls, from 20 minutes to 3 h 10 min before now (returned): the
    times are taken when the test runs, not when the module was imported."""
    now = datetime.now(UTC).replace(microsecond=0)
    web_ctx.cdrs.add_many(
        [
            cdr(now, 1, "1001", "1002", 16, 50),
            cdr(now, 2, "1002", "1003", 17, 40),
            cdr(now, 3, "1003", "1001", 16, 30, original_called="1500"),
            cdr(now, 4, '=HYPERLINK("x")', "1001", 16, 20),
            cdr(now, 5, "+15551234", "1002", 17, 3 * 60 + 10),
        ]
    )
    return now


async def test_cdr_search(
    client: httpx.AsyncClient, tokens: dict[str, str], web_ctx: WebContext, web_engine: Engine
) -> None:
    now = add_cdrs(web_ctx)
    h = bearer(tokens["read-only"])

    async def ids(**params: object) -> tuple[list[str], int]:
        answer = await client.get("/api/v1/cdrs", params=params, headers=h)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        return [r["call_id"] for r in body["items"]], body["total"]

    assert await ids() == (["call-4", "call-3", "call-2", "call-1", "call-5"], 5)
    assert await ids(number="1001") == (["call-4", "call-3", "call-1"], 3)
    assert await ids(number="1500") == (["call-3"], 1)  # originally called
    assert await ids(cause=17) == (["call-2", "call-5"], 2)
    assert await ids(device="bob") == (["call-4", "call-3", "call-2", "call-1", "call-5"], 5)
    assert await ids(device="carol") == ([], 0)
    csv_answer = await client.get("/api/v1/cdrs.csv", params={"device": "carol"}, headers=h)
    assert csv_answer.text.count("\r\n") == 1  # the header only
    since = (now - timedelta(minutes=45)).isoformat()
    until = (now - timedelta(minutes=25)).isoformat()
    assert await ids(since=since, until=until) == (["call-3", "call-2"], 2)
    assert await ids(limit=2, offset=1) == (["call-3", "call-2"], 5)
    row = (await client.get("/api/v1/cdrs", params={"limit": 1}, headers=h)).json()["items"][0]
    assert list(row) == list(CDR_FIELDS)
    doc = (await client.get("/api/v1/openapi.json", headers=h)).json()
    ok = doc["paths"]["/api/v1/cdrs"]["get"]["responses"]["200"]["content"]["application/json"]
    fields = ok["schema"]["properties"]["items"]["items"]["properties"]
    assert fields["duration"]["type"] == "integer" and fields["start"]["format"] == "date-time"
    assert all(fields[name] for name in CDR_FIELDS)  # every field typed
    assert datetime.fromisoformat(row["start"]) == now - timedelta(minutes=20)
    assert (await client.get("/api/v1/cdrs", params={"cause": 999}, headers=h)).status_code == 422
    assert (await client.get("/api/v1/cdrs", headers=bearer(tokens["user"]))).status_code == 403


async def test_cdr_csv(
    client: httpx.AsyncClient, tokens: dict[str, str], web_ctx: WebContext
) -> None:
    add_cdrs(web_ctx)
    answer = await client.get(
        "/api/v1/cdrs.csv", params={"cause": 16}, headers=bearer(tokens["phone-admin"])
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(answer.text)))
    assert rows[0] == list(CDR_FIELDS)
    by_id = {r[0]: dict(zip(CDR_FIELDS, r, strict=True)) for r in rows[1:]}
    assert sorted(by_id) == ["call-1", "call-3", "call-4"]
    assert by_id["call-3"]["original_called"] == "1500"
    assert by_id["call-1"]["duration"] == "28"
    # A caller-chosen number is never a spreadsheet formula.
    assert by_id["call-4"]["calling"] == '\'=HYPERLINK("x")'
    everything = await client.get("/api/v1/cdrs.csv", headers=bearer(tokens["phone-admin"]))
    plus = [r for r in csv.reader(io.StringIO(everything.text)) if r[0] == "call-5"]
    assert plus[0][1] == "+15551234"


async def test_cdrs_per_minute(
    client: httpx.AsyncClient, tokens: dict[str, str], web_ctx: WebContext
) -> None:
    add_cdrs(web_ctx)
    h = bearer(tokens["dialplan-admin"])
    hour = (await client.get("/api/v1/cdrs/per_minute", params={"hours": 1}, headers=h)).json()
    assert len(hour["minutes"]) in (59, 60)
    assert sum(m["calls"] for m in hour["minutes"]) == 4
    four = (await client.get("/api/v1/cdrs/per_minute", params={"hours": 4}, headers=h)).json()
    assert sum(m["calls"] for m in four["minutes"]) == 5
    week = await client.get("/api/v1/cdrs/per_minute", params={"hours": 168}, headers=h)
    assert week.status_code == 200 and len(week.json()["minutes"]) <= 168 * 60
    assert (
        await client.get("/api/v1/cdrs/per_minute", params={"hours": 1000}, headers=h)
    ).status_code == 422


# -- the live node ------------------------------------------------------------------

LIVE = ("/api/v1/status", "/api/v1/registrations", "/api/v1/calls", "/api/v1/trunks/state")


async def test_live_routes_answer_503_while_the_node_is_down(
    client: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    for path in LIVE:
        answer = await client.get(path, headers=bearer(tokens["read-only"]))
        assert answer.status_code == 503, path
        assert answer.json() == {"detail": "node unavailable"}
        assert (await client.get(path, headers=bearer(tokens["user"]))).status_code == 403
    # The rest works without the node.
    assert (
        await client.get("/api/v1/devices", headers=bearer(tokens["read-only"]))
    ).status_code == 200


async def test_live_state_of_a_running_node(tmp_path: Path) -> None:
    async with live_node(tmp_path) as node:
        status = await node.status()
        assert status["plan_version"] >= 1 and "registrations" in status
        alice = SipClient((HOST, node.server.sip_port), "alice", "alice-Secret-1",
                          realm=node.server.realm)  # fmt: skip
        bob = SipClient((HOST, node.server.sip_port), "bob", "bob-Secret-2",
                        realm=node.server.realm)  # fmt: skip
        await alice.start()
        await bob.start()
        try:
            for ua in (alice, bob):
                _, ok = await ua.register(expires=120)
                assert ok.status == 200
            regs = (await node.client.get("/api/v1/registrations", headers=node.headers)).json()
            assert sorted(r["device"] for r in regs["sip"]) == ["alice", "bob"]
            assert regs["registrations"] == regs["sip"]  # no SCCP phone here
            assert all(r["protocol"] == "sip" and r["expires_in"] > 0 for r in regs["sip"])
            assert regs["plan_version"] == status["plan_version"]
            only = await node.client.get(
                "/api/v1/registrations", params={"device": "alice"}, headers=node.headers
            )
            assert [r["device"] for r in only.json()["registrations"]] == ["alice"]
            sccp = await node.client.get(
                "/api/v1/registrations", params={"protocol": "sccp"}, headers=node.headers
            )
            assert sccp.json()["registrations"] == [] and sccp.json()["sip"] == []
            bad = await node.client.get(
                "/api/v1/registrations", params={"protocol": "h323"}, headers=node.headers
            )
            assert bad.status_code == 422

            call = await alice.call("1002", body=sdp(40000))
            invite = await bob.recv_request("INVITE")
            bob.answer(invite, 180, to_tag=tag())
            await call.provisional(180)
            calls = (await node.client.get("/api/v1/calls", headers=node.headers)).json()
            assert calls["active_calls"] == 1
            assert (calls["calls"][0]["calling"], calls["calls"][0]["called"]) == ("1001", "1002")

            # A trunk added over the API shows in the node's trunk state once reloaded.
            made = await node.client.post(
                "/api/v1/trunks",
                json={"name": "carrier", "protocol": "sip", "host": "127.0.0.1", "port": 9,
                      "options_ping": 0},
                headers=node.headers,
            )  # fmt: skip
            assert made.status_code == 201, made.text

            async def listed() -> bool:
                answer = await node.client.get("/api/v1/trunks/state", headers=node.headers)
                return [t["name"] for t in answer.json()["trunks"]] == ["carrier"]

            await node.until(listed)
        finally:
            await alice.close()
            await bob.close()
