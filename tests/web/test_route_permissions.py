"""Every route of the app against every role: the permission table is what is enforced.

The test walks ``app.routes`` (so a route added tomorrow is walked too):
a route either is in ``PUBLIC_ROUTES`` and carries no ``require``, or
carries exactly one ``require(permission)``. Then each protected route is
called with every method it has, anonymously (401) and with the API token
of every role: a role without the permission gets 403 naming it; a role
with it gets past the check (whatever the route then answers: 200, 404
for the made-up key, 422 for the empty body, 503 for the absent node), and
nothing answers 5xx other than 503.
"""

from __future__ import annotations

import inspect
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute, APIWebSocketRoute, RouteContext
from starlette.routing import Mount

from offhook.db.users import ROLES
from offhook.web.deps import PUBLIC_ROUTES, app_routes, route_permission, route_permissions
from offhook.web.roles import ROLE_PERMISSIONS, Permission


def _public(path: str) -> bool:
    return path in PUBLIC_ROUTES or any(
        path.startswith(p + "/") for p in PUBLIC_ROUTES if p == "/static"
    )


def unprotected_routes(app: FastAPI) -> list[str]:
    """Routes that break the rule (public but checked, or protected by none or several)."""
    bad = []
    for route in app_routes(app):
        path = route.path_format or ""
        found = route_permissions(route)
        kind = route.original_route
        if _public(path):
            if found:
                bad.append(f"{path}: public but requires {found}")
        elif isinstance(kind, (APIRoute, APIWebSocketRoute)):  # the CTI WebSocket: require_ws
            if len(found) != 1:
                bad.append(f"{path}: requires {found or 'nothing'}")
        elif isinstance(kind, Mount):
            bad.append(f"{path}: a mount outside PUBLIC_ROUTES")
        else:
            bad.append(f"{path}: a {type(kind).__name__} outside PUBLIC_ROUTES")
    return bad


def test_every_route_is_public_or_requires_one_permission(web_app: FastAPI) -> None:
    assert unprotected_routes(web_app) == []
    protected = [r for r in app_routes(web_app) if route_permissions(r)]
    assert len(protected) >= 10


def test_a_new_route_without_a_check_is_caught(web_app: FastAPI) -> None:
    @web_app.get("/api/v1/naked")
    async def naked() -> dict[str, str]:
        return {"secret": "yes"}

    assert unprotected_routes(web_app) == ["/api/v1/naked: requires nothing"]


def _path_value(route: RouteContext, name: str) -> str:
    for param in route.dependant.path_params:
        if param.name == name:
            annotation = param.field_info.annotation
            if inspect.isclass(annotation) and issubclass(annotation, int):
                return "999999"
    return "no-such-thing"


def _url(route: RouteContext) -> str:
    path = route.path_format or ""
    for param in route.dependant.path_params:
        path = path.replace("{" + param.name + "}", _path_value(route, param.name))
    return path


def _body(method: str) -> dict[str, Any]:
    return {"json": {}} if method in {"POST", "PUT", "PATCH"} else {}


def _api_routes(app: FastAPI) -> list[tuple[RouteContext, str, Permission]]:
    out = []
    for route in app_routes(app):
        if not isinstance(route.original_route, APIRoute):
            continue
        permission = route_permission(route)
        if permission is None:
            continue
        for method in sorted((route.methods or set()) - {"HEAD"}):
            out.append((route, method, permission))
    return out


def _refused_for(answer: httpx.Response, permission: Permission) -> bool:
    return answer.status_code == 403 and f"needs {permission.value}" in answer.text


def _anonymous_refused(answer: httpx.Response) -> bool:
    if answer.status_code == 401:
        return True
    location = answer.headers.get("location", "")
    return answer.status_code in {302, 303, 307} and location.startswith("/login")


async def test_each_role_allowed_and_refused_on_each_route(
    web_app: FastAPI, client: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    routes = _api_routes(web_app)
    assert routes
    problems: list[str] = []
    for route, method, permission in routes:
        url = _url(route)
        anonymous = await client.request(method, url, **_body(method))
        if not _anonymous_refused(anonymous):
            problems.append(f"anonymous {method} {url}: {anonymous.status_code}")
        for role in ROLES:
            answer = await client.request(
                method,
                url,
                headers={"Authorization": f"Bearer {tokens[role]}"},
                **_body(method),
            )
            allowed = permission in ROLE_PERMISSIONS[role]
            what = f"{role} {method} {url} ({permission.value}): {answer.status_code}"
            if answer.status_code >= 500 and answer.status_code != 503:
                problems.append(f"{what} server error {answer.text[:200]}")
            elif allowed and (answer.status_code == 401 or _refused_for(answer, permission)):
                problems.append(f"{what} refused but allowed")
            elif not allowed and not _refused_for(answer, permission):
                problems.append(f"{what} not refused: {answer.text[-600:]}")
    assert problems == [], "\n".join(problems)


def test_role_table_covers_every_role() -> None:
    assert set(ROLE_PERMISSIONS) == set(ROLES)
    assert ROLE_PERMISSIONS["full-admin"] == frozenset(Permission)
    assert ROLE_PERMISSIONS["user"] == {Permission.SELF, Permission.CTI, Permission.AUTHENTICATED}
    assert ROLE_PERMISSIONS["cti-app"] == {Permission.CTI, Permission.AUTHENTICATED}
    for role, permissions in ROLE_PERMISSIONS.items():
        assert Permission.AUTHENTICATED in permissions, role


PUBLIC = {"/api/v1/login", "/api/v1/health", "/healthz", "/readyz", "/static", "/login"}
"""Issue 11: no route without authentication except logging in and health (the
login page's stylesheet under /static included); issue 12: the liveness and
readiness probes."""


def test_only_login_and_health_are_public(web_app: FastAPI) -> None:
    assert PUBLIC_ROUTES == PUBLIC
    served = {r.path_format for r in app_routes(web_app)}
    assert served | {"/static"} >= PUBLIC


async def test_the_openapi_document_needs_a_signed_in_user(
    client: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    anonymous = await client.get("/api/v1/openapi.json")
    assert anonymous.status_code == 401
    for role in ROLES:  # any role may read it (it holds no data)
        signed_in = {"Authorization": f"Bearer {tokens[role]}"}
        doc = await client.get("/api/v1/openapi.json", headers=signed_in)
        assert doc.status_code == 200 and "/api/v1/devices" in doc.json()["paths"], role
    # No Swagger UI (its scripts would come from a CDN).
    for path in ("/api/v1/docs", "/docs", "/redoc", "/openapi.json"):
        assert (await client.get(path)).status_code in {401, 404}, path
