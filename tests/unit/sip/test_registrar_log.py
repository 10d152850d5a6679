"""The registrar's log lines: a new contact and a removed one, with device and source fields."""

from __future__ import annotations

import json
import logging

import pytest

from offhook.common.logsetup import JsonLines
from unit.sip.test_registrar import Env, Phone


def lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    fmt = JsonLines()
    return [json.loads(fmt.format(r)) for r in caplog.records if r.name == "offhook.sip.registrar"]


def test_registration_and_removal_are_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    env = Env()
    phone = Phone(env)
    with caplog.at_level(logging.INFO, logger="offhook.sip.registrar"):
        assert phone.register(expires=600).status == 200
        assert phone.register(expires=600).status == 200  # a refresh: nothing new to say
        assert phone.register(expires=0).status == 200
    got = lines(caplog)
    assert [line["msg"] for line in got] == [
        "SIP SEP001 registered sip:1001@10.0.0.5:5060 from 10.0.0.5:5060",
        "SIP SEP001 unregistered sip:1001@10.0.0.5:5060 (from 10.0.0.5:5060)",
    ]
    assert all(line["device"] == "SEP001" and line["source"] == "10.0.0.5:5060" for line in got)


def test_star_removes_and_logs_every_contact(caplog: pytest.LogCaptureFixture) -> None:
    env = Env()
    phone = Phone(env)
    contacts = ("<sip:1001@10.0.0.5:5060>", "<sip:1001@10.0.0.5:5070>")
    assert phone.register(contacts, expires=600).status == 200
    with caplog.at_level(logging.INFO, logger="offhook.sip.registrar"):
        assert phone.register(("*",), expires=0).status == 200
    assert len(lines(caplog)) == 2
