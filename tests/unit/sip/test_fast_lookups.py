"""Session 13's shortcuts on the per-message path give what the longer way gave.

- ``top_via`` reads the first Via element without splitting every Via line;
  the reference is ``headers.get_all("Via")[0]``.
- ``get_all`` by a canonical spelling compares names as stored; the reference
  folds every name (``test_headers_lookup.folded_get_raw``) and splits list headers.
- ``validate._Index`` keys names as stored and skips the single-valued scan when
  no name repeats; ``check_request``/``check_response`` give the verdicts that
  the case-folding index with the full scan gave (the old ``_Index`` below).
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_headers_lookup import _lines, _spelling, folded_get_raw

from offhook.common.errors import ParseError
from offhook.sip import validate
from offhook.sip.codec import parse_message
from offhook.sip.message import (
    _CANONICAL,
    LIST_HEADERS,
    Headers,
    SipRequest,
    SipResponse,
    canonical_name,
    split_list,
)

_VIA_VALUES = st.sampled_from(
    [
        "SIP/2.0/UDP a:1;branch=z9hG4bK1",
        "SIP/2.0/UDP b;branch=z9hG4bK2, SIP/2.0/TCP c;branch=z9hG4bK3",
        "",
        " ",
        ",",
        " , SIP/2.0/UDP d",
        'SIP/2.0/UDP e;x="a,b"',
        "SIP/2.0/UDP [::1]:5060 ;received=1.2.3.4",
    ]
)


@settings(max_examples=300)
@given(st.lists(st.tuples(st.sampled_from(["Via", "v", "VIA", "To", "X-Via"]), _VIA_VALUES)))
def test_top_via_as_get_all(lines: list[tuple[str, str]]) -> None:
    msg = SipRequest(headers=Headers(lines))
    vias = msg.headers.get_all("Via")
    if vias:
        assert msg.top_via == vias[0]
    else:
        with pytest.raises(ParseError):
            _ = msg.top_via


def folded_get_all(headers: Headers, name: str) -> list[str]:
    raw = folded_get_raw(headers, name)
    if canonical_name(name).lower() not in LIST_HEADERS:
        return raw
    return [part for v in raw for part in split_list(v)]


@settings(max_examples=200)
@given(_lines)
def test_get_all_as_folded(lines: list[tuple[str, str]]) -> None:
    headers = Headers(lines)
    for name in [*sorted(set(_CANONICAL.values())), "X-Foo", "via", "v", "contact"]:
        assert headers.get_all(name) == folded_get_all(headers, name)


class _Folded(dict[str, list[str]]):
    """Lower-cased keys, looked up by any spelling (what the old scan did)."""

    def get(self, key: str, default: list[str] | None = None) -> list[str] | None:  # type: ignore[override]
        return super().get(key.lower(), default)


class OldIndex:
    """validate._Index as it was: lower-cased names, scanned for every single-valued name."""

    def __init__(self, headers: Iterable[tuple[str, str]]) -> None:
        by: _Folded = _Folded()
        for n, v in headers:
            by.setdefault(n.lower(), []).append(v)
        self._by = by
        self.repeated = True  # always scan

    def __contains__(self, name: str) -> bool:
        return name.lower() in self._by

    def get(self, name: str) -> str | None:
        values = self._by.get(name.lower())
        return values[0] if values else None

    def get_raw(self, name: str) -> list[str]:
        return self._by.get(name.lower(), [])

    def get_all(self, name: str) -> list[str]:
        out: list[str] = []
        for v in self.get_raw(name):
            out.extend(split_list(v))
        return out


_HEADER_LINES = st.one_of(
    st.tuples(_spelling, st.sampled_from(["a", "1 INVITE", "x@y", "70", "0"])),
    st.sampled_from(
        [
            ("Via", "SIP/2.0/UDP h:5060;branch=z9hG4bKabc"),
            ("v", "SIP/2.0/UDP h2;branch=z9hG4bK"),
            ("From", "<sip:a@h>;tag=1"),
            ("f", "sip:b@h"),
            ("To", "<sip:c@h>"),
            ("t", "<tel:123>"),
            ("Call-ID", "abc@h"),
            ("i", "bad id"),
            ("CSeq", "1 INVITE"),
            ("CSeq", "2 BYE"),
            ("Max-Forwards", "70"),
            ("Max-Forwards", "0"),
            ("Contact", "<sip:a@h>;expires=60"),
            ("Content-Length", "0"),
            ("Expires", "x"),
            ("Require", "foo"),
            ("Accept", "text/plain"),
            ("Date", "Sat, 13 Nov 2010 23:29:00 GMT"),
            ("RSeq", "1"),
            ("Min-SE", "90"),
        ]
    ),
)


def _verdicts(msg: SipRequest | SipResponse) -> tuple[object, ...]:
    out: list[object] = []
    for known in (None, validate.KnownGood()):
        try:
            if isinstance(msg, SipRequest):
                out.append(validate.check_request(msg, known=known))
            else:
                out.append(validate.check_response(msg, known))
        except ParseError as exc:  # the caller's handler turns these into 400s
            out.append(("raised", exc.reason))
    return tuple(out)


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    lines=st.lists(_HEADER_LINES, max_size=12),
    start=st.sampled_from(["INVITE sip:b@h SIP/2.0", "BYE sip:b@h SIP/2.0", "SIP/2.0 200 OK"]),
)
def test_checks_as_with_the_old_index(
    lines: list[tuple[str, str]], start: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = start + "\r\n" + "".join(f"{n}: {v}\r\n" for n, v in lines) + "\r\n"
    try:
        msg = parse_message(text.encode())
    except ParseError:
        return
    new = _verdicts(msg)
    with monkeypatch.context() as m:
        m.setattr(validate, "_Index", OldIndex)
        old = _verdicts(msg)
    assert new == old
