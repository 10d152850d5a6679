"""atheris fuzz target for the admin pages' form parser (``offhook.web.pages_forms``).

What a browser (or anyone) posts to a plan object's page: an
``application/x-www-form-urlencoded`` body, decoded as Starlette does
(``urllib.parse.parse_qsl``, first value of a name wins), parsed for the
section the first byte picks. The form names index lists of objects
(``lines[3].dn``), so a hostile body can name any index and any depth.

Invariants: ``parse_form`` never raises; its mapping holds only the model's
own keys, its problems are located; a parsed mapping the model accepts,
shown again in its form (``form_fields``) and posted back unchanged
(``posted``), parses to the same object; ``field_errors`` takes any
location.

Run it bounded (libFuzzer flags pass through)::

    python fuzz/fuzz_page_form.py -max_total_time=60 -max_len=4096 fuzz/corpus/fuzz_page_form
"""

from __future__ import annotations

import sys
from urllib.parse import parse_qsl

import atheris
from pydantic import ValidationError

with atheris.instrument_imports():
    from offhook.web.pages_forms import field_errors, form_fields, parse_form, posted

from offhook.db.plan_sections import SECTIONS, view_of

_SECTIONS = sorted(SECTIONS)


def test_one_input(data: bytes) -> None:
    if not data:
        return
    sec = SECTIONS[_SECTIONS[data[0] % len(_SECTIONS)]]
    text = data[1:].decode("utf-8", "replace")
    form: dict[str, str] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        form.setdefault(key, value)
    parsed, problems = parse_form(sec.spec, form)
    keys = {info.alias or name for name, info in sec.spec.model_fields.items()}
    if not set(parsed) <= keys:
        raise AssertionError(f"keys outside the model: {set(parsed) - keys}")
    for p in problems:
        if not p.get("loc") or not p.get("msg"):
            raise AssertionError(f"an unlocated problem: {p}")
    field_errors([{"loc": k, "msg": v} for k, v in form.items()], sec.name)
    try:
        model = sec.spec.model_validate(parsed)
    except ValidationError:
        return
    view = view_of(sec, model)
    again, problems = parse_form(sec.spec, posted(form_fields(sec.spec, view)))
    if problems:
        raise AssertionError(f"a valid object's own form has problems: {problems}")
    secrets = {k: v for k, v in parsed.items() if k in sec.secrets}
    if view_of(sec, sec.spec.model_validate({**again, **secrets})) != view:
        raise AssertionError("the form round trip changed the object")


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
