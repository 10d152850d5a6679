"""HTML forms for plan objects, built from the plan's pydantic models.

Every plan section's model (``db.plan_spec``, ``db.plan_coverage``) says what
its fields are: :func:`form_fields` turns a model and an object (as the plan
API gives it) into :class:`FormField` descriptions the ``_fields.html``
macros render, and :func:`parse_form` turns the posted form back into the
plan's YAML-shaped mapping. Validation is not done here: the mapping goes
through ``db.plan_edit.PlanEditor`` exactly like an API or YAML change, and
its problems (``{"loc": "devices[alice].lines[0].dn", "msg": ...}``) are
shown next to the field whose form name is the location after the object
(:func:`field_errors`).

Form names are the plan's paths: ``name``, ``lines[0].dn``,
``lines[0].forward_all.destination``. Lists of names are one text input
(comma separated, in order); a list of objects (lines, speed dials, route
group members) is a fieldset per item plus one empty item to add; an item
left empty is dropped. Passwords are write-only: an empty password field
keeps the stored secret.
"""

from __future__ import annotations

import re
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

__all__ = [
    "FormField",
    "Row",
    "field_errors",
    "form_fields",
    "label_of",
    "parse_form",
    "posted",
    "row_indices",
    "split_fields",
    "split_list",
]

LABELS: dict[str, str] = {
    "dn": "Directory number",
    "css": "Calling search space",
    "max_calls": "Maximum calls",
    "max_cps": "Maximum new calls a second",
    "moh_source": "Music on hold source",
    "media_resource_list": "Media resource list",
    "dnd_option": "Do not disturb option",
    "cfna_timer": "No answer ring duration (s)",
    "forward_all": "Forward all",
    "forward_busy": "Forward busy (internal)",
    "forward_no_answer": "Forward no answer (internal)",
    "forward_unregistered": "Forward unregistered (internal)",
    "forward_busy_external": "Forward busy (external)",
    "forward_no_answer_external": "Forward no answer (external)",
    "forward_unregistered_external": "Forward unregistered (external)",
    "speed_dials": "Speed dials (SCCP phones)",
    "calling_search_spaces": "Calling search spaces",
    "route_list": "Route list",
    "block_cause": "Block cause (Q.850)",
    "called_transform": "Called party transformation",
    "calling_transform": "Calling party transformation",
    "options_ping": "OPTIONS ping interval (s)",
    "inbound_addresses": "Inbound addresses",
    "register": "Register with the carrier",
    "rna_timeout": "Ring no answer timeout (s)",
    "final_forward": "Final forward",
    "final_css": "Final forward CSS",
    "hunt_list": "Hunt list",
    "line_groups": "Line groups",
    "max_parties": "Maximum parties",
    "pin": "PIN",
    "pickup_group": "Call pickup group",
    "timeout": "Timeout (s)",
    "default": "Default destination",
}

ITEM_LABELS = {
    "lines": "Line",
    "speed_dials": "Speed dial",
    "members": "Member",
}

HELP: dict[str, str] = {
    "password": "SIP digest secret; leave empty to keep the stored one",
    "partitions": "In search order, comma separated",
    "groups": "In order, comma separated",
    "line_groups": "In order, comma separated",
    "servers": "In order, comma separated",
    "members": "Comma separated",
    "inbound_addresses": "Networks calls may come from, comma separated",
    "max_cps": "New calls a second the trunk may send (0: no limit); over it: 503",
    "dn": "Digits, * # +",
    "model": "SCCP: 7912, 7940, 7941, 7960, 7961, 7970, 7971",
    "timeout": "Seconds a call waits for the application (0.1-60)",
    "default": "Where a call goes then; empty: the caller gets busy",
}

ADVANCED: frozenset[str] = frozenset(
    {
        "max_calls",
        "max_cps",
        "moh_source",
        "media_resource_list",
        "dnd_option",
        "privacy",
        "forward_unregistered",
        "forward_busy_external",
        "forward_no_answer_external",
        "forward_unregistered_external",
        "cfna_timer",
        "pickup_group",
        "intercom",
        "urgent",
        "called_transform",
        "calling_transform",
        "options_ping",
        "inbound_addresses",
        "max_parties",
    }
)
"""Fields shown under "More settings" (CallManager pages fold the rarely used ones)."""

REFERENCES: dict[str, str] = {
    "css": "calling_search_spaces",
    "final_css": "calling_search_spaces",
    "partition": "partitions",
    "partitions": "partitions",
    "route_list": "route_lists",
    "moh_source": "moh_sources",
    "media_resource_list": "media_resource_lists",
    "pickup_group": "pickup_groups",
    "hunt_list": "hunt_lists",
    "trunk": "trunks",
    "line_groups": "line_groups",
}
"""Field -> the section whose names it may take (offered as suggestions)."""

_INDEX_RE = re.compile(r"\[(\d{1,3})\]")
_TRAILING_INDEX_RE = re.compile(r"\[\d+\]$")
_SPLIT_RE = re.compile(r"[,\n]")


@dataclass
class Row:
    """One item of a list of objects: its fields, the rarely used ones folded."""

    primary: list[FormField]
    advanced: list[FormField]
    new: bool = False
    advanced_open: bool = False


@dataclass
class FormField:
    name: str
    label: str
    kind: str  # text | password | number | checkbox | select | list | group | rows
    value: Any = None
    required: bool = False
    options: tuple[str, ...] = ()
    help: str = ""
    readonly: bool = False
    children: list[FormField] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    item_label: str = ""
    choices_id: str = ""
    choices: bool = False

    @property
    def display_value(self) -> str:
        if self.value is None:
            return ""
        if isinstance(self.value, list | tuple):
            return ", ".join(str(v) for v in self.value)
        if isinstance(self.value, float) and self.value.is_integer():
            return str(int(self.value))
        return str(self.value)


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """The annotation without ``Annotated`` and ``| None``; whether None was allowed."""
    optional = False
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            optional = optional or len(args) < len(get_args(annotation))
            annotation = args[0] if len(args) == 1 else str
        else:
            return annotation, optional


def _kind(annotation: Any) -> tuple[str, Any]:
    ann, _ = _unwrap(annotation)
    origin = get_origin(ann)
    if ann is bool:
        return "checkbox", None
    if ann in (int, float):
        return "number", ann
    if origin is Literal:
        return "select", tuple(str(a) for a in get_args(ann))
    if origin is list:
        inner, _ = _unwrap(get_args(ann)[0])
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            return "rows", inner
        return "list", None
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return "group", ann
    return "text", None


def _key(name: str, info: FieldInfo) -> str:
    return info.alias or name


def label_of(key: str) -> str:
    """A field's label as the forms and tables show it."""
    return _label(key)


def _label(key: str) -> str:
    return LABELS.get(key, key.replace("_", " ").capitalize())


def form_fields(
    model: type[BaseModel],
    obj: Mapping[str, Any] | None,
    *,
    prefix: str = "",
    readonly: frozenset[str] = frozenset(),
    new_rows: bool = True,
) -> list[FormField]:
    """The fields of ``model`` filled from ``obj`` (None: a new object, defaults shown).

    ``readonly``: top-level keys shown but not editable (an object's key on
    its edit page). ``new_rows``: add an empty item to each list of objects.
    """
    out: list[FormField] = []
    for name, info in model.model_fields.items():
        key = _key(name, info)
        path = f"{prefix}{key}"
        kind, extra = _kind(info.annotation)
        required = info.is_required()
        default = None if required else info.get_default(call_default_factory=True)
        if isinstance(default, BaseModel):
            default = default.model_dump(by_alias=True)
        value = obj.get(key, default) if obj is not None else default
        f = FormField(
            name=path,
            label=_label(key),
            kind="password" if key == "password" else kind,
            value=value,
            required=required,
            help=HELP.get(key, ""),
            readonly=key in readonly,
        )
        if key in REFERENCES and kind in ("text", "list"):
            f.choices_id = REFERENCES[key]
            f.choices = kind == "text"
        if kind == "select":
            f.options = extra
        elif kind == "group":
            sub = value if isinstance(value, Mapping) else None
            f.children = form_fields(extra, sub, prefix=f"{path}.", new_rows=new_rows)
            if _unwrap(info.annotation)[1]:
                # An optional group (a forward): its fields are needed only when it is used.
                for child in f.children:
                    child.required = False
        elif kind == "rows":
            f.item_label = ITEM_LABELS.get(key, "Item")
            items = list(value or [])
            for i, item in enumerate(items):
                f.rows.append(_row(extra, _item(extra, item), f"{path}[{i}].", new_rows))
            if new_rows and key not in readonly:
                blank = _row(extra, None, f"{path}[{len(items)}].", new_rows)
                blank.new = True
                f.rows.append(blank)
        out.append(f)
    return out


def _item(model: type[BaseModel], item: Any) -> Mapping[str, Any] | None:
    """A list item as a mapping (a route group member may be just a trunk name)."""
    if isinstance(item, Mapping):
        return item
    required = [n for n, i in model.model_fields.items() if i.is_required()]
    if isinstance(item, str) and len(required) == 1:
        return {required[0]: item}
    return None


def _row(model: type[BaseModel], obj: Mapping[str, Any] | None, prefix: str, new: bool) -> Row:
    fields_ = form_fields(model, obj, prefix=prefix, new_rows=new)
    primary = [f for f in fields_ if f.name.rsplit(".", 1)[-1] not in ADVANCED]
    advanced = [f for f in fields_ if f.name.rsplit(".", 1)[-1] in ADVANCED]
    is_set = obj is not None and any(
        obj.get(f.name.rsplit(".", 1)[-1]) not in (None, "", False, [], {}) for f in advanced
    )
    return Row(primary, advanced, advanced_open=is_set)


def split_fields(fields_: list[FormField]) -> tuple[list[FormField], list[FormField]]:
    """Top-level fields: (shown, folded under "More settings")."""
    return (
        [f for f in fields_ if f.name not in ADVANCED],
        [f for f in fields_ if f.name in ADVANCED],
    )


def posted(fields_: list[FormField]) -> dict[str, str]:
    """What a browser posts for ``fields_`` left as shown (checked boxes, current values,
    the empty new rows; passwords are never shown, so never posted)."""
    out: dict[str, str] = {}
    for f in fields_:
        if f.kind == "group":
            out.update(posted(f.children))
        elif f.kind == "rows":
            for row in f.rows:
                out.update(posted(row.primary + row.advanced))
        elif f.kind == "checkbox":
            if f.value:
                out[f.name] = "on"
        elif f.kind != "password":
            out[f.name] = f.display_value
    return out


def split_list(text: str) -> list[str]:
    """A comma- or newline-separated list, items stripped, empty ones dropped."""
    return [item.strip() for item in _SPLIT_RE.split(text) if item.strip()]


def parse_form(
    model: type[BaseModel], form: Mapping[str, str], *, prefix: str = ""
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The posted ``form`` as the plan's mapping for ``model``, and the problems of
    values that are not even the right type (a number field with letters)."""
    out: dict[str, Any] = {}
    problems: list[dict[str, str]] = []
    for name, info in model.model_fields.items():
        key = _key(name, info)
        path = f"{prefix}{key}"
        kind, extra = _kind(info.annotation)
        required = info.is_required()
        if kind == "checkbox":
            checked = form.get(path) == "on"
            if checked or info.get_default() is not False:
                out[key] = checked
        elif kind == "number":
            text = form.get(path, "").strip()
            if not text:
                continue
            try:
                out[key] = extra(text) if extra is int else float(text)
            except ValueError:
                what = "a whole number" if extra is int else "a number"
                problems.append({"loc": path, "msg": f"{text!r} is not {what}"})
            else:
                if extra is float and out[key].is_integer():
                    out[key] = int(out[key])
        elif kind == "list":
            items = split_list(form.get(path, ""))
            if items or required:
                out[key] = items
        elif kind == "group":
            sub, sub_problems = parse_form(extra, form, prefix=f"{path}.")
            problems.extend(sub_problems)
            if _meaningful(sub):
                out[key] = sub
        elif kind == "rows":
            rows: list[dict[str, Any]] = []
            for i in row_indices(form, path):
                sub, sub_problems = parse_form(extra, form, prefix=f"{path}[{i}].")
                if _meaningful(sub):
                    problems.extend(
                        {**p, "loc": p["loc"].replace(f"{path}[{i}].", f"{path}[{len(rows)}].")}
                        for p in sub_problems
                    )
                    rows.append(sub)
            if rows or required:
                out[key] = rows
        else:
            text = form.get(path, "")
            if kind != "password":
                text = text.strip()
            if text or required:
                out[key] = text
    return out, problems


def _meaningful(obj: Mapping[str, Any]) -> bool:
    """Whether a parsed group or item holds anything (an empty one is left out)."""
    return any(v not in (False, "", [], {}) for v in obj.values())


def row_indices(form: Mapping[str, str], path: str) -> list[int]:
    """The item numbers the form has for the list at ``path``, in order."""
    found: set[int] = set()
    start = f"{path}["
    for name in form:
        if name.startswith(start):
            m = _INDEX_RE.match(name, len(path))
            if m is not None:
                found.add(int(m.group(1)))
    return sorted(found)


def field_errors(
    problems: list[dict[str, Any]], section: str = ""
) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """Problems keyed by form field name, and every problem for the summary at the top.

    The editor's locations name the object first (``devices[alice].lines[0].dn``);
    the form's names start after it (``lines[0].dn``): ``section`` says what
    to strip. An item of a list of names (``partitions[1]``) belongs to the
    list's field. A problem about the whole object only appears in the summary.
    """
    by_field: dict[str, str] = {}
    strip = re.compile(rf"^{re.escape(section)}(?:\[[^\]]*\])?\.?") if section else None
    for p in problems:
        loc = str(p.get("loc", ""))
        name = strip.sub("", loc, count=1) if strip is not None else loc
        msg = str(p.get("msg", ""))
        for candidate in (name, _TRAILING_INDEX_RE.sub("", name)):
            if candidate and candidate not in by_field:
                by_field[candidate] = msg
    return by_field, problems
