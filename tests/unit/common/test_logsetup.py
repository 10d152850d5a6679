"""JSON log lines: the context fields (call id, device, source) in fields of their own."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from offhook.common import logsetup
from offhook.common.logsetup import JsonLines


def record(msg: str = "hello %s", *args: object, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("offhook.test", logging.INFO, __file__, 1, msg, args, None)
    rec.__dict__.update(extra)
    return rec


def test_plain_record_has_the_base_fields_only() -> None:
    line = json.loads(JsonLines().format(record("hello %s", "world")))
    assert set(line) == {"ts", "level", "logger", "msg"}
    assert line["msg"] == "hello world" and line["level"] == "info"
    assert line["logger"] == "offhook.test"


def test_context_fields_from_extra() -> None:
    line = json.loads(
        JsonLines().format(
            record(call_id="c42", device="SEP001122334455", source=("2001:db8::1", 5060))
        )
    )
    assert line["call_id"] == "c42"
    assert line["device"] == "SEP001122334455"
    assert line["source"] == "[2001:db8::1]:5060"


def test_empty_context_fields_are_left_out() -> None:
    line = json.loads(JsonLines().format(record(call_id="", device=None, source="192.0.2.1")))
    assert "call_id" not in line and "device" not in line
    assert line["source"] == "192.0.2.1"


@given(
    st.text(),
    st.dictionaries(
        st.sampled_from(["call_id", "device", "source"]),
        st.one_of(st.text(), st.integers(), st.tuples(st.text(), st.integers(0, 65535))),
    ),
)
def test_any_message_and_fields_make_one_json_line(msg: str, extra: dict[str, object]) -> None:
    text = JsonLines().format(record(msg, **extra))  # no args: the message as it is
    assert "\n" not in text
    line = json.loads(text)
    assert line["msg"] == msg
    for name, value in extra.items():
        if value != "":
            assert name in line


@pytest.fixture
def root_restored() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_setup_logging_again_switches_format_and_level(
    root_restored: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    log = logging.getLogger("offhook.test.switch")
    logsetup.setup_logging("warning", "text")
    log.info("not shown")
    log.warning("as text")
    logsetup.setup_logging("debug", "json")
    log.debug("as json", extra={"device": "alice"})
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert "WARNING offhook.test.switch: as text" in lines[0]
    assert json.loads(lines[1])["device"] == "alice"


def test_alembic_chatter_only_at_debug(
    root_restored: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    chatter = logging.getLogger("alembic.runtime.plugins")
    try:
        logsetup.setup_logging("info", "text")
        chatter.info("setup plugin alembic.autogenerate.schemas")
        chatter.warning("a real warning")
        logsetup.setup_logging("debug", "text")
        chatter.info("shown at debug")
    finally:
        logging.getLogger("alembic").setLevel(logging.NOTSET)
    lines = stream.getvalue().splitlines()
    assert [line.rsplit(": ", 1)[1] for line in lines] == ["a real warning", "shown at debug"]
