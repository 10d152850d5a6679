"""The self-care API and portal against a running node: only one's own phones and lines.

A real ``offhook serve`` (``support.server.OffhookServer``) and the web app on
its database and control endpoint: forward all goes to the node as the
phone's CFwdALL would (control op ``forward_all``) and the node's own
``coverage`` answer shows it; forward busy / no answer and speed dials
change the plan (and the node reloads it); DND; recent calls from the CDRs;
another user's line or device is 403; the node down is 503.
"""

from __future__ import annotations

import contextlib
import html
import re
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from offhook.config import load_settings
from offhook.db.cdr import CdrRow
from offhook.db.plan_edit import PlanEditor
from offhook.web.app import create_app
from offhook.web.deps import WebContext
from support.server import OffhookServer, device
from web.rig import PASSWORD, client_for

SEP = "SEP001122334455"


def self_plan() -> dict[str, Any]:
    return {
        "devices": [
            device("alice", "alice-Secret-1", "1001"),
            device("bob", "bob-Secret-2", "1002"),
            device("carol", "carol-Secret-3", "1003"),
            {
                "name": SEP,
                "protocol": "sccp",
                "model": "7960",
                "lines": [{"dn": "1011", "display": "Alice desk"}],
                "speed_dials": [{"number": "1002", "label": "Bob"}],
            },
        ]
    }


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OffhookServer]:
    server = OffhookServer(tmp_path_factory.mktemp("self"), self_plan())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def app(node: OffhookServer) -> Iterator[FastAPI]:
    settings = load_settings(node.config_path)
    settings = settings.model_copy(
        update={
            "web": settings.web.model_copy(
                update={
                    "argon2_time_cost": 1,
                    "argon2_memory_kib": 8,
                    "argon2_parallelism": 1,
                    "secure_cookies": "never",
                    "hosts": ["testserver"],
                }
            )
        }
    )
    web = create_app(settings)
    context: WebContext = web.state.ctx
    for name, role, devices in (
        ("anna", "user", ("alice", SEP)),
        ("bert", "user", ("bob",)),
        ("ro", "read-only", ()),
    ):
        if context.users.get(name) is None:
            context.users.add(name, role, PASSWORD, devices=devices)
    yield web
    # Back to the plan's coverage for the next test.
    for dev in ("alice", "bob", SEP):
        node.control("dnd", device=dev, enabled=False)
    node.control("forward_all", device="alice", dn="1001", destination=None)


@contextlib.asynccontextmanager
async def session(app: FastAPI, user: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client logged in as ``user`` that sends its CSRF token."""
    async with client_for(app) as c:
        answer = await c.post("/api/v1/login", json={"username": user, "password": PASSWORD})
        assert answer.status_code == 200, answer.text
        c.headers["X-CSRF-Token"] = answer.json()["csrf_token"]
        yield c


@pytest.fixture
async def anna(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with session(app, "anna") as c:
        yield c


def plan_version(node: OffhookServer) -> int:
    return int(node.control("status")["plan_version"])


def wait_plan_version(node: OffhookServer, above: int) -> None:
    deadline = time.monotonic() + 15
    while plan_version(node) <= above:
        assert time.monotonic() < deadline, "the node did not reload the plan"
        time.sleep(0.1)


async def test_only_ones_own_devices_are_listed(anna: httpx.AsyncClient) -> None:
    answer = await anna.get("/api/v1/me/devices")
    assert answer.status_code == 200
    items = answer.json()["items"]
    assert [d["name"] for d in items] == ["alice", SEP]
    assert all("password" not in d for d in items)
    assert items[1]["speed_dials"] == [{"number": "1002", "label": "Bob"}]


async def test_forward_all_goes_to_the_node_like_the_phones_key(
    anna: httpx.AsyncClient, node: OffhookServer, app: FastAPI
) -> None:
    answer = await anna.put("/api/v1/me/lines/1001/forward_all", json={"destination": "1003"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"device": "alice", "dn": "1001", "forward_all": "1003"}
    live = node.control("coverage", device="alice")
    assert [ln["forward_all"] for ln in live["lines"]] == ["1003"]
    coverage = (await anna.get("/api/v1/me/coverage")).json()["items"]
    assert coverage[0]["device"] == "alice"
    assert coverage[0]["lines"][0]["forward_all"] == "1003"
    assert coverage[0]["lines"][0]["mwi"] == {"waiting": False, "new": 0, "old": 0}
    entries = app.state.ctx.audit.search(actor="anna")
    assert (entries[0].action, entries[0].object_key) == ("forward_all", "alice/1001")
    to_self = await anna.put("/api/v1/me/lines/1001/forward_all", json={"destination": "1001"})
    assert to_self.status_code == 422
    assert "itself" in to_self.json()["detail"][0]["msg"]
    off = await anna.put("/api/v1/me/lines/1001/forward_all", json={"destination": ""})
    assert off.status_code == 200
    assert node.control("coverage", device="alice")["lines"][0]["forward_all"] in (None, "")


async def test_another_users_line_or_device_is_refused(
    anna: httpx.AsyncClient, node: OffhookServer, app: FastAPI
) -> None:
    for method, path, body in (
        ("PUT", "/api/v1/me/lines/1002/forward_all", {"destination": "1003"}),
        ("PUT", "/api/v1/me/lines/1001/forward_all", {"destination": "1003", "device": "bob"}),
        ("PUT", "/api/v1/me/lines/1002/forwarding", {"forward_busy": "1003"}),
        ("PUT", "/api/v1/me/dnd", {"enabled": True, "device": "bob"}),
        ("PUT", "/api/v1/me/devices/bob/speed_dials", {"speed_dials": []}),
    ):
        answer = await anna.request(method, path, json=body)
        assert answer.status_code == 403, (path, answer.text)
    assert node.control("coverage", device="bob")["lines"][0]["forward_all"] is None
    assert node.control("coverage", device="bob")["dnd"] is False
    async with session(app, "ro") as ro:
        assert (await ro.get("/api/v1/me/devices")).status_code == 403


async def test_forward_busy_and_no_answer_change_the_plan(
    anna: httpx.AsyncClient, node: OffhookServer, app: FastAPI
) -> None:
    before = plan_version(node)
    answer = await anna.put(
        "/api/v1/me/lines/1001/forwarding",
        json={"forward_busy": "1003", "forward_no_answer": "1002", "cfna_timer": 15},
    )
    assert answer.status_code == 200, answer.text
    context: WebContext = app.state.ctx
    view, _ = PlanEditor(context.engine, context.settings.sip.realm).get("devices", "alice")
    line = view["lines"][0]
    assert line["forward_busy"] == {"destination": "1003", "css": ""}
    assert line["forward_no_answer"] == {"destination": "1002", "css": ""}
    assert line["cfna_timer"] == 15
    wait_plan_version(node, before)
    bad = await anna.put("/api/v1/me/lines/1001/forwarding", json={"forward_busy": "12x"})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"].startswith("forward_busy")
    cleared = await anna.put(
        "/api/v1/me/lines/1001/forwarding", json={"forward_busy": "", "forward_no_answer": ""}
    )
    assert cleared.status_code == 200
    assert "forward_busy" not in cleared.json() or cleared.json()["forward_busy"] is None
    assert cleared.json()["cfna_timer"] == 15  # a field left out is unchanged
    default = await anna.put("/api/v1/me/lines/1001/forwarding", json={"cfna_timer": None})
    assert default.status_code == 200 and default.json()["cfna_timer"] is None


async def test_the_self_care_api_is_documented(anna: httpx.AsyncClient) -> None:
    doc = (await anna.get("/api/v1/openapi.json")).json()
    ops = [
        (path, op)
        for path, item in doc["paths"].items()
        if path.startswith("/api/v1/me/")
        for op in item.values()
    ]
    assert len(ops) == 7
    for path, op in ops:
        # A written summary, not the one FastAPI makes of the function name.
        assert op["summary"] and not op["summary"].startswith(("Get ", "Put ")), path
        assert {"401", "403", "429"} <= set(op["responses"]), path
        ok = op["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok.get("$ref") or ok.get("properties"), path
    devices = doc["paths"]["/api/v1/me/devices"]["get"]["responses"]["200"]
    item = devices["content"]["application/json"]["schema"]["properties"]["items"]["items"]
    assert "lines" in item["properties"] and "password" not in item["properties"]
    line = doc["paths"]["/api/v1/me/lines/{dn}/forwarding"]["put"]["responses"]["200"]
    assert "forward_busy" in line["content"]["application/json"]["schema"]["properties"]


async def test_dnd_and_speed_dials(anna: httpx.AsyncClient, node: OffhookServer) -> None:
    answer = await anna.put("/api/v1/me/dnd", json={"enabled": True})
    assert answer.json() == {"dnd": True, "devices": ["alice", SEP]}
    assert node.control("coverage", device="alice")["dnd"] is True
    assert node.control("coverage", device=SEP)["dnd"] is True
    dials = [{"number": "1003", "label": "Carol"}, {"number": "1002", "label": "Bob"}]
    saved = await anna.put(f"/api/v1/me/devices/{SEP}/speed_dials", json={"speed_dials": dials})
    assert saved.status_code == 200, saved.text
    assert saved.json()["speed_dials"] == dials
    sip = await anna.put("/api/v1/me/devices/alice/speed_dials", json={"speed_dials": dials})
    assert sip.status_code == 422
    assert "sccp" in str(sip.json()["detail"])


async def test_recent_calls_are_those_of_ones_numbers(
    anna: httpx.AsyncClient, app: FastAPI
) -> None:
    now = datetime.now(UTC)

    def row(call_id: str, calling: str, called: str, minutes: int) -> CdrRow:
        start = now - timedelta(minutes=minutes)
        return CdrRow(
            call_id=call_id,
            calling=calling,
            called=called,
            original_called=called,
            calling_device="",
            called_device="",
            start=start,
            answer=start,
            end=start + timedelta(seconds=30),
            duration=30,
            cause=16,
            cause_text="normal clearing",
            node="test",
        )

    app.state.ctx.cdrs.add_many(
        [row("c1", "1001", "1003", 5), row("c2", "1002", "1011", 3), row("c3", "1002", "1003", 1)]
    )
    calls = (await anna.get("/api/v1/me/calls")).json()["items"]
    assert [(c["calling"], c["called"], c["direction"]) for c in calls] == [
        ("1002", "1011", "in"),
        ("1001", "1003", "out"),
    ]
    # The portal says which calls were missed, not answered, or refused and why.
    missed = replace(row("c4", "1003", "1001", 0), answer=None, duration=0)
    unanswered = replace(row("c5", "1001", "1003", 0), answer=None, duration=0, cause=19)
    busy = replace(
        row("c6", "1001", "1002", 0), answer=None, duration=0, cause=17, cause_text="user busy"
    )
    app.state.ctx.cdrs.add_many([missed, unanswered, busy])
    page = (await anna.get("/self")).text
    results = re.findall(r'<td class="result">([^<]*)</td>', page)
    expected = ["missed", "not answered", "user busy", "answered", "answered"]
    assert sorted(results) == sorted(expected)


async def test_the_portal_page_sets_forward_all_through_its_form(
    anna: httpx.AsyncClient, node: OffhookServer
) -> None:
    page = await anna.get("/self")
    assert page.status_code == 200
    assert 'id="cfa-alice-1001"' in page.text and "Not forwarding" in page.text
    assert 'id="sd-SEP001122334455"' in page.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf is not None
    answer = await anna.post(
        "/self/lines/1001/forward_all",
        data={"csrf_token": csrf.group(1), "device": "alice", "destination": "1003"},
    )
    assert answer.status_code == 303
    assert node.control("coverage", device="alice")["lines"][0]["forward_all"] == "1003"
    page = await anna.get("/self?saved=forward+all")
    assert "Forwarding all calls to 1003" in page.text
    refused = await anna.post(
        "/self/lines/1001/forwarding",
        data={"csrf_token": csrf.group(1), "device": "alice", "forward_busy": "12x"},
    )
    assert refused.status_code == 422
    block = re.search(r'id="fwd-alice-1001".*?</form>', refused.text, re.S)
    assert block is not None and "not a dialable number" in block.group(0)
    assert 'name="forward_busy" value="12x"' in block.group(0)  # what was typed stays
    bad_timer = await anna.post(
        "/self/lines/1001/forwarding",
        data={
            "csrf_token": csrf.group(1),
            "device": "alice",
            "forward_busy": "1002",
            "cfna_timer": "soon",
        },
    )
    block = re.search(r'id="fwd-alice-1001".*?</form>', bad_timer.text, re.S)
    assert block is not None and "'soon' is not a number" in html.unescape(block.group(0))
    assert 'name="forward_busy" value="1002"' in block.group(0)
    assert 'name="cfna_timer" value="soon"' in block.group(0)
    itself = await anna.post(
        "/self/lines/1001/forward_all",
        data={"csrf_token": csrf.group(1), "device": "alice", "destination": "1001"},
    )
    assert itself.status_code == 422
    block = re.search(r'id="cfa-alice-1001".*?</form>', itself.text, re.S)
    assert block is not None and "cannot forward to itself" in block.group(0)
    assert 'value="1001"' in block.group(0) and 'class="error"' in block.group(0)
    # Still forwarding to 1003 on the node: a refused change changes nothing.
    assert node.control("coverage", device="alice")["lines"][0]["forward_all"] == "1003"
    dials = await anna.post(
        f"/self/devices/{SEP}/speed_dials",
        data={
            "csrf_token": csrf.group(1),
            "speed_dials[0].number": "1002",
            "speed_dials[0].label": "Bob",
            "speed_dials[1].number": "",
            "speed_dials[2].number": "12x",
            "speed_dials[2].label": "Typo",
        },
    )
    assert dials.status_code == 422
    block = re.search(rf'id="sd-{SEP}".*?</form>', dials.text, re.S)
    assert block is not None
    assert 'name="speed_dials[1].number" value="12x"' in block.group(0)
    assert 'name="speed_dials[1].label" value="Typo"' in block.group(0)


async def test_with_the_node_down_live_state_is_503_and_the_page_says_so(
    web_app: FastAPI, web_users: dict[str, str]
) -> None:
    async with session(web_app, "user") as c:
        assert (await c.get("/api/v1/me/coverage")).status_code == 503
        down = await c.put("/api/v1/me/lines/1001/forward_all", json={"destination": "1003"})
        assert down.status_code == 503
        assert (await c.get("/api/v1/me/devices")).json()["items"][0]["name"] == "alice"
        page = await c.get("/self")
        assert page.status_code == 200 and "does not answer" in page.text
