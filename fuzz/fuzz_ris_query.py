"""atheris fuzz target for the real-time information query (offhook.ris.query, ris_devices).

What an operator or the web process sends ``ris_devices`` (a JSON object of
arguments) and what an SCCP phone says it is (``sccp.inventory``).
Invariants:

- ``DeviceFilter.parse`` takes the arguments or refuses them with
  ``ValueError``, nothing else;
- a filter it takes selects from a fixed set of devices (plan devices,
  live bindings, refused names) only rows that match it, sorted by name, at
  most ``limit`` of them, ``total`` counting every match;
- ``glob_match`` of the pattern against every name returns (no pattern
  makes it slow: it is a two-pointer walk);
- an Alarm text gives a firmware load of at most 32 printable characters.

Seeds: ``fuzz/corpus/fuzz_ris_query``.

    mkdir -p /tmp/corpus && python fuzz/fuzz_ris_query.py -max_total_time=30 \\
        -max_len=1024 /tmp/corpus fuzz/corpus/fuzz_ris_query
"""

from __future__ import annotations

import json
import sys

import atheris

with atheris.instrument_imports():
    from offhook.common.location import Binding
    from offhook.core.directory import DeviceInfo, LineInfo
    from offhook.ris.index import History, Rejection
    from offhook.ris.query import DeviceFilter, glob_match, select_devices
    from offhook.sccp.inventory import alarm_load

_DEVICES = {
    "alice": DeviceInfo("alice", "sip", (LineInfo("1001"),)),
    "SEP001122334455": DeviceInfo("SEP001122334455", "sccp", (LineInfo("2001"),), model="7960"),
    "port1": DeviceInfo("port1", "cti", (LineInfo("3001"),)),
}
_BINDINGS = [
    Binding("alice", "sip", "sip:alice@10.0.0.5", 1e9, ("10.0.0.5", 5060), user_agent="x/1"),
    Binding("SEP001122334455", "sccp", "sccp:SEP001122334455", 1e9, ("::1", 40000)),
]
_REFUSED = History("sip", last_rejection=Rejection(1.0, "auth-failed", "192.0.2.9:5060"))
_HISTORIES = [("mallory", _REFUSED)]


def test_one_input(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    load = alarm_load(text)
    if len(load) > 32 or not load.isprintable():
        raise AssertionError("a load that is not short printable text")
    try:
        args = json.loads(text)
    except ValueError:
        args = {"name": text[:200], "address": text[200:]}
    if not isinstance(args, dict):
        args = {"name": args}
    try:
        flt = DeviceFilter.parse(args)
    except ValueError:
        return
    names = [*_DEVICES, "mallory"]
    for name in names:
        glob_match(flt.name, name)
    selection = select_devices(_DEVICES, _BINDINGS, _HISTORIES, flt, "n1")
    if len(selection.rows) > flt.limit or selection.total < len(selection.rows):
        raise AssertionError("more rows than the limit, or a total below them")
    if any(not flt.matches(row) for row in selection.rows):
        raise AssertionError("a row that does not match the filter")
    keys = [row.name.casefold() for row in selection.rows]
    if keys != sorted(keys):
        raise AssertionError("rows not sorted by name")
    json.dumps(selection.as_json("n1"))


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
