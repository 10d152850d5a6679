"""The admin pages' router: login and logout, the dashboard, and every page module.

``router`` (included by ``web.app``) holds the login page (public), logout,
the dashboard with its live part (polled by htmx every 2 s: registered
phones by protocol, active calls, trunks, rejections and blocked sources)
and its calls-per-minute chart, and includes the page modules: devices
(``pages_devices``), call routing (``pages_dialplan``), call records and the
audit log (``pages_records``), users, roles and tokens (``pages_users``) and
the self-care portal (``pages_self``).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from offhook.web import pages_devices, pages_dialplan, pages_records, pages_self, pages_users
from offhook.web.deps import Principal, client_host, ctx, require
from offhook.web.pages_base import form_data, node_call, page_router, render, templates
from offhook.web.pages_records import bar_chart
from offhook.web.roles import Permission
from offhook.web.security import LoginRefused, clear_session_cookie, login, set_session_cookie
from offhook.web.sessions import COOKIE_NAME

__all__ = ["live_view", "router"]

router = page_router()

DASHBOARD_HOURS = 3
INVALID_LOGIN = "Invalid user name or password."


def _safe_next(target: str) -> str:
    """Only a local path may be where the login page sends one (no open redirect)."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def _login_page(
    error: str = "", username: str = "", next_: str = "/", status: int = 200
) -> HTMLResponse:
    html = templates.get_template("login.html").render(error=error, username=username, next=next_)
    return HTMLResponse(html, status_code=status)


@router.get("/login")
async def login_page(request: Request) -> Response:
    return _login_page(next_=_safe_next(request.query_params.get("next", "/")))


def _cross_site(request: Request) -> bool:
    """A login form posted from another site (login CSRF: logging a victim in as the
    attacker): the browser says so in ``Sec-Fetch-Site`` or an ``Origin`` of another host."""
    if request.headers.get("sec-fetch-site", "") == "cross-site":
        return True
    origin = request.headers.get("origin")
    if origin is None:
        return False
    return origin == "null" or urlsplit(origin).netloc != request.headers.get("host", "")


@router.post("/login")
async def login_post(request: Request) -> Response:
    if _cross_site(request):
        return _login_page("Log in from this site's own login page.", status=403)
    form = await form_data(request)
    username = form.get("username", "")
    next_ = _safe_next(form.get("next", "/"))
    context = ctx(request)
    try:
        session = await login(context, username, form.get("password", ""), client_host(request))
    except LoginRefused as exc:
        refused = _login_page(
            f"Too many failed logins: try again in {exc.retry_after} s.", username, next_, 429
        )
        refused.headers["Retry-After"] = str(exc.retry_after)
        return refused
    if session is None:
        return _login_page(INVALID_LOGIN, username, next_, 401)
    old = request.cookies.get(COOKIE_NAME)
    if old:
        context.sessions.delete(old)
    user = await run_in_threadpool(context.users.get, session.user)
    if next_ == "/" and user is not None and user.role == "user":
        next_ = "/self"
    response = RedirectResponse(next_, status_code=303)
    set_session_cookie(response, context.settings, session)
    return response


@router.post("/logout")
async def logout(
    request: Request, principal: Annotated[Principal, require(Permission.AUTHENTICATED)]
) -> Response:
    context = ctx(request)
    if principal.session_id is not None:
        context.sessions.delete(principal.session_id)
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response, context.settings)
    return response


DASHBOARD_ROWS = 25
"""Most calls and registrations the dashboard lists (it is redrawn every 2 s); the
cards count them all, the phone list has the rest."""


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds // 60 % 60:02d} min"


def web_view(request: Request) -> dict[str, Any]:
    """The web process's own defences: its listener's rejections and failed logins."""
    context = ctx(request)
    guard = context.login_guard
    return {
        "web_rejections": [
            {"listener": listener, "reason": reason, "count": count}
            for listener, reasons in sorted(context.rejections.snapshot().items())
            for reason, count in sorted(reasons.items())
            if count
        ],
        "web_auth": guard.guard.status(guard.clock()),
    }


def live_view(status: dict[str, Any] | None) -> dict[str, Any]:
    """The dashboard's live part from the node's ``status`` answer."""
    if not status:
        return {"status": None}
    registrations = [
        {**r, "protocol": str(r.get("protocol") or "sip").upper()}
        for r in status.get("registrations") or []
        if isinstance(r, dict)
    ]
    calls_state = status.get("calls") or {}
    calls = calls_state.get("calls", []) if isinstance(calls_state, dict) else calls_state
    now = time.time()
    for c in calls:
        c["age"] = _age(now - float(c.get("start") or now))
    rejections = [
        {"listener": listener, "reason": reason, "count": count}
        for listener, reasons in sorted(
            ((status.get("counters") or {}).get("rejections") or {}).items()
        )
        for reason, count in sorted(reasons.items())
        if count
    ]
    trunks = status.get("trunks") or []
    return {
        "status": status,
        "dashboard_rows": DASHBOARD_ROWS,
        "phones": {
            "sip": len({r["device"] for r in registrations if r["protocol"] == "SIP"}),
            "sccp": len({r["device"] for r in registrations if r["protocol"] == "SCCP"}),
        },
        "registrations": registrations,
        "calls": calls,
        "rejections": rejections,
        "trunks_up": sum(1 for t in trunks if t.get("state") == "up"),
        "uptime": _age(float(status.get("uptime") or 0)),
    }


@router.get("/")
async def home(
    request: Request, principal: Annotated[Principal, require(Permission.AUTHENTICATED)]
) -> Response:
    """The dashboard; an end user (no live view) goes to the self-care portal."""
    if not principal.can(Permission.LIVE_READ):
        target = "/self" if principal.can(Permission.SELF) else "/devices"
        return RedirectResponse(target, status_code=303)
    status, why = await node_call(request, "status")
    until = datetime.now(UTC)
    since = until - timedelta(hours=DASHBOARD_HOURS)
    counts = await run_in_threadpool(ctx(request).cdrs.per_minute, since, until)
    return render(
        request,
        "dashboard.html",
        principal,
        title="Dashboard",
        why=why,
        hours=DASHBOARD_HOURS,
        chart=bar_chart(counts, f"Calls per minute, last {DASHBOARD_HOURS} hours"),
        **live_view(status),
        **web_view(request),
    )


@router.get("/dashboard/live")
async def dashboard_live(
    request: Request, principal: Annotated[Principal, require(Permission.LIVE_READ)]
) -> Response:
    status, why = await node_call(request, "status")
    return render(
        request, "_live.html", principal, why=why, **live_view(status), **web_view(request)
    )


router.include_router(pages_devices.router)
router.include_router(pages_dialplan.router)
router.include_router(pages_records.router)
router.include_router(pages_users.router)
router.include_router(pages_self.router)
