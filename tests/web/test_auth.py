"""Login, logout and /me through the API (a real database, the real app)."""

from __future__ import annotations

import httpx

from web.rig import PASSWORD, login


async def test_login_me_logout(client: httpx.AsyncClient, web_users: dict[str, str]) -> None:
    csrf = await login(client, "phone-admin")
    assert "offhook_session" in client.cookies
    me = (await client.get("/api/v1/me")).json()
    assert me["user"] == "phone-admin"
    assert me["role"] == "phone-admin"
    assert me["via"] == "session"
    assert me["csrf_token"] == csrf
    assert "devices.write" in me["permissions"]
    assert "dialplan.write" not in me["permissions"]
    out = await client.post("/api/v1/logout", headers={"X-CSRF-Token": csrf})
    assert out.status_code == 204
    assert (await client.get("/api/v1/me")).status_code == 401


async def test_token_me(
    client: httpx.AsyncClient, tokens: dict[str, str], web_users: dict[str, str]
) -> None:
    answer = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {tokens['user']}"})
    assert answer.status_code == 200
    body = answer.json()
    assert body["via"] == "token"
    assert body["devices"] == ["alice"]
    assert body["csrf_token"] is None


async def test_wrong_password_and_unknown_user_answer_alike(
    client: httpx.AsyncClient, web_users: dict[str, str]
) -> None:
    wrong = await client.post(
        "/api/v1/login", json={"username": "full-admin", "password": PASSWORD + "x"}
    )
    unknown = await client.post("/api/v1/login", json={"username": "nobody", "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"detail": "invalid username or password"}
    assert "set-cookie" not in wrong.headers and "set-cookie" not in unknown.headers
