"""Editing the plan one object at a time: :class:`PlanEditor` (the REST API's plan store).

Every edit reads the whole plan from the database (``plan_export.export_plan``),
changes one entry, validates the whole edited plan as ``offhook load`` would
(``plan_check.parse_plan``) and writes it (``plan_apply.apply_plan`` with
``prune=True, keep_passwords=True``), so a change reaches running nodes
exactly as a load does: ``plan_version`` is bumped and they reload. Edits
are serialised by one process-wide lock.

Sections, keys, views, ETags and merge patches are ``plan_sections``'s. What
can go wrong is an exception: :class:`NotFound`, :class:`Invalid` (the
object itself is wrong: 422 with field locations), :class:`Conflict` (the
change breaks other objects, such as a delete of a partition a CSS lists:
409 with the problems, naming those objects; or the key is taken) and
:class:`PreconditionFailed` (``If-Match`` names another version: 412).

Passwords are write-only: no view carries one, a device without a
``password`` keeps its stored digest secrets and a trunk without one keeps
its stored password. :meth:`PlanEditor.import_plan` takes a whole plan as
YAML text and answers what it changes, per section (a dry run writes
nothing).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from offhook.db.models import Device, TrunkRow
from offhook.db.plan_apply import apply_plan, ha1
from offhook.db.plan_check import PlanError, parse_plan
from offhook.db.plan_export import dump_plan_yaml, export_plan
from offhook.db.plan_sections import (
    SECTIONS,
    Section,
    etag_of,
    if_match_ok,
    label_located,
    located,
    merge_patch,
    model_problems,
    plan_entry,
    plan_model,
    view_of,
)
from offhook.db.plan_spec import PlanSpec
from offhook.db.plan_yaml import parse_plan_text

__all__ = [
    "Conflict",
    "EditError",
    "Invalid",
    "NotFound",
    "PlanDiff",
    "PlanEditor",
    "PreconditionFailed",
]

Problems = list[tuple[str, str]]
PlanData = dict[str, list[Any]]
"""A plan as data, every section present (a list of its entries)."""

_LOCK = threading.Lock()
"""One edit at a time in this process (read, change, validate, write)."""


RENAME_NEEDS_PASSWORD = (
    "a renamed sip device needs its password again (only a hash of name and password is stored)"
)


def _still_uses(sec: Section, key: str, msg: str) -> str:
    """A referrer's problem after a delete, said as what it is: it still uses the
    entry ("partition 'lab' does not exist" read as if 'lab' had never been there)."""
    if f"{sec.noun} {key!r} does not exist" in msg:
        return f"still uses the {sec.noun} {key!r} (remove it there first)"
    return msg


class EditError(Exception):
    """A refused edit; ``problems`` are (location, message) pairs."""

    def __init__(self, message: str, problems: Problems | None = None) -> None:
        super().__init__(message)
        self.problems: Problems = problems or []


class NotFound(EditError):
    pass


class Invalid(EditError):
    pass


class Conflict(EditError):
    pass


class PreconditionFailed(EditError):
    pass


@dataclass(slots=True)
class SectionDiff:
    """What a new plan changes in one section: keys created and deleted, and
    per updated key the top-level fields that differ."""

    created: list[str] = field(default_factory=list)
    updated: dict[str, list[str]] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.created or self.updated or self.deleted)


@dataclass(slots=True)
class PlanDiff:
    """What importing a plan changes (or changed), section by section."""

    sections: dict[str, SectionDiff] = field(default_factory=dict)
    applied: bool = False
    plan_version: int | None = None

    @property
    def changed(self) -> bool:
        return any(self.sections.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "changed": self.changed,
            "applied": self.applied,
            "plan_version": self.plan_version,
            "sections": {
                name: {"created": d.created, "updated": d.updated, "deleted": d.deleted}
                for name, d in self.sections.items()
                if d
            },
        }


def _entries(data: Mapping[str, Any], name: str) -> list[Any]:
    value = data.get(name)
    return list(value) if isinstance(value, list) else []


class PlanEditor:
    """The plan in ``engine`` as objects: list, get, create, replace, patch, delete, import."""

    def __init__(self, engine: Engine, realm: str) -> None:
        self._engine = engine
        self._realm = realm

    # -- reading ---------------------------------------------------------

    def _data(self) -> PlanData:
        data = export_plan(self._engine)
        return {name: _entries(data, name) for name in SECTIONS}

    @staticmethod
    def _section(name: str) -> Section:
        try:
            return SECTIONS[name]
        except KeyError:
            raise NotFound(f"no plan section {name!r}") from None

    @staticmethod
    def _find(sec: Section, entries: list[Any], key: str) -> int:
        for i, entry in enumerate(entries):
            if sec.key(entry) == key:
                return i
        raise NotFound(f"{sec.noun} {key!r} does not exist")

    def list(self, section: str) -> list[dict[str, Any]]:
        """Every entry of ``section`` as API objects, in plan order."""
        sec = self._section(section)
        return [view_of(sec, plan_model(sec, e)) for e in self._data()[sec.name]]

    def get(self, section: str, key: str) -> tuple[dict[str, Any], str]:
        """One entry and its ETag."""
        sec = self._section(section)
        entries = self._data()[sec.name]
        view = view_of(sec, plan_model(sec, entries[self._find(sec, entries, key)]))
        return view, etag_of(view)

    def export_yaml(self) -> str:
        """The whole plan as ``offhook load`` reads it (no passwords)."""
        return dump_plan_yaml(export_plan(self._engine))

    # -- editing ---------------------------------------------------------

    def _validated(
        self, sec: Section, obj: Any, key_hint: str, *, creating: bool
    ) -> tuple[BaseModel, str]:
        """``obj`` as its section's model and its key, or :class:`Invalid`."""
        if not isinstance(obj, Mapping):
            raise Invalid(
                f"a {sec.noun} is a JSON object", [(f"{sec.name}[{key_hint}]", "not an object")]
            )
        hint = sec.key(obj) or key_hint
        try:
            model = sec.spec.model_validate(dict(obj))
        except ValidationError as exc:
            problems = model_problems(sec, hint, exc)
            raise Invalid(f"invalid {sec.noun}", problems) from None
        key = sec.key(view_of(sec, model))
        sip = sec.name == "devices" and getattr(model, "protocol", "") == "sip"
        if creating and sip and getattr(model, "password", None) is None:
            problems = [
                (f"devices[{key}].password", "a sip device needs a password (its digest secret)")
            ]
            raise Invalid("invalid device", problems)
        return model, key

    def _commit(
        self, data: PlanData, sec: Section, index: int | None, *, deleting: bool
    ) -> PlanSpec:
        """Validate the edited plan and write it; the problems of entry ``index`` of
        ``sec`` make it :class:`Invalid`, any other :class:`Conflict`."""
        try:
            plan = parse_plan(data, "plan")
        except PlanError as exc:
            own: Problems = []
            others: Problems = []
            for loc, msg in exc.problems:
                where, name, i = located(loc, data)
                mine = not deleting and name == sec.name and i == index
                (own if mine else others).append((where, msg))
            if own:
                raise Invalid(f"invalid {sec.noun}", own + others) from None
            what = "deleting" if deleting else "this change to"
            raise Conflict(f"{what} the {sec.noun} breaks other plan objects", others) from None
        try:
            apply_plan(self._engine, plan, self._realm, prune=True, keep_passwords=True)
        except PlanError as exc:  # a sip device with no password given nor stored
            problems = [(located(loc, data)[0], msg) for loc, msg in exc.problems]
            raise Invalid(f"invalid {sec.noun}", problems) from None
        return plan

    def _result(self, sec: Section, plan: PlanSpec, index: int) -> tuple[dict[str, Any], str]:
        view = view_of(sec, plan_model(sec, getattr(plan, sec.name)[index]))
        return view, etag_of(view)

    def create(self, section: str, obj: Any) -> tuple[dict[str, Any], str]:
        """Add an entry; :class:`Conflict` when its key is taken."""
        sec = self._section(section)
        model, key = self._validated(sec, obj, "new", creating=True)
        with _LOCK:
            data = self._data()
            entries = data[sec.name]
            if any(sec.key(e) == key for e in entries):
                raise Conflict(
                    f"{sec.noun} {key!r} already exists",
                    [(f"{sec.name}[{key}]", f"{sec.noun} {key!r} already exists")],
                )
            entries.append(plan_entry(sec, model))
            plan = self._commit(data, sec, len(entries) - 1, deleting=False)
            return self._result(sec, plan, len(entries) - 1)

    def _change(
        self, sec: Section, key: str, if_match: str | None, new: Any
    ) -> tuple[dict[str, Any], str]:
        """Replace entry ``key`` by ``new`` (API object, or a function of the current view)."""
        with _LOCK:
            data = self._data()
            entries = data[sec.name]
            index = self._find(sec, entries, key)
            current = view_of(sec, plan_model(sec, entries[index]))
            if not if_match_ok(if_match, etag_of(current)):
                raise PreconditionFailed(f"{sec.noun} {key!r} has changed (ETag mismatch)")
            obj = new(current) if callable(new) else new
            model, new_key = self._validated(sec, obj, key, creating=False)
            renamed_sip = sec.name == "devices" and getattr(model, "protocol", "") == "sip"
            if new_key != key and renamed_sip and getattr(model, "password", None) is None:
                # The digest secret is stored as HA1(name:realm:password): a new name needs it.
                raise Invalid(
                    "invalid device",
                    [(f"devices[{new_key}].password", RENAME_NEEDS_PASSWORD)],
                )
            if new_key != key and any(sec.key(e) == new_key for e in entries):
                raise Conflict(
                    f"{sec.noun} {new_key!r} already exists",
                    [(f"{sec.name}[{key}]", f"{sec.noun} {new_key!r} already exists")],
                )
            entries[index] = plan_entry(sec, model)
            plan = self._commit(data, sec, index, deleting=False)
            return self._result(sec, plan, index)

    def replace(
        self, section: str, key: str, obj: Any, if_match: str | None = None
    ) -> tuple[dict[str, Any], str]:
        """PUT: the entry becomes ``obj`` (absent fields take their defaults;
        an absent password keeps the stored one)."""
        return self._change(self._section(section), key, if_match, obj)

    def patch(
        self, section: str, key: str, partial: Any, if_match: str | None = None
    ) -> tuple[dict[str, Any], str]:
        """PATCH: ``partial`` merged into the entry (RFC 7396); absent fields keep their value."""
        sec = self._section(section)
        if not isinstance(partial, Mapping):
            raise Invalid("a patch is a JSON object", [(f"{sec.name}[{key}]", "not an object")])
        return self._change(sec, key, if_match, lambda current: merge_patch(current, partial))

    def delete(self, section: str, key: str, if_match: str | None = None) -> dict[str, Any]:
        """Remove an entry (:class:`Conflict` naming whatever still refers to it);
        answers the entry as it was."""
        sec = self._section(section)
        with _LOCK:
            data = self._data()
            entries = data[sec.name]
            index = self._find(sec, entries, key)
            current = view_of(sec, plan_model(sec, entries[index]))
            if not if_match_ok(if_match, etag_of(current)):
                raise PreconditionFailed(f"{sec.noun} {key!r} has changed (ETag mismatch)")
            del entries[index]
            try:
                self._commit(data, sec, None, deleting=True)
            except Conflict as exc:
                problems = [(loc, _still_uses(sec, key, msg)) for loc, msg in exc.problems]
                raise Conflict(str(exc), problems) from None
            return current

    # -- the whole plan --------------------------------------------------

    def import_plan(self, text: str | bytes, *, dry_run: bool) -> PlanDiff:
        """Make the plan ``text`` (YAML, ``offhook load``'s format) the whole plan.

        Devices and trunks without a password keep theirs (a new sip device
        needs one). The diff says what changes; with ``dry_run`` nothing is
        written.
        """
        try:
            plan = parse_plan_text(text, "import")
        except PlanError as exc:
            problems = [(label_located(loc), msg) for loc, msg in exc.problems]
            raise Invalid("invalid plan", problems) from None
        with _LOCK:
            stored_ha1, stored_trunk = self._secrets()
            missing = [
                (f"devices[{d.name}].password", "a new sip device needs a password")
                for d in plan.devices
                if d.protocol == "sip" and d.password is None and not stored_ha1.get(d.name)
            ]
            if missing:
                raise Invalid("invalid plan", missing)
            diff = self._diff(self._data(), plan, stored_ha1, stored_trunk)
            if not dry_run:
                try:
                    report = apply_plan(
                        self._engine, plan, self._realm, prune=True, keep_passwords=True
                    )
                except PlanError as exc:
                    problems = [(label_located(loc), msg) for loc, msg in exc.problems]
                    raise Invalid("invalid plan", problems) from None
                diff.applied = True
                diff.plan_version = report.version
        return diff

    def _diff(
        self,
        data: PlanData,
        plan: PlanSpec,
        stored_ha1: dict[str, str],
        stored_trunk: dict[str, str],
    ) -> PlanDiff:
        out = PlanDiff()
        for sec in SECTIONS.values():
            before = {sec.key(e): view_of(sec, plan_model(sec, e)) for e in data[sec.name]}
            after_models = {
                sec.key(view_of(sec, m)): m
                for m in (plan_model(sec, e) for e in getattr(plan, sec.name))
            }
            d = SectionDiff()
            for key, model in after_models.items():
                view = view_of(sec, model)
                if key not in before:
                    d.created.append(key)
                    continue
                fields = [f for f in view if view.get(f) != before[key].get(f)]
                password = getattr(model, "password", None)
                if sec.name == "devices" and password is not None:
                    if stored_ha1.get(key) != ha1("md5", key, self._realm, password) + self._realm:
                        fields.append("password")
                elif sec.name == "trunks" and password and stored_trunk.get(key) != password:
                    fields.append("password")
                if fields:
                    d.updated[key] = fields
            d.deleted = [key for key in before if key not in after_models]
            out.sections[sec.name] = d
        return out

    def _secrets(self) -> tuple[dict[str, str], dict[str, str]]:
        """Stored sip device secrets (MD5 HA1 and realm, one text) and trunk
        passwords, by name; a device without a stored secret is left out."""
        with Session(self._engine) as session:
            devices = {
                name: md5 + realm
                for name, md5, realm in session.execute(
                    select(Device.name, Device.ha1_md5, Device.realm).where(
                        Device.protocol == "sip"
                    )
                )
                if md5
            }
            trunks = {
                name: password
                for name, password in session.execute(select(TrunkRow.name, TrunkRow.password))
            }
        return devices, trunks
