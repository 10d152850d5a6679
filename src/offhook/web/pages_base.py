"""What every admin page shares: templates, the page route class, the menu, the node.

Pages are server-rendered Jinja2 templates (``web/templates``, autoescaped:
every value an administrator or a phone typed is shown as text) with htmx
for the live parts and for posting forms. The CSRF token of the session is
in ``<body hx-headers>`` (htmx sends it as ``X-CSRF-Token`` on every
request it makes) and in the hidden ``csrf_token`` field of plain forms.

:class:`PageRoute` turns the 401 of ``web.deps.require`` into a redirect to
``/login`` (an htmx request gets ``HX-Redirect``) and a 403 or 404 into a
page a person can read; the routes themselves carry their ``require`` like
every API route.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from offhook import __version__
from offhook.db.plan_edit import PlanEditor
from offhook.db.plan_export import export_plan
from offhook.db.plan_sections import SECTIONS
from offhook.ris.control import ControlError, NodeUnavailable
from offhook.web.deps import Principal, authenticate, ctx
from offhook.web.roles import Permission

__all__ = [
    "LIST_PAGE",
    "NAV",
    "PageRoute",
    "editor",
    "form_data",
    "node_call",
    "page_offset",
    "page_router",
    "plan_call",
    "plan_keys",
    "problems_of",
    "redirect",
    "render",
    "templates",
]

templates = Environment(
    loader=PackageLoader("offhook.web", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True, slots=True)
class NavItem:
    label: str
    href: str
    permission: Permission


NAV: tuple[NavItem, ...] = (
    NavItem("Dashboard", "/", Permission.LIVE_READ),
    NavItem("Devices", "/devices", Permission.PLAN_READ),
    NavItem("Call routing", "/dialplan", Permission.PLAN_READ),
    NavItem("Call records", "/cdrs", Permission.CDR_READ),
    NavItem("Users", "/users", Permission.USERS_READ),
    NavItem("Audit log", "/audit", Permission.AUDIT_READ),
    NavItem("My phones", "/self", Permission.SELF),
)
"""The menu bar; an item shows only to those who may open it."""


class PageRoute(APIRoute):
    """An HTML page: not authenticated -> the login page; refused -> a readable page."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                return await handler(request)
            except HTTPException as exc:
                return await _error_page(request, exc)

        return page


async def _error_page(request: Request, exc: HTTPException) -> Response:
    if exc.status_code == 401:
        target = "/login?next=" + quote(request.url.path, safe="/")
        if request.headers.get("hx-request"):
            return Response(status_code=200, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None and request.method in ("GET", "HEAD"):
        # Refused for want of a permission: who it is still frames the page.
        try:
            principal = await authenticate(request)
        except HTTPException:
            principal = None
    title = {403: "Not allowed", 404: "Not found"}.get(exc.status_code, "Cannot do that")
    message = str(exc.detail)
    needs = message.removeprefix("forbidden: needs ") if exc.status_code == 403 else ""
    if principal is not None and needs and needs != message:
        message = (
            f"Your role ({principal.user.role}) may not open this page: it needs {needs}. "
            "An administrator with the role full-admin can change roles."
        )
    if principal is None:
        return HTMLResponse(
            templates.get_template("refused.html").render(title=title, message=message),
            status_code=exc.status_code,
        )
    return render(
        request,
        "error.html",
        principal,
        status_code=exc.status_code,
        title=title,
        message=message,
    )


def page_router() -> APIRouter:
    """A router whose routes are :class:`PageRoute` and stay out of the OpenAPI document."""
    return APIRouter(route_class=PageRoute, include_in_schema=False)


def csrf_of(request: Request, principal: Principal) -> str:
    """The session's CSRF token ("" for a bearer-token request)."""
    if principal.session_id is None:
        return ""
    context = ctx(request)
    session = context.sessions.get(principal.session_id, context.clock())
    return session.csrf_token if session is not None else ""


def render(
    request: Request,
    template: str,
    principal: Principal,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """``template`` with the page frame's context (who, what they may do, the menu)."""
    perms = frozenset(p.value for p in principal.permissions)
    path = request.url.path
    nav = [
        {
            "label": item.label,
            "href": item.href,
            "active": path == item.href or (item.href != "/" and path.startswith(item.href)),
        }
        for item in NAV
        if item.permission.value in perms
    ]
    settings = ctx(request).settings
    html = templates.get_template(template).render(
        request=request,
        me=principal.user,
        perms=perms,
        csrf=csrf_of(request, principal),
        nav=nav,
        path=path,
        version=__version__,
        node_name=settings.node.name,
        **context,
    )
    return HTMLResponse(html, status_code=status_code, headers=headers)


def redirect(request: Request, target: str) -> Response:
    """After a successful form post: htmx follows ``HX-Redirect``, a plain form a 303."""
    if request.headers.get("hx-request"):
        return Response(status_code=200, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


async def form_data(request: Request) -> dict[str, str]:
    """The posted form, one text value per field (files and repeats ignored)."""
    form = await request.form()
    out: dict[str, str] = {}
    for key, value in form.multi_items():
        if isinstance(value, str) and key not in out:
            out[key] = value
    return out


def editor(request: Request) -> PlanEditor:
    """The plan editor over the app's database (the same one the plan API uses)."""
    context = ctx(request)
    return PlanEditor(context.engine, context.settings.sip.realm)


async def plan_keys(request: Request) -> dict[str, list[str]]:
    """Every section's keys, read from one export of the plan (not one per section)."""
    plan = await run_in_threadpool(export_plan, ctx(request).engine)
    return {
        name: [sec.key(entry) for entry in plan.get(name) or []] for name, sec in SECTIONS.items()
    }


async def plan_call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a (blocking, database) plan editor call in a worker thread."""
    return await run_in_threadpool(fn, *args, **kwargs)


async def node_call(request: Request, op: str, **args: Any) -> tuple[Any, str]:
    """Ask the node: (answer, "") or (None, why not) when it is down or refuses."""
    try:
        return await ctx(request).control.request(op, **args), ""
    except NodeUnavailable:
        return None, "node unavailable"
    except ControlError as exc:
        return None, str(exc) or "the node refused"
    except (ConnectionError, OSError, TimeoutError):
        return None, "node unavailable"


def problems_of(problems: list[tuple[str, str]] | list[dict[str, str]]) -> list[dict[str, str]]:
    """An editor's (location, message) pairs as ``{"loc", "msg"}`` mappings."""
    out = []
    for p in problems:
        if isinstance(p, Mapping):
            out.append({"loc": str(p.get("loc", "")), "msg": str(p.get("msg", ""))})
        else:
            loc, msg = p
            out.append({"loc": loc, "msg": msg})
    return out


LIST_PAGE = 100
"""Rows of a list page (phones, a call routing section); Previous/Next for the rest."""


def page_offset(request: Request) -> int:
    """The list page's ``offset`` query parameter (0 when absent or not a number)."""
    try:
        return max(0, int(request.query_params.get("offset", "0")))
    except ValueError:
        return 0
