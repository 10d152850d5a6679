"""User management pages: users, roles, API tokens (shown once), the last full-admin kept."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI

from offhook.web.deps import WebContext
from web.rig import PASSWORD, client_for


async def as_user(client: httpx.AsyncClient, user: str, password: str = PASSWORD) -> str:
    answer = await client.post("/login", data={"username": user, "password": password})
    assert answer.status_code == 303, answer.text
    page = await client.get("/users")
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match is not None
    return match.group(1)


def error_of(page: str, name: str) -> str:
    block = re.search(rf'<label for="f-{name}">.*?</div>', page, re.S)
    assert block is not None, name
    msg = re.search(r'<span class="error"[^>]*>(.*?)</span>', block.group(0), re.S)
    return msg.group(1) if msg else ""


async def test_an_admin_adds_an_end_user_who_can_then_log_in(
    web_app: FastAPI, web_users: dict[str, str], web_ctx: WebContext
) -> None:
    async with client_for(web_app) as admin:
        csrf = await as_user(admin, "full-admin")
        new = {
            "csrf_token": csrf,
            "name": "zoe",
            "display": "Zoe Quinn",
            "role": "user",
            "devices": "alice, bob",
            "password": "zoe-password-1",
            "enabled": "on",
        }
        short = await admin.post("/users/new", data={**new, "password": "short"})
        assert short.status_code == 422
        assert "8" in error_of(short.text, "password")
        created = await admin.post("/users/new", data=new)
        assert created.status_code == 303 and created.headers["location"] == "/users?saved=zoe"
        again = await admin.post("/users/new", data=new)
        assert again.status_code == 409 and "exists" in error_of(again.text, "name")
        listing = await admin.get("/users")
        assert "Zoe Quinn" in listing.text and "alice, bob" in listing.text
        record = web_ctx.users.get("zoe")
        assert record is not None and record.devices == ("alice", "bob")
        assert [e.action for e in web_ctx.audit.search(object_type="users")] == ["create"]
    async with client_for(web_app) as zoe:
        answer = await zoe.post("/login", data={"username": "zoe", "password": "zoe-password-1"})
        assert answer.headers["location"] == "/self"
        portal = await zoe.get("/self")
        assert 'id="device-alice"' in portal.text and 'id="device-bob"' in portal.text


async def test_a_token_is_shown_once_and_revoked(
    client: httpx.AsyncClient, web_users: dict[str, str], web_app: FastAPI
) -> None:
    csrf = await as_user(client, "full-admin")
    created = await client.post(
        "/tokens/new", data={"csrf_token": csrf, "user": "read-only", "label": "nightly export"}
    )
    assert created.status_code == 200
    token = re.search(r'<div class="secret" id="new-token">([^<]+)</div>', created.text)
    assert token is not None and token.group(1).startswith("ofh_")
    plaintext = token.group(1)
    listing = await client.get("/users")
    assert plaintext not in listing.text
    assert "nightly export" in listing.text and plaintext[:8] in listing.text
    async with client_for(web_app) as script:
        auth = {"Authorization": f"Bearer {plaintext}"}
        assert (await script.get("/api/v1/me", headers=auth)).status_code == 200
        token_id = re.search(r'action="/tokens/(\d+)/revoke"', listing.text)
        assert token_id is not None
        revoked = await client.post(
            f"/tokens/{token_id.group(1)}/revoke", data={"csrf_token": csrf}
        )
        assert revoked.status_code == 303
        assert (await script.get("/api/v1/me", headers=auth)).status_code == 401
    assert "revoked" in (await client.get("/users")).text


async def test_the_last_full_admin_stays_one(
    client: httpx.AsyncClient, web_users: dict[str, str], web_ctx: WebContext
) -> None:
    csrf = await as_user(client, "full-admin")
    demote = await client.post(
        "/users/full-admin",
        data={
            "csrf_token": csrf,
            "role": "read-only",
            "display": "",
            "devices": "",
            "enabled": "on",
        },
    )
    assert demote.status_code == 409
    assert "last enabled full-admin" in error_of(demote.text, "role")
    delete = await client.post("/users/full-admin/delete", data={"csrf_token": csrf})
    assert delete.status_code == 409
    user = web_ctx.users.get("full-admin")
    assert user is not None and user.role == "full-admin"


async def test_a_new_password_ends_the_users_sessions(
    web_app: FastAPI, web_users: dict[str, str]
) -> None:
    async with client_for(web_app) as admin, client_for(web_app, port=40002) as victim:
        await as_user(victim, "read-only")
        assert (await victim.get("/users")).status_code == 200
        csrf = await as_user(admin, "full-admin")
        changed = await admin.post(
            "/users/read-only",
            data={
                "csrf_token": csrf,
                "role": "read-only",
                "display": "Viewer",
                "devices": "",
                "enabled": "on",
                "password": "another-password-2",
            },
        )
        assert changed.status_code == 303
        assert (await victim.get("/users")).status_code == 303  # back to the login page


async def test_read_only_sees_users_and_roles_but_no_tokens(
    client: httpx.AsyncClient, web_users: dict[str, str]
) -> None:
    csrf = await as_user(client, "read-only")
    page = await client.get("/users")
    assert 'id="roles"' in page.text and "dialplan-admin" in page.text
    assert 'id="tokens-panel"' not in page.text
    refused = await client.post("/tokens/new", data={"csrf_token": csrf, "user": "read-only"})
    assert refused.status_code == 403


async def test_a_device_the_plan_lacks_is_marked_on_the_user_list(
    client: httpx.AsyncClient, web_users: dict[str, str], web_ctx: WebContext
) -> None:
    web_ctx.users.add("erin", "user", PASSWORD, devices=("bob", "SEP0000DEADBEEF"))
    await as_user(client, "read-only")
    page = await client.get("/users")
    row = re.search(r'<a href="/users/erin">.*?</tr>', page.text, re.S)
    assert row is not None
    cell = re.search(r'<td class="devices">(.*?)</td>', row.group(0), re.S)
    assert cell is not None
    assert cell.group(1).startswith("bob, ")  # a device of the plan: as it is
    assert "SEP0000DEADBEEF: no such device" in cell.group(1)
