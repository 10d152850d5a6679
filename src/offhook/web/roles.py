"""Roles and what they may do: CallManager's functional groups for the web admin.

A permission is one kind of access (read the plan, write devices, ...); a
role is a fixed set of them. Every API route and page asks for exactly one
permission (``web.deps.require``), so what a role may do is this table and
nothing else. ``authenticated`` is held by every role: the routes that only
need a signed-in person (``/api/v1/me``, logout).

CTI (``cti``: the event WebSocket and the commands under ``/api/v1/cti``)
covers the devices listed on the user (``cti.scope``): the role ``cti-app``
is for applications (CTI and nothing else), an end user (``user``) may
watch and control their own phones; ``cti.all`` (full-admin) covers every
device and line.
"""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType
from typing import Final

__all__ = ["ROLE_PERMISSIONS", "SECTION_WRITE", "Permission", "permissions_of"]


class Permission(StrEnum):
    PLAN_READ = "plan.read"
    DEVICES_WRITE = "devices.write"
    DIALPLAN_WRITE = "dialplan.write"
    PLAN_IMPORT = "plan.import"
    USERS_READ = "users.read"
    USERS_WRITE = "users.write"
    AUDIT_READ = "audit.read"
    CDR_READ = "cdr.read"
    LIVE_READ = "live.read"
    SELF = "self"
    CTI = "cti"
    CTI_ALL = "cti.all"
    AUTHENTICATED = "authenticated"


_P = Permission

ROLE_PERMISSIONS: Final[MappingProxyType[str, frozenset[Permission]]] = MappingProxyType(
    {
        "full-admin": frozenset(Permission),
        "read-only": frozenset(
            {
                _P.AUTHENTICATED,
                _P.PLAN_READ,
                _P.USERS_READ,
                _P.AUDIT_READ,
                _P.CDR_READ,
                _P.LIVE_READ,
            }
        ),
        "phone-admin": frozenset(
            {_P.AUTHENTICATED, _P.PLAN_READ, _P.DEVICES_WRITE, _P.CDR_READ, _P.LIVE_READ}
        ),
        "dialplan-admin": frozenset(
            {_P.AUTHENTICATED, _P.PLAN_READ, _P.DIALPLAN_WRITE, _P.CDR_READ, _P.LIVE_READ}
        ),
        "user": frozenset({_P.AUTHENTICATED, _P.SELF, _P.CTI}),
        "cti-app": frozenset({_P.AUTHENTICATED, _P.CTI}),
    }
)
"""Role name (``db.users.ROLES``) -> the permissions it grants."""

_PLAN_SECTIONS = (
    "devices",
    "partitions",
    "calling_search_spaces",
    "trunks",
    "route_groups",
    "route_lists",
    "route_patterns",
    "translation_patterns",
    "moh_sources",
    "meetme",
    "media_resource_groups",
    "media_resource_lists",
    "line_groups",
    "hunt_lists",
    "hunt_pilots",
    "pickup_groups",
    "call_park",
    "cti_route_points",
    "cti_ports",
)

SECTION_WRITE: Final[MappingProxyType[str, Permission]] = MappingProxyType(
    {
        section: _P.DEVICES_WRITE if section == "devices" else _P.DIALPLAN_WRITE
        for section in _PLAN_SECTIONS
    }
)
"""Plan section (``PlanSpec`` field) -> the permission that writes it: devices
(with their lines and speed dials) for phone admins, the rest for dial plan admins."""


def permissions_of(role: str) -> frozenset[Permission]:
    """What ``role`` grants (nothing for a role this table does not know)."""
    return ROLE_PERMISSIONS.get(role, frozenset())
