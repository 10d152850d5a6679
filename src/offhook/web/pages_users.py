"""Users, roles and API tokens: the user management pages.

``/users`` lists the administrators and end users (role, devices,
enabled), the roles with what each may do (CallManager's functional
groups), and for those who manage users the API tokens (prefix, label,
last use; a new token is shown once, right after it is created, and only
its hash is kept). Forms go through ``db.users.UserStore`` with the same
checks as the API (``web.api_admin``): the last enabled full-admin cannot
be demoted, disabled or deleted; a new password, a disabled or deleted user
ends their sessions; every change is in the audit log.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from offhook.db.users import ROLES, LastAdmin, UnknownUser, UserExists, UserRecord
from offhook.web.deps import Principal, audit, ctx, require
from offhook.web.pages_base import form_data, page_router, plan_keys, redirect, render
from offhook.web.pages_forms import split_list
from offhook.web.roles import ROLE_PERMISSIONS, Permission

__all__ = ["router"]

router = page_router()

ROLE_TEXT = {
    "full-admin": "Everything, including users, tokens and the whole-plan import",
    "read-only": "Sees everything an administrator sees; changes nothing",
    "phone-admin": "Phones and their lines and speed dials",
    "dialplan-admin": "Partitions, calling search spaces, patterns, route lists and groups, trunks",
    "user": "Self-care only: their own phones' forwarding, DND, speed dials",
    "cti-app": "CTI applications: watch and control the devices listed on the user",
}


def user_json(user: UserRecord) -> dict[str, Any]:
    """A user as the audit log records it (as the API shows it; never a password)."""
    return {
        "name": user.name,
        "display": user.display,
        "role": user.role,
        "enabled": user.enabled,
        "devices": list(user.devices),
        "created_at": user.created_at.isoformat(),
        "updated_at": user.updated_at.isoformat(),
    }


def _roles() -> list[dict[str, Any]]:
    return [
        {
            "name": role,
            "text": ROLE_TEXT.get(role, ""),
            "permissions": sorted(p.value for p in ROLE_PERMISSIONS[role]),
        }
        for role in ROLES
    ]


async def _users_page(
    request: Request,
    principal: Principal,
    *,
    new_token: str = "",
    token_error: str = "",
    status_code: int = 200,
) -> Response:
    store = ctx(request).users
    users = await run_in_threadpool(store.list)
    can_write = principal.can(Permission.USERS_WRITE)
    tokens = await run_in_threadpool(store.tokens) if can_write else []
    known = None
    if principal.can(Permission.PLAN_READ):
        known = set((await plan_keys(request))["devices"])
    return render(
        request,
        "users.html",
        principal,
        status_code=status_code,
        title="Users",
        users=users,
        known_devices=known,
        roles=_roles(),
        tokens=tokens,
        can_write=can_write,
        new_token=new_token,
        token_error=token_error,
        saved=request.query_params.get("saved", ""),
        deleted=request.query_params.get("deleted", ""),
    )


@router.get("/users")
async def users_page(
    request: Request, principal: Annotated[Principal, require(Permission.USERS_READ)]
) -> Response:
    return await _users_page(request, principal)


def _user_form(
    request: Request,
    principal: Principal,
    user: UserRecord | None,
    values: dict[str, Any],
    errors: dict[str, str],
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "user_form.html",
        principal,
        status_code=status_code,
        title="New user" if user is None else f"User {user.name}",
        user=user,
        values=values,
        errors=errors,
        roles=ROLES,
        can_write=principal.can(Permission.USERS_WRITE),
    )


def _values(user: UserRecord | None) -> dict[str, Any]:
    if user is None:
        return {"name": "", "display": "", "role": "user", "devices": "", "enabled": True}
    return {
        "name": user.name,
        "display": user.display,
        "role": user.role,
        "devices": ", ".join(user.devices),
        "enabled": user.enabled,
    }


def _error_field(message: str) -> str:
    for name in ("password", "role", "devices", "display"):
        if name in message or (name == "display" and "display name" in message):
            return name
    return "name"


@router.get("/users/new")
async def user_new(
    request: Request, principal: Annotated[Principal, require(Permission.USERS_WRITE)]
) -> Response:
    return _user_form(request, principal, None, _values(None), {})


@router.post("/users/new")
async def user_create(
    request: Request, principal: Annotated[Principal, require(Permission.USERS_WRITE)]
) -> Response:
    form = await form_data(request)
    values: dict[str, Any] = {
        "name": form.get("name", "").strip(),
        "display": form.get("display", "").strip(),
        "role": form.get("role", ""),
        "devices": form.get("devices", ""),
        "enabled": form.get("enabled") == "on",
    }
    store = ctx(request).users
    try:
        user = await run_in_threadpool(
            lambda: store.add(
                values["name"],
                values["role"],
                form.get("password", ""),
                display=values["display"],
                devices=split_list(values["devices"]),
                enabled=values["enabled"],
            )
        )
    except UserExists as exc:
        return _user_form(request, principal, None, values, {"name": str(exc)}, 409)
    except ValueError as exc:
        return _user_form(request, principal, None, values, {_error_field(str(exc)): str(exc)}, 422)
    await run_in_threadpool(
        audit, request, principal, "create", "users", user.name, None, user_json(user)
    )
    return redirect(request, f"/users?saved={user.name}")


async def _get(request: Request, name: str) -> UserRecord | None:
    return await run_in_threadpool(ctx(request).users.get, name)


def _not_found(request: Request, principal: Principal, name: str) -> Response:
    return render(
        request,
        "error.html",
        principal,
        status_code=404,
        title="Not found",
        message=f"No user {name!r}.",
    )


@router.get("/users/{name}")
async def user_page(
    request: Request, name: str, principal: Annotated[Principal, require(Permission.USERS_READ)]
) -> Response:
    user = await _get(request, name)
    if user is None:
        return _not_found(request, principal, name)
    return _user_form(request, principal, user, _values(user), {})


@router.post("/users/{name}")
async def user_save(
    request: Request, name: str, principal: Annotated[Principal, require(Permission.USERS_WRITE)]
) -> Response:
    context = ctx(request)
    user = await _get(request, name)
    if user is None:
        return _not_found(request, principal, name)
    form = await form_data(request)
    values: dict[str, Any] = {
        "name": user.name,
        "display": form.get("display", "").strip(),
        "role": form.get("role", ""),
        "devices": form.get("devices", ""),
        "enabled": form.get("enabled") == "on",
    }
    password = form.get("password", "")
    try:
        updated = await run_in_threadpool(
            lambda: context.users.update(
                name,
                display=values["display"],
                role=values["role"],
                devices=split_list(values["devices"]),
                enabled=values["enabled"],
            )
        )
        if password:
            await run_in_threadpool(context.users.set_password, name, password)
    except UnknownUser:
        return _not_found(request, principal, name)
    except LastAdmin:
        return _user_form(
            request,
            principal,
            user,
            values,
            {"role": "The last enabled full-admin stays one (make another first)."},
            409,
        )
    except ValueError as exc:
        return _user_form(request, principal, user, values, {_error_field(str(exc)): str(exc)}, 422)
    if password or not updated.enabled:
        context.sessions.delete_user(name)
    before, after = user_json(user), user_json(updated)
    if before != after:
        await run_in_threadpool(audit, request, principal, "update", "users", name, before, after)
    if password:
        await run_in_threadpool(audit, request, principal, "password", "users", name)
    return redirect(request, f"/users?saved={name}")


@router.post("/users/{name}/delete")
async def user_delete(
    request: Request, name: str, principal: Annotated[Principal, require(Permission.USERS_WRITE)]
) -> Response:
    context = ctx(request)
    user = await _get(request, name)
    if user is None:
        return _not_found(request, principal, name)
    try:
        await run_in_threadpool(context.users.delete, name)
    except LastAdmin:
        return _user_form(
            request,
            principal,
            user,
            _values(user),
            {"name": "The last enabled full-admin cannot be deleted."},
            409,
        )
    context.sessions.delete_user(name)
    await run_in_threadpool(
        audit, request, principal, "delete", "users", name, user_json(user), None
    )
    return redirect(request, f"/users?deleted={name}")


def _token_json(token: Any) -> dict[str, Any]:
    return {
        "id": token.id,
        "user": token.user,
        "label": token.label,
        "prefix": token.prefix,
        "revoked_at": token.revoked_at.isoformat() if token.revoked_at else None,
    }


@router.post("/tokens/new")
async def token_create(
    request: Request, principal: Annotated[Principal, require(Permission.USERS_WRITE)]
) -> Response:
    form = await form_data(request)
    owner, label = form.get("user", "").strip(), form.get("label", "").strip()
    store = ctx(request).users
    try:
        record, plaintext = await run_in_threadpool(store.create_token, owner, label)
    except UnknownUser:
        return await _users_page(
            request, principal, token_error=f"No user {owner!r}.", status_code=404
        )
    except ValueError as exc:
        return await _users_page(request, principal, token_error=str(exc), status_code=422)
    await run_in_threadpool(
        audit, request, principal, "create", "tokens", str(record.id), None, _token_json(record)
    )
    return await _users_page(request, principal, new_token=plaintext)


@router.post("/tokens/{token_id}/revoke")
async def token_revoke(
    request: Request,
    token_id: int,
    principal: Annotated[Principal, require(Permission.USERS_WRITE)],
) -> Response:
    store = ctx(request).users
    tokens = await run_in_threadpool(store.tokens)
    before = next((t for t in tokens if t.id == token_id), None)
    if before is None or not await run_in_threadpool(store.revoke_token, token_id):
        return await _users_page(
            request, principal, token_error=f"No live token {token_id}.", status_code=404
        )
    tokens = await run_in_threadpool(store.tokens)
    after = next((t for t in tokens if t.id == token_id), None)
    await run_in_threadpool(
        audit,
        request,
        principal,
        "revoke",
        "tokens",
        str(token_id),
        _token_json(before),
        _token_json(after) if after else None,
    )
    return redirect(request, "/users")
