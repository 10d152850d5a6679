"""Users, roles, API tokens and the audit log: ``/api/v1/users|roles|tokens|audit``.

Users: list and get (``users.read``); create, PATCH (only the fields given;
``password`` is write-only and never shown) and delete (``users.write``).
A change that would leave no enabled ``full-admin`` is refused (409, from
``db.users.LastAdmin``), so an admin cannot lock everyone out. Disabling a
user, deleting them or setting their password ends their sessions at once.

Tokens (``users.write``): created for a user and shown once in the answer,
listed (prefix, label, use; never the token), revoked by id.

Every change is recorded in the audit log (who, from where, the object
before and after; never a password). The log is read back with filters and
paging, or exported as CSV (``/api/v1/audit.csv``).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from offhook.db.audit import AuditEntry
from offhook.db.users import ROLES, LastAdmin, TokenRecord, UnknownUser, UserExists, UserRecord
from offhook.web.deps import AUTH_ERRORS, Principal, audit, ctx, error_responses, require
from offhook.web.roles import ROLE_PERMISSIONS, Permission

__all__ = ["router", "user_json"]

router = APIRouter(prefix="/api/v1", tags=["users"], responses=AUTH_ERRORS)

MAX_PAGE = 500
MAX_CSV_ROWS = 10_000


class UserOut(BaseModel):
    name: str
    display: str
    role: str
    enabled: bool
    devices: list[str]
    created_at: datetime
    updated_at: datetime


class UserList(BaseModel):
    items: list[UserOut]
    total: int


class UserCreate(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    role: str = Field(json_schema_extra={"enum": list(ROLES)})
    password: str = Field(min_length=8, max_length=1024)
    display: str = Field(default="", max_length=128)
    devices: list[str] = Field(default_factory=list, max_length=256)
    enabled: bool = True


class UserPatch(BaseModel):
    display: str | None = Field(default=None, max_length=128)
    role: str | None = Field(default=None, json_schema_extra={"enum": list(ROLES)})
    devices: list[str] | None = Field(default=None, max_length=256)
    enabled: bool | None = None
    password: str | None = Field(default=None, min_length=8, max_length=1024)


class RoleOut(BaseModel):
    name: str
    permissions: list[str]


class TokenOut(BaseModel):
    id: int
    user: str
    label: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenCreate(BaseModel):
    user: str = Field(min_length=1, max_length=64)
    label: str = Field(default="", max_length=128)


class TokenCreated(TokenOut):
    token: str = Field(description="The token itself: shown once, never again")


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str
    source: str
    action: str
    object_type: str
    object_key: str
    before: Any
    after: Any


class AuditList(BaseModel):
    items: list[AuditOut]
    total: int


def user_json(user: UserRecord) -> dict[str, Any]:
    """A user as the API shows it (never a password)."""
    return UserOut(
        name=user.name,
        display=user.display,
        role=user.role,
        enabled=user.enabled,
        devices=list(user.devices),
        created_at=user.created_at,
        updated_at=user.updated_at,
    ).model_dump(mode="json")


def _token_out(token: TokenRecord) -> TokenOut:
    return TokenOut(
        id=token.id,
        user=token.user,
        label=token.label,
        prefix=token.prefix,
        created_at=token.created_at,
        last_used_at=token.last_used_at,
        revoked_at=token.revoked_at,
    )


def _audit_out(entry: AuditEntry) -> AuditOut:
    return AuditOut(
        id=entry.id,
        at=entry.at,
        actor=entry.actor,
        source=entry.source,
        action=entry.action,
        object_type=entry.object_type,
        object_key=entry.object_key,
        before=entry.before,
        after=entry.after,
    )


# --- roles ---------------------------------------------------------------------


@router.get("/roles", response_model=list[RoleOut])
async def list_roles(
    _: Annotated[Principal, require(Permission.USERS_READ)],
) -> list[RoleOut]:
    return [
        RoleOut(name=role, permissions=sorted(p.value for p in ROLE_PERMISSIONS[role]))
        for role in ROLES
    ]


# --- users ---------------------------------------------------------------------


@router.get("/users", response_model=UserList)
async def list_users(
    request: Request,
    _: Annotated[Principal, require(Permission.USERS_READ)],
    q: Annotated[str | None, Query(max_length=64)] = None,
    role: Annotated[str | None, Query(max_length=32)] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> Any:
    users = await run_in_threadpool(ctx(request).users.list)
    if q:
        users = [u for u in users if q.lower() in u.name.lower()]
    if role:
        users = [u for u in users if u.role == role]
    page = users[offset : offset + limit]
    return {"items": [user_json(u) for u in page], "total": len(users)}


def _get_user(request: Request, name: str) -> UserRecord:
    user = ctx(request).users.get(name)
    if user is None:
        raise HTTPException(status_code=404, detail=f"no user {name!r}")
    return user


@router.get("/users/{name}", response_model=UserOut, responses=error_responses(404))
async def get_user(
    request: Request,
    name: str,
    _: Annotated[Principal, require(Permission.USERS_READ)],
) -> Any:
    return user_json(_get_user(request, name))


def _check_role(role: str | None) -> None:
    if role is not None and role not in ROLES:
        raise HTTPException(
            status_code=422,
            detail=[{"loc": "role", "msg": f"{role!r} is not a role ({', '.join(ROLES)})"}],
        )


@router.post("/users", response_model=UserOut, status_code=201, responses=error_responses(409, 422))
async def create_user(
    request: Request,
    body: UserCreate,
    principal: Annotated[Principal, require(Permission.USERS_WRITE)],
) -> Any:
    _check_role(body.role)
    users = ctx(request).users
    try:
        user = users.add(
            body.name,
            body.role,
            body.password,
            display=body.display,
            devices=body.devices,
            enabled=body.enabled,
        )
    except UserExists:
        raise HTTPException(status_code=409, detail=f"user {body.name!r} exists already") from None
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=[{"loc": "body", "msg": str(exc)}]) from None
    after = user_json(user)
    audit(request, principal, "create", "users", user.name, None, after)
    return after


@router.patch("/users/{name}", response_model=UserOut, responses=error_responses(404, 409, 422))
async def patch_user(
    request: Request,
    name: str,
    body: UserPatch,
    principal: Annotated[Principal, require(Permission.USERS_WRITE)],
) -> Any:
    _check_role(body.role)
    context = ctx(request)
    before_user = _get_user(request, name)
    try:
        user = context.users.update(
            name, display=body.display, role=body.role, devices=body.devices, enabled=body.enabled
        )
        if body.password is not None:
            context.users.set_password(name, body.password)
    except UnknownUser:
        raise HTTPException(status_code=404, detail=f"no user {name!r}") from None
    except LastAdmin:
        raise HTTPException(
            status_code=409, detail="the last enabled full-admin stays one"
        ) from None
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=[{"loc": "body", "msg": str(exc)}]) from None
    if body.password is not None or not user.enabled:
        context.sessions.delete_user(name)
    before, after = user_json(before_user), user_json(user)
    if before != after:
        audit(request, principal, "update", "users", name, before, after)
    if body.password is not None:
        audit(request, principal, "password", "users", name)
    return after


@router.delete("/users/{name}", status_code=204, responses=error_responses(404, 409))
async def delete_user(
    request: Request,
    name: str,
    principal: Annotated[Principal, require(Permission.USERS_WRITE)],
) -> Response:
    context = ctx(request)
    user = _get_user(request, name)
    try:
        deleted = context.users.delete(name)
    except LastAdmin:
        raise HTTPException(status_code=409, detail="the last enabled full-admin stays") from None
    if not deleted:
        raise HTTPException(status_code=404, detail=f"no user {name!r}")
    context.sessions.delete_user(name)
    audit(request, principal, "delete", "users", name, user_json(user), None)
    return Response(status_code=204)


# --- tokens --------------------------------------------------------------------


@router.get("/tokens", response_model=list[TokenOut])
async def list_tokens(
    request: Request,
    _: Annotated[Principal, require(Permission.USERS_WRITE)],
    user: Annotated[str | None, Query(max_length=64)] = None,
) -> Any:
    return [_token_out(t) for t in ctx(request).users.tokens(user)]


@router.post(
    "/tokens", response_model=TokenCreated, status_code=201, responses=error_responses(404, 422)
)
async def create_token(
    request: Request,
    body: TokenCreate,
    principal: Annotated[Principal, require(Permission.USERS_WRITE)],
) -> Any:
    try:
        record, plaintext = ctx(request).users.create_token(body.user, body.label)
    except UnknownUser:
        raise HTTPException(status_code=404, detail=f"no user {body.user!r}") from None
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=[{"loc": "label", "msg": str(exc)}]) from None
    out = _token_out(record)
    audit(request, principal, "create", "tokens", str(record.id), None, out.model_dump(mode="json"))
    return TokenCreated(**out.model_dump(), token=plaintext)


@router.delete("/tokens/{token_id}", status_code=204, responses=error_responses(404))
async def revoke_token(
    request: Request,
    token_id: int,
    principal: Annotated[Principal, require(Permission.USERS_WRITE)],
) -> Response:
    context = ctx(request)
    before = next((t for t in context.users.tokens() if t.id == token_id), None)
    if before is None or not context.users.revoke_token(token_id):
        raise HTTPException(status_code=404, detail=f"no live token {token_id}")
    after = next((t for t in context.users.tokens() if t.id == token_id), None)
    audit(
        request,
        principal,
        "revoke",
        "tokens",
        str(token_id),
        _token_out(before).model_dump(mode="json"),
        _token_out(after).model_dump(mode="json") if after else None,
    )
    return Response(status_code=204)


# --- audit log -----------------------------------------------------------------


class _AuditQuery(BaseModel):
    since: datetime | None = None
    until: datetime | None = None
    actor: str | None = Field(default=None, max_length=64)
    object_type: str | None = Field(default=None, max_length=64)


@router.get("/audit", response_model=AuditList)
async def list_audit(
    request: Request,
    _: Annotated[Principal, require(Permission.AUDIT_READ)],
    query: Annotated[_AuditQuery, Query()],
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> Any:
    log = ctx(request).audit
    filters = query.model_dump()
    entries = await run_in_threadpool(lambda: log.search(**filters, limit=limit, offset=offset))
    total = await run_in_threadpool(lambda: log.count(**filters))
    return {"items": [_audit_out(e).model_dump(mode="json") for e in entries], "total": total}


_CSV_FIELDS = ("at", "actor", "source", "action", "object_type", "object_key", "before", "after")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    """One CSV cell; text a spreadsheet would run as a formula is quoted with '."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return "'" + text if text.startswith(_FORMULA) else text


@router.get(
    "/audit.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "the audit log as CSV"}},
)
async def audit_csv(
    request: Request,
    _: Annotated[Principal, require(Permission.AUDIT_READ)],
    query: Annotated[_AuditQuery, Query()],
    limit: Annotated[int, Query(ge=1, le=MAX_CSV_ROWS)] = MAX_CSV_ROWS,
) -> Response:
    log = ctx(request).audit
    filters = query.model_dump()

    def rows() -> list[AuditEntry]:
        out: list[AuditEntry] = []
        while len(out) < limit:
            page = log.search(**filters, limit=min(1000, limit - len(out)), offset=len(out))
            out.extend(page)
            if not page:
                break
        return out

    entries = await run_in_threadpool(rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(_CSV_FIELDS)
    for e in entries:
        writer.writerow([_cell(getattr(e, f)) for f in _CSV_FIELDS])
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
    )
