"""Headers lookups by a canonical spelling (compared as stored, no case folding) give what
the case-folding lookup gives, however the lines were added or parsed."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from offhook.common.errors import ParseError
from offhook.sip.codec import parse_message
from offhook.sip.message import _CANONICAL, COMPACT_FORMS, Headers, canonical_name


def folded_get_raw(headers: Headers, name: str) -> list[str]:
    """The reference: every line whose name folds to the same canonical name."""
    low = canonical_name(name).lower()
    return [v for n, v in headers if n.lower() == low]


_known = sorted(set(_CANONICAL.values()))
# Spellings of known names (any case, compact forms) and of unknown ones.
_spelling = st.one_of(
    st.sampled_from(_known),
    st.sampled_from(_known).map(str.lower),
    st.sampled_from(_known).map(str.upper),
    st.sampled_from(sorted(COMPACT_FORMS)),
    st.sampled_from(["X-Foo", "x-foo", "Identity-Info", "identity-info", "Accept-Contact"]),
)
_lines = st.lists(st.tuples(_spelling, st.sampled_from(["a", "b", "1 INVITE", "x@y"])), max_size=8)


def _check(headers: Headers) -> None:
    for name in [*_known, "X-Foo", "Identity-Info", "i", "v", "Call-Id"]:
        want = folded_get_raw(headers, name)
        assert headers.get_raw(name) == want
        assert headers.get(name) == (want[0] if want else None)
        assert (name in headers) == bool(want)


@settings(max_examples=200)
@given(_lines, st.sampled_from(["init", "add", "prepend", "set"]))
def test_lookup_by_canonical_spelling_as_folded(lines: list[tuple[str, str]], how: str) -> None:
    if how == "init":
        headers = Headers(lines)
    else:
        headers = Headers()
        for name, value in lines:
            getattr(headers, how)(name, value)
    _check(headers)


@settings(max_examples=200)
@given(_lines)
def test_parsed_lines_as_folded(lines: list[tuple[str, str]]) -> None:
    text = "OPTIONS sip:a@b SIP/2.0\r\n" + "".join(f"{n}: {v}\r\n" for n, v in lines)
    try:
        msg = parse_message((text + "\r\n").encode())
    except ParseError:
        return
    _check(msg.headers)
