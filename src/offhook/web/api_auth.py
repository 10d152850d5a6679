"""Logging in and out, and who am I: ``/api/v1/login``, ``/api/v1/logout``, ``/api/v1/me``.

``POST /api/v1/login`` takes JSON ``{"username", "password"}``; on success it
sets the session cookie (a new session id every time) and answers
``{"user", "role", "csrf_token"}``; the CSRF token goes in the
``X-CSRF-Token`` header of every later state-changing request. Unknown
users and wrong passwords get the same 401; a source with too many failed
logins gets 429 with Retry-After (``web.security``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, Field

from offhook.web.deps import (
    AUTH_ERRORS,
    Principal,
    client_host,
    ctx,
    error_responses,
    require,
)
from offhook.web.roles import Permission
from offhook.web.security import (
    MAX_PASSWORD,
    MAX_USERNAME,
    LoginRefused,
    clear_session_cookie,
    login,
    set_session_cookie,
)
from offhook.web.sessions import COOKIE_NAME

__all__ = ["INVALID_LOGIN", "LoginAnswer", "LoginRequest", "router"]

router = APIRouter(prefix="/api/v1", tags=["auth"])

INVALID_LOGIN = "invalid username or password"


class LoginRequest(BaseModel):
    username: str = Field(max_length=MAX_USERNAME)
    password: str = Field(max_length=MAX_PASSWORD)


class LoginAnswer(BaseModel):
    user: str
    role: str
    csrf_token: str


class Me(BaseModel):
    user: str
    display: str
    role: str
    permissions: list[str]
    devices: list[str]
    via: str
    csrf_token: str | None = None


@router.post(
    "/login",
    response_model=LoginAnswer,
    responses=error_responses(400, 401, 429),
)
async def post_login(body: LoginRequest, request: Request, response: Response) -> LoginAnswer:
    context = ctx(request)
    try:
        session = await login(context, body.username, body.password, client_host(request))
    except LoginRefused as exc:
        raise HTTPException(
            status_code=429,
            detail="too many failed logins",
            headers={"Retry-After": str(exc.retry_after)},
        ) from None
    if session is None:
        raise HTTPException(status_code=401, detail=INVALID_LOGIN)
    old = request.cookies.get(COOKIE_NAME)
    if old:
        context.sessions.delete(old)
    user = context.users.get(session.user)
    set_session_cookie(response, context.settings, session)
    source = client_host(request)
    context.audit.record(session.user, source, "login", "sessions", session.user)
    return LoginAnswer(
        user=session.user, role=user.role if user else "", csrf_token=session.csrf_token
    )


@router.post("/logout", status_code=204, responses=AUTH_ERRORS)
async def post_logout(
    request: Request,
    principal: Annotated[Principal, require(Permission.AUTHENTICATED)],
) -> Response:
    context = ctx(request)
    if principal.session_id is not None:
        context.sessions.delete(principal.session_id)
        source = client_host(request)
        context.audit.record(principal.name, source, "logout", "sessions", principal.name)
    response = Response(status_code=204)
    clear_session_cookie(response, context.settings)
    return response


@router.get("/me", response_model=Me, responses=AUTH_ERRORS)
async def get_me(
    request: Request,
    principal: Annotated[Principal, require(Permission.AUTHENTICATED)],
) -> Any:
    csrf = None
    if principal.session_id is not None:
        session = ctx(request).sessions.get(principal.session_id, ctx(request).clock())
        csrf = session.csrf_token if session else None
    user = principal.user
    return Me(
        user=user.name,
        display=user.display,
        role=user.role,
        permissions=sorted(p.value for p in principal.permissions),
        devices=list(user.devices),
        via=principal.via,
        csrf_token=csrf,
    )
