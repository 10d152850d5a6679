"""Admin pages: the login form, redirects, the menu per role, logout, CSP, the dashboard.

Through an HTTP client against the real app (real database with the demo
plan, users of every role from ``web.rig``); the node is down here, so the
live parts say so.
"""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI

from offhook.web.deps import PUBLIC_ROUTES, app_routes, route_permission
from offhook.web.pages import DASHBOARD_ROWS, live_view
from offhook.web.pages_base import PageRoute, templates
from web.rig import PASSWORD, client_for, login

PAGES = ["/", "/devices", "/dialplan", "/cdrs", "/users", "/audit", "/self"]


async def page_login(client: httpx.AsyncClient, user: str, next_: str = "/") -> httpx.Response:
    return await client.post("/login", data={"username": user, "password": PASSWORD, "next": next_})


async def test_pages_send_strangers_to_the_login_page(
    client: httpx.AsyncClient, web_users: dict[str, str]
) -> None:
    for path in [*PAGES, "/devices/alice", "/dialplan/trunks"]:
        answer = await client.get(path)
        assert answer.status_code == 303, path
        assert answer.headers["location"] == f"/login?next={path}"
    fragment = await client.get("/dashboard/live", headers={"HX-Request": "true"})
    assert fragment.headers["HX-Redirect"].startswith("/login")
    page = await client.get("/login?next=/devices")
    assert page.status_code == 200
    assert 'name="next" value="/devices"' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]


async def test_the_login_form_logs_in_and_goes_where_asked(
    client: httpx.AsyncClient, web_users: dict[str, str]
) -> None:
    answer = await page_login(client, "full-admin", "/devices")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/devices"
    cookie = answer.headers["set-cookie"]
    assert "offhook_session=" in cookie and "HttpOnly" in cookie
    assert "samesite=strict" in cookie.lower()
    devices = await client.get("/devices")
    assert devices.status_code == 200
    assert "alice" in devices.text


async def test_a_wrong_password_and_an_unknown_user_read_the_same(
    client: httpx.AsyncClient, web_users: dict[str, str]
) -> None:
    wrong = await client.post("/login", data={"username": "full-admin", "password": "nope"})
    unknown = await client.post("/login", data={"username": "nobody", "password": "nope"})
    assert wrong.status_code == unknown.status_code == 401
    strip = re.compile(r'value="[^"]*"')
    assert strip.sub("", wrong.text) == strip.sub("", unknown.text)
    assert "Invalid user name or password" in wrong.text
    assert "set-cookie" not in wrong.headers


async def test_a_login_form_posted_from_another_site_is_refused(
    client: httpx.AsyncClient, web_users: dict[str, str]
) -> None:
    data = {"username": "full-admin", "password": PASSWORD}
    for headers in (
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
    ):
        answer = await client.post("/login", data=data, headers=headers)
        assert answer.status_code == 403, headers
        assert "set-cookie" not in answer.headers
    same = await client.post("/login", data=data, headers={"Origin": "http://testserver"})
    assert same.status_code == 303


async def test_login_never_redirects_off_site(
    client: httpx.AsyncClient, web_users: dict[str, str]
) -> None:
    for target in ("https://evil.example/", "//evil.example/x", "javascript:alert(1)"):
        async with client_for(client._transport.app) as fresh:  # type: ignore[attr-defined]
            answer = await page_login(fresh, "full-admin", target)
            assert answer.headers["location"] == "/", target


async def test_an_end_user_lands_on_self_care_and_sees_only_its_menu(
    client: httpx.AsyncClient, web_users: dict[str, str]
) -> None:
    answer = await page_login(client, "user")
    assert answer.headers["location"] == "/self"
    home = await client.get("/")
    assert home.status_code == 303 and home.headers["location"] == "/self"
    portal = await client.get("/self")
    assert portal.status_code == 200
    nav = re.search(r"<nav>(.*?)</nav>", portal.text, re.S)
    assert nav is not None
    assert re.findall(r'href="([^"]+)"', nav.group(1)) == ["/self"]
    for path in ("/devices", "/dialplan", "/cdrs", "/audit", "/users", "/dashboard/live"):
        refused = await client.get(path)
        assert refused.status_code == 403, path
        assert "Not allowed" in refused.text
        assert "Your role (user) may not open this page" in refused.text


async def test_each_role_sees_the_menu_of_what_it_may_open(
    web_app: FastAPI, web_users: dict[str, str]
) -> None:
    expected = {
        "full-admin": PAGES,
        "read-only": ["/", "/devices", "/dialplan", "/cdrs", "/users", "/audit"],
        "phone-admin": ["/", "/devices", "/dialplan", "/cdrs"],
        "dialplan-admin": ["/", "/devices", "/dialplan", "/cdrs"],
    }
    for role, links in expected.items():
        async with client_for(web_app) as c:
            await page_login(c, role)
            page = await c.get("/")
            assert page.status_code == 200, role
            nav = re.search(r"<nav>(.*?)</nav>", page.text, re.S)
            assert nav is not None
            assert re.findall(r'href="([^"]+)"', nav.group(1)) == links, role
            for link in links:
                assert (await c.get(link)).status_code == 200, (role, link)


async def test_logout_ends_the_session(
    client: httpx.AsyncClient, web_users: dict[str, str]
) -> None:
    await page_login(client, "read-only")
    page = await client.get("/devices")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf is not None
    without = await client.post("/logout")
    assert without.status_code == 403  # no CSRF token: refused, still logged in
    answer = await client.post("/logout", data={"csrf_token": csrf.group(1)})
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    assert (await client.get("/devices")).status_code == 303


async def test_the_dashboard_shows_the_node_is_down_and_a_chart(
    client: httpx.AsyncClient, web_users: dict[str, str]
) -> None:
    wrong = await client.post("/login", data={"username": "read-only", "password": "nope"})
    assert wrong.status_code == 401
    await login(client, "read-only")
    page = await client.get("/")
    assert "Administration logins: failed 1, sources blocked now 0" in page.text
    assert page.status_code == 200
    assert "Node unavailable" in page.text
    assert 'hx-get="/dashboard/live"' in page.text and 'hx-trigger="every 2s"' in page.text
    assert "<svg" in page.text and "Calls per minute" in page.text
    assert '<script src="/static/htmx.min.js">' in page.text
    htmx = await client.get("/static/htmx.min.js")
    assert htmx.status_code == 200 and "htmx" in htmx.text[:200]


def test_every_page_route_requires_a_permission_or_is_the_login_page(web_app: FastAPI) -> None:
    pages = [r for r in app_routes(web_app) if isinstance(r.original_route, PageRoute)]
    assert len(pages) > 20
    for route in pages:
        if route.path in PUBLIC_ROUTES:
            assert route.path == "/login"
            continue
        assert route_permission(route) is not None, route.path


def test_the_dashboard_lists_at_most_a_page_of_calls_and_phones() -> None:
    phones = [
        {"device": f"p{i:03d}", "protocol": "sip", "contact": f"sip:p{i}@192.0.2.1"}
        for i in range(DASHBOARD_ROWS + 7)
    ]
    calls = [
        {"calling": "1001", "called": f"2{i:03d}", "state": "connected", "legs": [], "start": 0}
        for i in range(DASHBOARD_ROWS + 3)
    ]
    status = {"registrations": phones, "calls": {"calls": calls}, "trunks": [], "plan_version": 1}
    view = live_view(status)
    assert view["phones"]["sip"] == DASHBOARD_ROWS + 7  # the cards count every phone
    page = templates.get_template("_live.html").render(
        **view, web_rejections=[], web_auth={"failures": 0, "blocked_now": 0}, perms={"plan.read"}
    )
    assert page.count('<a href="/devices/p') == DASHBOARD_ROWS
    assert "7 more" in page and 'href="/devices?status=registered"' in page
    assert "and 3 more calls" in page
    assert f'id="active-calls">{DASHBOARD_ROWS + 3}<' in page
