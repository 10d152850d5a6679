"""atheris fuzz target for the plan API's editor (``offhook.db.plan_edit.PlanEditor``).

What a REST client sends the plan API, as the editor gets it: a section
name, a key, a JSON body (create, replace, patch) and an ``If-Match`` value,
applied to a database holding a small valid plan (in-memory SQLite, schema
upgraded once, the plan reloaded before each input). The input is JSON text
``{"op", "section", "key", "body", "if_match"}`` (or anything else: then it
is the body of a create in the section the first byte picks).

Invariants: an edit either succeeds or raises the editor's own error
(``NotFound``, ``Invalid``, ``Conflict``, ``PreconditionFailed``), and an
``Invalid`` or ``Conflict`` has located problems (``section[key]...``) and
changed nothing in the database; a success answers a view without secrets
whose ETag ``get`` answers again; ``merge_patch`` and ``if_match_ok`` take any
value without raising.

Run it bounded (libFuzzer flags pass through)::

    python fuzz/fuzz_plan_edit.py -max_total_time=60 -max_len=4096 fuzz/corpus/fuzz_plan_edit
"""

from __future__ import annotations

import json
import sys
from typing import Any

import atheris
from sqlalchemy import create_engine
from sqlalchemy.pool import StaticPool

with atheris.instrument_imports():
    from offhook.db.plan_edit import (
        Conflict,
        EditError,
        Invalid,
        NotFound,
        PlanEditor,
        PreconditionFailed,
    )
    from offhook.db.plan_sections import SECTIONS, etag_of, if_match_ok, merge_patch

from offhook.db.engine import upgrade
from offhook.db.plan_apply import apply_plan
from offhook.db.plan_check import parse_plan
from offhook.db.plan_export import export_plan

REALM = "fuzz"
_ENGINE = create_engine("sqlite://", poolclass=StaticPool)
_BASE = parse_plan(
    {
        "devices": [
            {
                "name": "alice",
                "protocol": "sip",
                "password": "alice-Secret-1",
                "css": "staff",
                "lines": [{"dn": "1001", "partition": "internal", "pickup_group": "office"}],
            },
            {"name": "bob", "protocol": "sip", "password": "bob-Secret-2",
             "lines": [{"dn": "1002"}]},
        ],
        "partitions": ["internal"],
        "calling_search_spaces": [{"name": "staff", "partitions": ["internal"]}],
        "trunks": [{"name": "carrier", "protocol": "sip", "host": "127.0.0.1",
                    "password": "trunk-Secret"}],
        "route_groups": [{"name": "carriers", "members": ["carrier"]}],
        "route_lists": [{"name": "pstn-out", "groups": ["carriers"]}],
        "route_patterns": [{"pattern": "9.XXXX", "partition": "internal",
                            "route_list": "pstn-out"}],
        "meetme": [{"number": "5000"}],
        "line_groups": [{"name": "hunt", "members": ["1001", "1002"]}],
        "hunt_lists": [{"name": "hunt", "line_groups": ["hunt"]}],
        "hunt_pilots": [{"pattern": "1500", "hunt_list": "hunt"}],
        "pickup_groups": [{"name": "office", "number": "8100"}],
        "call_park": [{"range": "7000-7009"}],
    },
    "base",
)  # fmt: skip
_SECTIONS = sorted(SECTIONS)
_OPS = ("create", "replace", "patch", "delete", "get")


def _request(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data[1:].decode("utf-8", "replace"))
    except ValueError:
        value = None
    if isinstance(value, dict) and "op" in value:
        return value
    return {"op": "create", "section": _SECTIONS[data[0] % len(_SECTIONS)], "body": value}


def _located(exc: EditError) -> None:
    if not exc.problems:
        raise AssertionError(f"{type(exc).__name__} without problems: {exc}")
    for loc, msg in exc.problems:
        if not isinstance(loc, str) or not isinstance(msg, str) or not msg:
            raise AssertionError(f"a problem without a location or message: {loc!r} {msg!r}")


def test_one_input(data: bytes) -> None:
    if not data:
        return
    request = _request(data)
    op = request.get("op")
    section = request.get("section")
    key = request.get("key")
    body = request.get("body")
    if_match = request.get("if_match")
    merge_patch({"a": {"b": 1}, "c": [1]}, body)
    if isinstance(if_match, str):
        if_match_ok(if_match, etag_of({"x": 1}))
    if op not in _OPS or not isinstance(section, str) or not isinstance(key, str | None):
        return
    if not isinstance(if_match, str):
        if_match = None
    apply_plan(_ENGINE, _BASE, REALM)
    editor = PlanEditor(_ENGINE, REALM)
    before = export_plan(_ENGINE)
    try:
        if op == "create":
            view, etag = editor.create(section, body)
        elif op == "replace":
            view, etag = editor.replace(section, key or "", body, if_match)
        elif op == "patch":
            view, etag = editor.patch(section, key or "", body, if_match)
        elif op == "delete":
            editor.delete(section, key or "", if_match)
            return
        else:
            view, etag = editor.get(section, key or "")
    except (Invalid, Conflict) as exc:
        _located(exc)
        if export_plan(_ENGINE) != before:
            raise AssertionError("a refused edit changed the plan") from None
        return
    except (NotFound, PreconditionFailed):
        if export_plan(_ENGINE) != before:
            raise AssertionError("a refused edit changed the plan") from None
        return
    if "password" in view:
        raise AssertionError(f"a view shows a password: {view!r}")
    if editor.get(section, SECTIONS[section].key(view)) != (view, etag):
        raise AssertionError("get does not answer what the edit answered")


def main() -> None:
    upgrade(_ENGINE)
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
