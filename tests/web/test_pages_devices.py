"""Device and call routing pages: forms through the plan editor, errors next to the field,
read-only users without edit buttons, escaping, ETag conflicts, refused deletes, the analyzer.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from integration.sipclient import HOST, SipClient
from offhook.db.plan_edit import PlanEditor
from offhook.web import pages_devices, pages_dialplan
from offhook.web.deps import WebContext
from offhook.web.pages_devices import registration_index
from web.live_node import live_node
from web.rig import PASSWORD, client_for

XSS = '<script>alert("owned")</script><img src=x onerror=alert(1)>'


async def as_user(client: httpx.AsyncClient, user: str) -> str:
    """Log in through the form; the session's CSRF token (read from a page)."""
    answer = await client.post("/login", data={"username": user, "password": PASSWORD})
    assert answer.status_code == 303, answer.text
    page = await client.get("/devices" if user != "user" else "/self")
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match is not None
    return match.group(1)


def field_error(page: str, name: str) -> str:
    """The error shown in the field block of input ``name`` ("" when none)."""
    block = re.search(
        rf'<div class="field invalid">\s*<label for="f-{re.escape(name)}">.*?</div>', page, re.S
    )
    if block is None:
        return ""
    msg = re.search(r'<span class="error"[^>]*>(.*?)</span>', block.group(0), re.S)
    return html.unescape(msg.group(1)) if msg else ""


async def test_adding_a_sip_phone_with_a_line(
    client: httpx.AsyncClient, web_users: dict[str, str], web_ctx: WebContext
) -> None:
    csrf = await as_user(client, "phone-admin")
    form = await client.get("/devices/new")
    assert form.status_code == 200
    for name in ("name", "protocol", "password", "lines[0].dn", "lines[0].display"):
        assert f'name="{name}"' in form.text, name
    # A new phone has no stored password to keep.
    assert "a SIP phone needs one" in form.text and "keep the stored one" not in form.text
    assert (await client.get("/dialplan/trunks/new")).status_code == 403  # a phone admin
    answer = await client.post(
        "/devices/new",
        data={
            "csrf_token": csrf,
            "name": "dave",
            "protocol": "sip",
            "password": "dave-Secret-4",
            "description": "Reception",
            "lines[0].dn": "1004",
            "lines[0].display": "Dave Brown",
            "lines[1].dn": "",
            "dnd_option": "ringer-off",
            "max_calls": "4",
        },
    )
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/devices?saved=dave"
    listing = await client.get("/devices?saved=dave")
    row = re.search(r'<tr data-device="dave">.*?</tr>', listing.text, re.S)
    assert row is not None
    assert "1004" in row.group(0) and "Reception" in row.group(0)
    assert "unknown" in row.group(0)  # the node is down: registration state unknown
    view, _ = PlanEditor(web_ctx.engine, web_ctx.settings.sip.realm).get("devices", "dave")
    assert view["lines"] == [{**view["lines"][0], "dn": "1004", "display": "Dave Brown"}]
    assert "password" not in view
    entries = web_ctx.audit.search(actor="phone-admin")
    assert [(e.action, e.object_type, e.object_key) for e in entries] == [
        ("create", "devices", "dave")
    ]
    page = await client.get("/devices/dave")
    assert 'value="Dave Brown"' in page.text
    assert "leave empty to keep the stored one" in page.text
    assert "dave-Secret-4" not in page.text  # passwords are write-only


async def test_validation_errors_are_shown_next_to_the_field(
    client: httpx.AsyncClient, web_users: dict[str, str]
) -> None:
    csrf = await as_user(client, "full-admin")
    answer = await client.post(
        "/devices/new",
        data={
            "csrf_token": csrf,
            "name": "erin",
            "protocol": "sip",
            "password": "erin-Secret-5",
            "lines[0].dn": "12a4",
            "lines[0].partition": "nowhere",
            "max_calls": "many",
        },
    )
    assert answer.status_code == 422
    assert "is not a whole number" in field_error(answer.text, "max_calls")
    # The form keeps what was typed.
    assert 'value="12a4"' in answer.text
    fixed = await client.post(
        "/devices/new",
        data={
            "csrf_token": csrf,
            "name": "erin",
            "protocol": "sip",
            "password": "erin-Secret-5",
            "lines[0].dn": "12a4",
            "lines[0].partition": "nowhere",
        },
    )
    assert fixed.status_code == 422
    assert "is not a directory number" in field_error(fixed.text, "lines[0].dn")
    unknown = await client.post(
        "/devices/new",
        data={
            "csrf_token": csrf,
            "name": "erin",
            "protocol": "sip",
            "password": "erin-Secret-5",
            "lines[0].dn": "1005",
            "lines[0].partition": "nowhere",
        },
    )
    assert unknown.status_code == 422
    assert "nowhere" in field_error(unknown.text, "lines[0].partition")
    # Nothing was saved.
    assert "erin" not in (await client.get("/devices")).text


async def test_a_form_without_the_csrf_token_is_refused(
    client: httpx.AsyncClient, web_users: dict[str, str], web_ctx: WebContext
) -> None:
    await as_user(client, "full-admin")
    answer = await client.post(
        "/devices/new",
        data={"name": "mallory", "protocol": "sip", "password": "x-Secret-1"},
    )
    assert answer.status_code == 403
    assert "mallory" not in (await client.get("/devices")).text


async def test_read_only_sees_no_edit_buttons_and_cannot_post(
    web_app: FastAPI, web_users: dict[str, str]
) -> None:
    async with client_for(web_app) as c:
        csrf = await as_user(c, "read-only")
        pages = [
            "/devices",
            "/devices/alice",
            "/dialplan/hunt_pilots",
            "/dialplan/hunt_pilots/edit?key=1500",
            "/users",
            "/users/user",
        ]
        for path in pages:
            page = await c.get(path)
            assert page.status_code == 200, path
            for marker in ('id="add-', 'id="save"', 'id="delete"', "Add new", 'id="create-token"'):
                assert marker not in page.text, (path, marker)
        form = await c.get("/devices/alice")
        assert '<fieldset class="plain" disabled>' in form.text
        for path, data in (
            ("/devices/alice", {"name": "alice", "protocol": "sip"}),
            ("/devices/new", {"name": "x", "protocol": "sip"}),
            ("/devices/alice/delete", {}),
            ("/dialplan/partitions/new", {"name": "p"}),
            ("/users/new", {"name": "x", "role": "user"}),
        ):
            answer = await c.post(path, data={**data, "csrf_token": csrf})
            assert answer.status_code == 403, path
        assert (await c.get("/devices/new")).status_code == 403
        api = await c.post(
            "/api/v1/devices",
            json={"name": "x", "protocol": "sip", "password": "x-Secret-1"},
            headers={"X-CSRF-Token": csrf},
        )
        assert api.status_code == 403


async def test_a_phone_admin_may_not_touch_the_dial_plan(
    client: httpx.AsyncClient, web_users: dict[str, str]
) -> None:
    csrf = await as_user(client, "phone-admin")
    page = await client.get("/dialplan/partitions")
    assert page.status_code == 200 and "Add new" not in page.text
    answer = await client.post("/dialplan/partitions/new", data={"csrf_token": csrf, "name": "p"})
    assert answer.status_code == 403


async def test_text_fields_are_shown_escaped(
    client: httpx.AsyncClient, web_users: dict[str, str]
) -> None:
    csrf = await as_user(client, "full-admin")
    answer = await client.post(
        "/devices/new",
        data={
            "csrf_token": csrf,
            "name": "xss",
            "protocol": "sip",
            "password": "xss-Secret-1",
            "description": XSS,
            "lines[0].dn": "1099",
            "lines[0].display": XSS[:100],
        },
    )
    assert answer.status_code == 303, answer.text
    for path in ("/devices", "/devices/xss", "/audit"):
        page = await client.get(path)
        assert "<script>alert" not in page.text, path
        assert "<img src=x" not in page.text, path
    listing = await client.get("/devices")
    assert html.escape(XSS, quote=False).replace('"', "&#34;") in listing.text or (
        "&lt;script&gt;" in listing.text
    )


async def test_two_admins_cannot_silently_overwrite_each_other(
    web_app: FastAPI, web_users: dict[str, str]
) -> None:
    async with client_for(web_app) as first, client_for(web_app, port=40001) as second:
        csrf1 = await as_user(first, "full-admin")
        csrf2 = await as_user(second, "phone-admin")
        page1 = await first.get("/devices/carol")
        page2 = await second.get("/devices/carol")
        etag = re.search(r'name="etag" value="([^"]+)"', page1.text)
        assert etag is not None
        assert etag.group(1) in page2.text
        base = {
            "name": "carol",
            "protocol": "sip",
            "lines[0].dn": "1003",
            "lines[0].display": "Carol White",
            "lines[0].pickup_group": "office",
        }
        saved = await first.post(
            "/devices/carol",
            data={
                **base,
                "description": "first",
                "etag": html.unescape(etag.group(1)),
                "csrf_token": csrf1,
            },
        )
        assert saved.status_code == 303
        late = await second.post(
            "/devices/carol",
            data={
                **base,
                "description": "second",
                "etag": html.unescape(etag.group(1)),
                "csrf_token": csrf2,
            },
        )
        assert late.status_code == 412
        assert "Someone else changed this device" in late.text
        assert 'value="first"' in (await second.get("/devices/carol")).text


async def test_a_delete_that_breaks_references_names_them(
    client: httpx.AsyncClient, web_users: dict[str, str]
) -> None:
    csrf = await as_user(client, "full-admin")
    refused = await client.post(
        "/dialplan/hunt_lists/delete?key=demo-hunt", data={"csrf_token": csrf}
    )
    assert refused.status_code == 409
    assert "hunt_pilots[1500]" in html.unescape(refused.text)
    deleted = await client.post("/dialplan/hunt_pilots/delete?key=1500", data={"csrf_token": csrf})
    assert deleted.status_code == 303
    assert deleted.headers["location"] == "/dialplan/hunt_pilots?deleted=1500"


async def test_call_routing_forms_and_the_analyzer(
    client: httpx.AsyncClient, web_users: dict[str, str]
) -> None:
    csrf = await as_user(client, "dialplan-admin")
    for section, data in (
        ("partitions", {"name": "pstn"}),
        (
            "trunks",
            {
                "name": "carrier",
                "protocol": "sip",
                "host": "192.0.2.10",
                "port": "5060",
                "transport": "udp",
            },
        ),
        (
            "route_groups",
            {"name": "carriers", "distribution": "top-down", "members[0].trunk": "carrier"},
        ),
        ("route_lists", {"name": "out", "groups": "carriers"}),
        ("calling_search_spaces", {"name": "world", "partitions": "pstn"}),
        (
            "route_patterns",
            {
                "pattern": "9.!",
                "partition": "pstn",
                "route_list": "out",
                "called_transform.discard": "pre-dot",
            },
        ),
    ):
        answer = await client.post(f"/dialplan/{section}/new", data={**data, "csrf_token": csrf})
        assert answer.status_code == 303, (section, answer.text[-2000:])
    patterns = await client.get("/dialplan/route_patterns")
    assert "9.!" in patterns.text and 'id="analyzer-panel"' in patterns.text
    trunks = await client.get("/dialplan/trunks")
    assert "carrier" in trunks.text and "Trunk state unknown" in trunks.text
    new_trunk = await client.get("/dialplan/trunks/new")
    assert "the carrier gave" in new_trunk.text and "SIP phone" not in new_trunk.text
    carrier = await client.get("/dialplan/trunks/edit", params={"key": "carrier"})
    assert "the carrier&#39;s digest secret; leave empty to keep the stored one" in carrier.text
    bad = await client.post(
        "/dialplan/route_patterns/new",
        data={"pattern": "8!", "partition": "pstn", "csrf_token": csrf},
    )
    assert bad.status_code == 422
    assert "route_list" in bad.text
    htmx = {"HX-Request": "true"}
    query = {"device": "alice", "digits": "1002"}
    analysis = await client.get("/dialplan/analyze", params=query, headers=htmx)
    assert analysis.status_code == 200
    assert "1002" in analysis.text and "bob" in analysis.text
    assert "<html" not in analysis.text  # the fragment the inline form shows
    # Without htmx (no JavaScript, a bookmarked link): a whole page, the form filled in.
    page = await client.get("/dialplan/analyze", params=query)
    assert page.status_code == 200 and "<html" in page.text and "bob" in page.text
    assert 'id="analyzer-device" value="alice"' in page.text
    assert 'id="analyzer-digits" value="1002"' in page.text
    unknown = await client.get("/dialplan/analyze", params={"device": "nobody", "digits": "1"})
    assert "unknown device" in unknown.text
    edit = await client.get("/dialplan/route_patterns/edit", params={"key": "pstn/9.!"})
    assert edit.status_code == 200
    assert 'value="pre-dot"' in edit.text


def test_registration_state_comes_from_the_nodes_status() -> None:
    status = {
        "registrations": [
            {
                "device": "alice",
                "protocol": "sip",
                "contact": "sip:alice@192.0.2.5:5060",
                "expires_in": 90,
            },
            {
                "device": "alice",
                "protocol": "sip",
                "contact": "sip:alice@192.0.2.6:5060",
                "expires_in": 30,
            },
            {"device": "SEP001122334455", "protocol": "sccp", "contact": "sccp:SEP001122334455"},
        ],
        "sccp": {"registered": 1},
    }
    index = registration_index(status)
    assert [r["contact"] for r in index["alice"]] == [
        "sip:alice@192.0.2.5:5060",
        "sip:alice@192.0.2.6:5060",
    ]
    assert index["alice"][0]["protocol"] == "SIP"
    assert index["SEP001122334455"][0]["protocol"] == "SCCP"
    assert registration_index(None) == {}


def form_values(page: str) -> dict[str, str]:
    """What a browser posts from the page's object form as it is shown (inputs, selects, checks)."""
    form = re.search(r'<form class="panel"[^>]*id="object-form".*?</form>', page, re.S)
    assert form is not None
    out: dict[str, str] = {}
    for tag in re.findall(r"<input\b[^>]*>", form.group(0)):
        name = re.search(r'name="([^"]+)"', tag)
        if name is None:
            continue
        if 'type="checkbox"' in tag:
            if " checked" in tag:
                out[html.unescape(name.group(1))] = "on"
            continue
        value = re.search(r'value="([^"]*)"', tag)
        out[html.unescape(name.group(1))] = html.unescape(value.group(1)) if value else ""
    selects = re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', form.group(0), re.S)
    for name, body in selects:
        chosen = re.search(r'<option value="([^"]*)" selected', body)
        out[html.unescape(name)] = html.unescape(chosen.group(1)) if chosen else ""
    return out


async def test_an_existing_phone_gets_a_new_line_and_a_speed_dial(
    web_app: FastAPI, client: httpx.AsyncClient, web_users: dict[str, str], web_ctx: WebContext
) -> None:
    csrf = await as_user(client, "phone-admin")
    ed = PlanEditor(web_ctx.engine, web_ctx.settings.sip.realm)
    ed.create(
        "devices",
        {"name": "SEP001122334455", "protocol": "sccp", "model": "7960", "lines": [{"dn": "1020"}]},
    )
    page = await client.get("/devices/SEP001122334455")
    assert page.status_code == 200
    # The edit page offers one empty line and one empty speed dial to fill in.
    assert "Line 2 (new)" in page.text and 'name="lines[1].dn"' in page.text
    assert "Speed dial 1 (new)" in page.text and 'name="speed_dials[0].number"' in page.text
    assert "SIP phones only" in page.text  # the password field of an SCCP phone
    assert "<title>Device SEP001122334455 · offhook</title>" in page.text  # the tab says which
    data = form_values(page.text)
    assert data["name"] == "SEP001122334455" and data["lines[0].dn"] == "1020"
    data.update(
        {
            "csrf_token": csrf,
            "lines[1].dn": "1021",
            "lines[1].display": "Second line",
            "speed_dials[0].number": "1002",
            "speed_dials[0].label": "Bob",
        }
    )
    saved = await client.post("/devices/SEP001122334455", data=data)
    assert saved.status_code == 303, saved.text
    view, _ = ed.get("devices", "SEP001122334455")
    assert [(ln["dn"], ln["display"]) for ln in view["lines"]] == [
        ("1020", ""),
        ("1021", "Second line"),
    ]
    assert view["speed_dials"] == [{"number": "1002", "label": "Bob"}]
    # A read-only administrator sees the lines but is offered no new ones.
    async with client_for(web_app, port=40002) as other:
        await as_user(other, "read-only")
        shown = await other.get("/devices/SEP001122334455")
        assert 'name="lines[1].dn"' in shown.text
        assert 'name="lines[2].dn"' not in shown.text and "(new)" not in shown.text


async def test_lists_find_and_page(
    client: httpx.AsyncClient,
    web_users: dict[str, str],
    web_ctx: WebContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pages_devices, "LIST_PAGE", 2)
    monkeypatch.setattr(pages_dialplan, "LIST_PAGE", 2)
    await as_user(client, "read-only")
    first = await client.get("/devices")
    assert re.findall(r'<tr data-device="([^"]+)"', first.text) == ["alice", "bob"]
    assert "1\N{EN DASH}2 of 3" in first.text and 'href="/devices?offset=2"' in first.text
    second = await client.get("/devices?offset=2")
    assert re.findall(r'<tr data-device="([^"]+)"', second.text) == ["carol"]
    assert 'href="/devices?offset=0"' in second.text  # Previous
    found = await client.get("/devices", params={"q": "1010"})
    assert re.findall(r'<tr data-device="([^"]+)"', found.text) == ["alice", "bob"]
    assert "2 of 3 phones match" in found.text
    ed = PlanEditor(web_ctx.engine, web_ctx.settings.sip.realm)
    for name in ("lab", "pstn", "staff"):
        ed.create("partitions", {"name": name})
    listing = await client.get("/dialplan/partitions")
    assert "3 partitions" in listing.text and 'href="/dialplan/partitions?offset=2"' in listing.text
    match = await client.get("/dialplan/partitions", params={"q": "ST"})
    rows = re.findall(r'<a href="/dialplan/partitions/edit\?key=([^"]+)"', match.text)
    assert rows == ["pstn", "staff"]
    assert "2 of 3 partitions match" in match.text
    assert 'value="ST"' in match.text
    none = await client.get("/dialplan/partitions", params={"q": "zzz"})
    assert "None match" in none.text


async def test_the_phone_list_filters_by_registration_and_shows_owners(tmp_path: Path) -> None:
    async with live_node(tmp_path) as node:
        users = node.app.state.ctx.users
        users.add("anna", "user", PASSWORD, devices=("alice",))
        users.add("ops", "phone-admin", PASSWORD)
        alice = SipClient(
            (HOST, node.server.sip_port), "alice", "alice-Secret-1", realm=node.server.realm
        )
        await alice.start()
        try:
            _, ok = await alice.register(expires=120)
            assert ok.status == 200
            answer = await node.client.post(
                "/login", data={"username": "root", "password": PASSWORD}
            )
            assert answer.status_code == 303

            def shown(page: str) -> list[str]:
                return re.findall(r'<tr data-device="([^"]+)"', page)

            registered = await node.client.get("/devices", params={"status": "registered"})
            assert shown(registered.text) == ["alice"]
            assert "1 of 3 phones match" in registered.text
            assert '<option value="registered" selected>' in registered.text
            others = await node.client.get("/devices", params={"status": "unregistered"})
            assert shown(others.text) == ["bob", "carol"]
            anything = await node.client.get("/devices", params={"status": "bogus"})
            assert shown(anything.text) == ["alice", "bob", "carol"]
            # The device page: registration detail and who manages it in self-care.
            page = await node.client.get("/devices/alice")
            assert "Registered" in page.text and "sip:alice" in page.text
            assert 'href="/cdrs?device=alice" id="device-cdrs"' in page.text
            owners = re.search(r'<p id="owners">(.*?)</p>', page.text, re.S)
            assert owners is not None and 'href="/users/anna">anna</a>' in owners.group(1)
            assert "none" in (await node.client.get("/devices/bob")).text.split('id="owners"')[1]
        finally:
            await alice.close()
        # A phone administrator (no users.read) is not shown user names.
        async with client_for(node.app, port=40003) as ops:
            assert (
                await ops.post("/login", data={"username": "ops", "password": PASSWORD})
            ).status_code == 303
            page = await ops.get("/devices/alice")
            assert page.status_code == 200 and 'id="owners"' not in page.text
