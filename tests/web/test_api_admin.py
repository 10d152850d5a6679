"""Users, roles, tokens and the audit log through the API (real database, real app)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import httpx
import pytest

from offhook.ris.control import NodeUnavailable
from offhook.web.app import default_control
from offhook.web.deps import WebContext
from web.rig import PASSWORD, login, make_settings


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_users_crud_password_write_only_and_audited(
    client: httpx.AsyncClient, tokens: dict[str, str], web_ctx: WebContext
) -> None:
    admin = _bearer(tokens["full-admin"])
    created = await client.post(
        "/api/v1/users",
        headers=admin,
        json={"name": "dora", "role": "user", "password": "s3cret-pass", "devices": ["bob"]},
    )
    assert created.status_code == 201, created.text
    assert created.json()["devices"] == ["bob"]
    assert "password" not in created.text and "s3cret" not in created.text
    again = await client.post(
        "/api/v1/users", headers=admin, json={"name": "dora", "role": "user", "password": "x" * 9}
    )
    assert again.status_code == 409
    bad_role = await client.post(
        "/api/v1/users", headers=admin, json={"name": "ed", "role": "root", "password": "x" * 9}
    )
    assert bad_role.status_code == 422

    # PATCH changes only what it is given.
    patched = await client.patch(
        "/api/v1/users/dora", headers=admin, json={"display": "Dora D", "password": "new-pass-1"}
    )
    assert patched.status_code == 200
    body = patched.json()
    assert (body["display"], body["role"], body["devices"]) == ("Dora D", "user", ["bob"])
    assert web_ctx.users.verify("dora", "new-pass-1") is not None

    listed = (await client.get("/api/v1/users?role=user", headers=admin)).json()
    assert {u["name"] for u in listed["items"]} == {"user", "dora"}
    assert listed["total"] == 2
    assert (await client.get("/api/v1/users/dora", headers=admin)).json()["display"] == "Dora D"

    assert (await client.delete("/api/v1/users/dora", headers=admin)).status_code == 204
    assert (await client.get("/api/v1/users/dora", headers=admin)).status_code == 404

    entries = web_ctx.audit.search(object_type="users")
    actions = [(e.action, e.object_key, e.actor, e.source) for e in reversed(entries)]
    assert actions == [
        ("create", "dora", "full-admin", "127.0.0.1"),
        ("update", "dora", "full-admin", "127.0.0.1"),
        ("password", "dora", "full-admin", "127.0.0.1"),
        ("delete", "dora", "full-admin", "127.0.0.1"),
    ]
    update = entries[2]
    assert update.before["display"] == "" and update.after["display"] == "Dora D"
    assert all("password" not in str(e.before) + str(e.after) for e in entries)


async def test_last_full_admin_cannot_be_removed(
    client: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    admin = _bearer(tokens["full-admin"])
    demote = await client.patch(
        "/api/v1/users/full-admin", headers=admin, json={"role": "read-only"}
    )
    assert demote.status_code == 409
    assert (await client.delete("/api/v1/users/full-admin", headers=admin)).status_code == 409
    await client.post(
        "/api/v1/users",
        headers=admin,
        json={"name": "second", "role": "full-admin", "password": "another-one"},
    )
    assert (await client.delete("/api/v1/users/full-admin", headers=admin)).status_code == 204


async def test_disabling_a_user_ends_their_sessions(
    client: httpx.AsyncClient, web_users: dict[str, str], tokens: dict[str, str], web_app: object
) -> None:
    await login(client, "phone-admin")
    assert (await client.get("/api/v1/me")).status_code == 200
    admin = _bearer(tokens["full-admin"])
    off = await client.patch("/api/v1/users/phone-admin", headers=admin, json={"enabled": False})
    assert off.status_code == 200
    assert (await client.get("/api/v1/me")).status_code == 401
    refused = await client.post(
        "/api/v1/login", json={"username": "phone-admin", "password": PASSWORD}
    )
    assert refused.status_code == 401


async def test_roles_list(client: httpx.AsyncClient, tokens: dict[str, str]) -> None:
    roles = (await client.get("/api/v1/roles", headers=_bearer(tokens["read-only"]))).json()
    by_name = {r["name"]: set(r["permissions"]) for r in roles}
    assert list(by_name) == [
        "full-admin",
        "read-only",
        "phone-admin",
        "dialplan-admin",
        "user",
        "cti-app",
    ]
    assert by_name["cti-app"] >= {"cti", "authenticated"}
    assert "cti.all" not in by_name["cti-app"]
    assert "devices.write" in by_name["phone-admin"]
    assert "dialplan.write" not in by_name["phone-admin"]
    assert by_name["user"] == {"self", "authenticated", "cti"}  # CTI on their own phones


async def test_tokens_shown_once_listed_without_secret_and_revoked(
    client: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    admin = _bearer(tokens["full-admin"])
    made = await client.post(
        "/api/v1/tokens", headers=admin, json={"user": "read-only", "label": "nagios"}
    )
    assert made.status_code == 201
    token = made.json()["token"]
    token_id = made.json()["id"]
    assert token.startswith("ofh_")
    me = await client.get("/api/v1/me", headers=_bearer(token))
    assert me.json()["user"] == "read-only"
    listed = await client.get("/api/v1/tokens?user=read-only", headers=admin)
    assert token not in listed.text
    assert [t["label"] for t in listed.json()] == ["tests", "nagios"]
    assert (await client.delete(f"/api/v1/tokens/{token_id}", headers=admin)).status_code == 204
    assert (await client.get("/api/v1/me", headers=_bearer(token))).status_code == 401
    assert (await client.delete(f"/api/v1/tokens/{token_id}", headers=admin)).status_code == 404
    unknown = await client.post("/api/v1/tokens", headers=admin, json={"user": "nobody"})
    assert unknown.status_code == 404


async def test_audit_search_and_csv(
    client: httpx.AsyncClient, tokens: dict[str, str], web_ctx: WebContext
) -> None:
    web_ctx.audit.record("mallory", "10.0.0.9", "update", "devices", "alice", {"a": 1}, {"a": 2})
    web_ctx.audit.record("full-admin", "127.0.0.1", "create", "devices", "=cmd|' /C calc'!A0")
    reader = _bearer(tokens["read-only"])
    page = (await client.get("/api/v1/audit?actor=mallory", headers=reader)).json()
    assert page["total"] == 1
    assert page["items"][0]["after"] == {"a": 2}
    answer = await client.get("/api/v1/audit.csv?object_type=devices", headers=reader)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [r["actor"] for r in rows] == ["full-admin", "mallory"]
    assert rows[0]["object_key"].startswith("'=")  # no formula for a spreadsheet to run
    assert rows[1]["before"] == '{"a": 1}'
    refused = await client.get("/api/v1/audit", headers=_bearer(tokens["phone-admin"]))
    assert refused.status_code == 403


async def test_health_public_and_metrics_need_live_read(
    client: httpx.AsyncClient, tokens: dict[str, str], web_users: dict[str, str]
) -> None:
    assert (await client.get("/api/v1/health")).json() == {"status": "ok"}
    await client.post("/api/v1/login", json={"username": "x", "password": "wrong-password"})
    assert (await client.get("/metrics")).status_code == 401
    assert (await client.get("/metrics", headers=_bearer(tokens["user"]))).status_code == 403
    text = (await client.get("/metrics", headers=_bearer(tokens["read-only"]))).text
    assert 'offhook_web_requests_total{method="POST",route="/api/v1/login",status="401"} 1.0' in (
        text
    )
    assert "offhook_web_login_failures_total 1.0" in text
    assert "offhook_web_sessions 0.0" in text
    await client.get("/no/such/path/123")
    text = (await client.get("/metrics", headers=_bearer(tokens["read-only"]))).text
    assert 'route="unmatched",status="404"' in text
    assert "/no/such/path" not in text
    # A route with parameters is counted under its template, prefix included.
    reader = _bearer(tokens["read-only"])
    assert (await client.get("/api/v1/devices/alice", headers=reader)).status_code == 200
    assert (await client.get("/api/v1/devices/nobody", headers=reader)).status_code == 404
    text = (await client.get("/metrics", headers=reader)).text
    assert 'method="GET",route="/api/v1/devices/{key}",status="200"} 1.0' in text
    assert 'method="GET",route="/api/v1/devices/{key}",status="404"} 1.0' in text
    assert "devices/alice" not in text and "devices/nobody" not in text


async def test_security_headers(client: httpx.AsyncClient) -> None:
    answer = await client.get("/api/v1/health")
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["cache-control"] == "no-store"


async def test_node_control_off_means_node_unavailable(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'x.db'}")
    off = settings.model_copy(
        update={"admin": settings.admin.model_copy(update={"enabled": False})}
    )
    control = default_control(off)
    with pytest.raises(NodeUnavailable, match="enabled = false"):
        await control.request("status")
