"""The admin pages and the self-care portal in a real browser, against a real node.

Playwright drives Debian's ``chromium`` (``executable_path``; nothing is
downloaded), headless, against ``offhook serve`` with its web process as a
child (``OffhookServer(web=True)``); the phones are real baresip user agents
(``interop.baresip``). Without chromium or baresip the tests skip with the
reason, except under ``CI=true``, where they fail.

- an administrator logs in, adds a SIP phone with a line in the device form,
  a baresip registers with it, the device list shows it registered, and a
  call from it appears on the dashboard while it rings (htmx polling, no
  reload) and goes when it ends;
- an end user sets call forward all in the self-care portal and a call to
  their line rings the forward destination instead (CDR: forward-all);
  stopping it brings calls back;
- a read-only administrator sees no edit button anywhere and the API answers
  its session 403 for a change;
- a device description holding markup is shown as text, never run;
- an SCCP phone (the simulator of ``support.sccp_phone``) registers: the
  device list, its device page (protocol sccp) and the dashboard's SCCP
  count show it, and it shows unregistered again once it unregisters.

Screenshots of the dashboard during the call, the device form, the call
records and the self-care portal are written to the test's temporary
directory (``dashboard-call.png``, ``device-form.png``, ``cdrs.png``,
``self-care.png``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from interop.baresip import Baresip
from interop.peers import require_binary
from offhook.config import load_settings
from offhook.db.engine import create_engine_for
from offhook.db.users import UserStore, password_hasher
from support.ports import HOST
from support.sccp_phone import SccpPhone
from support.server import OffhookServer, device

pw = pytest.importorskip("playwright.sync_api")

PASSWORDS = {
    "alice": "alice-Secret-1",
    "bob": "bob-Secret-2",
    "carol": "carol-Secret-3",
    "dave": "dave-Secret-4",
}
WEB_PASSWORD = "browser-Secret-9"
USERS = (("admin", "full-admin", ()), ("viewer", "read-only", ()), ("bobby", "user", ("bob",)))
XSS = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'
TIMEOUT_MS = 15_000
SCCP_PHONE = "SEP00AA11BB22CC"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def chromium_path() -> str:
    """Debian's chromium; skip without it (fail under CI=true)."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None and Path("/usr/bin/chromium").exists():
        path = "/usr/bin/chromium"
    if path is None:
        reason = "chromium not installed (Debian package chromium); Playwright drives it"
        if in_ci():
            pytest.fail(f"CI=true: {reason}", pytrace=False)
        pytest.skip(reason)
    return path


def browser_plan() -> dict[str, Any]:
    return {
        "devices": [
            device("alice", PASSWORDS["alice"], "1001"),
            device("bob", PASSWORDS["bob"], "1002"),
            device("carol", PASSWORDS["carol"], "1003"),
            {
                "name": SCCP_PHONE,
                "protocol": "sccp",
                "model": "7960",
                "lines": [{"dn": "1005", "display": "Erin"}],
            },
        ]
    }


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = chromium_path()
    with pw.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=executable, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OffhookServer]:
    server = OffhookServer(
        tmp_path_factory.mktemp("browser"),
        browser_plan(),
        web=True,
        extra_config={
            "web": {
                "argon2_time_cost": 1,
                "argon2_memory_kib": 8,
                "argon2_parallelism": 1,
                "secure_cookies": "never",
            }
        },
    )
    server.start(timeout=60)
    settings = load_settings(server.config_path)
    engine = create_engine_for(settings.database.url)
    store = UserStore(engine, password_hasher(1, 8, 1))
    for name, role, devices in USERS:
        store.add(name, role, WEB_PASSWORD, display=name.capitalize(), devices=devices)
    engine.dispose()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def page(browser: Any, node: OffhookServer) -> Iterator[Any]:
    context = browser.new_context(base_url=node.web_url)
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    dialogs: list[str] = []
    tab.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    tab.dialogs = dialogs
    try:
        yield tab
    finally:
        context.close()


def log_in(page: Any, user: str) -> None:
    page.goto("/login")
    page.fill("#username", user)
    page.fill("#password", WEB_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert "/login" not in page.url, page.content()


def phone(tmp_path: Path, node: OffhookServer, name: str) -> Baresip:
    require_binary("baresip")  # skips (fails under CI=true) without it
    return Baresip(
        tmp_path,
        name,
        aor=f"sip:{name}@{HOST}:{node.sip_port}",
        password=PASSWORDS[name],
        regint=120,
    )


def dial(node: OffhookServer, ua: Baresip, number: str) -> None:
    ua.dial(f"sip:{number}@{HOST}:{node.sip_port}")


def plan_version(node: OffhookServer) -> int:
    return int(node.control("status")["plan_version"])


def wait_plan_version(node: OffhookServer, above: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while plan_version(node) <= above:
        if time.monotonic() > deadline:
            raise AssertionError(f"the node did not reload the plan within {timeout}s")
        time.sleep(0.1)


def device_status(page: Any, name: str) -> str:
    return str(page.inner_text(f'tr[data-device="{name}"] td.status'))


def test_admin_adds_a_phone_sees_it_register_and_a_call_live(
    page: Any, node: OffhookServer, tmp_path: Path
) -> None:
    log_in(page, "admin")
    assert page.url.endswith("/")
    page.goto("/devices")
    page.click("#add-device")
    page.fill("#f-name", "dave")
    page.select_option("#f-protocol", "sip")
    page.fill("#f-password", PASSWORDS["dave"])
    page.fill("#f-description", "Reception")
    page.fill('[id="f-lines[0].dn"]', "1004")
    page.fill('[id="f-lines[0].display"]', "Dave Brown")
    page.screenshot(path=str(tmp_path / "device-form.png"), full_page=True)
    version = plan_version(node)
    page.click("#save")
    page.wait_for_url("**/devices?saved=dave")
    assert "Unregistered" in device_status(page, "dave")
    assert "1004" in page.inner_text('tr[data-device="dave"]')

    wait_plan_version(node, version)  # the node has reloaded the plan with dave in it
    dave, bob = phone(tmp_path, node, "dave"), phone(tmp_path, node, "bob")
    with dave, bob:
        dave.wait_registered(timeout=20)
        bob.wait_registered()
        page.reload()
        assert "Registered" in device_status(page, "dave")
        page.click('tr[data-device="dave"] a')
        registration = page.inner_text("#registration")
        assert "Registered" in registration and "udp" in registration.lower()

        page.goto("/")
        page.wait_for_function("document.querySelector('#sip-phones').textContent.trim() === '2'")
        assert page.inner_text("#calls tbody") == "No calls now"
        mark = bob.mark()
        dial(node, dave, "1002")
        bob.wait_event("CALL_INCOMING", timeout=10, since=mark)
        # The live part is polled by htmx: the call shows up without a reload.
        page.wait_for_selector("#calls tbody tr:has-text('1002')")
        row = page.inner_text("#calls tbody tr")
        assert "1004" in row and "1002" in row and "dave" in row
        bob.accept()
        dave.wait_event("CALL_ESTABLISHED", timeout=10)
        page.wait_for_selector("#calls tbody tr:has-text('connected')")
        page.screenshot(path=str(tmp_path / "dashboard-call.png"), full_page=True)
        mark = bob.mark()
        dave.hangup()
        bob.wait_event("CALL_CLOSED", timeout=10, since=mark)
        page.wait_for_selector("#calls tbody td.empty")
    row_cdr = node.wait_cdr(lambda r: r.get("calling") == "1004" and r.get("called") == "1002")
    assert row_cdr[-1]["answer"]
    page.goto("/cdrs?number=1004")
    assert "1002" in page.inner_text("#cdrs")
    assert page.locator("svg.chart rect.bar[height]:not([height='0.0'])").count() >= 1
    page.screenshot(path=str(tmp_path / "cdrs.png"), full_page=True)
    assert not page.dialogs


def test_self_care_forward_all_and_a_call_follows_it(
    page: Any, node: OffhookServer, tmp_path: Path
) -> None:
    log_in(page, "bobby")
    assert page.url.endswith("/self")
    form = "#cfa-bob-1002"
    assert "Not forwarding" in page.inner_text("fieldset.line[data-dn='1002']")
    page.fill(f"{form} input[name=destination]", "1003")
    page.click(f"{form} button[name=set]")
    page.wait_for_url("**/self?saved=forward+all")
    assert "Forwarding all calls to 1003" in page.inner_text("fieldset.line[data-dn='1002']")
    assert node.control("coverage", device="bob")["lines"][0]["forward_all"] == "1003"

    alice, bob, carol = (phone(tmp_path, node, n) for n in ("alice", "bob", "carol"))
    with alice, bob, carol:
        for ua in (alice, bob, carol):
            ua.wait_registered(timeout=20)
        dial(node, alice, "1002")
        carol.wait_event("CALL_INCOMING", timeout=10)
        assert "CALL_INCOMING" not in bob.event_types()
        carol.accept()
        alice.wait_event("CALL_ESTABLISHED", timeout=10)
        mark = carol.mark()
        alice.hangup()
        carol.wait_event("CALL_CLOSED", timeout=10, since=mark)
        cdr = node.wait_cdr(lambda r: r.get("redirect_reason") == "forward-all")[-1]
        assert (cdr["original_called"], cdr["called"]) == ("1002", "1003"), cdr

        page.click(f"{form} button[name=clear]")
        page.wait_for_url("**/self?saved=forward+all")
        assert "Not forwarding" in page.inner_text("fieldset.line[data-dn='1002']")
        mark = bob.mark()
        dial(node, alice, "1002")
        bob.wait_event("CALL_INCOMING", timeout=10, since=mark)
        alice.hangup()
    page.goto("/self")
    assert "1003" in page.inner_text("#my-calls")
    page.screenshot(path=str(tmp_path / "self-care.png"), full_page=True)
    assert not page.dialogs


def test_read_only_sees_no_edit_buttons_and_the_api_refuses_it(
    page: Any, node: OffhookServer
) -> None:
    log_in(page, "viewer")
    for path in (
        "/devices",
        "/devices/alice",
        "/dialplan",
        "/dialplan/partitions",
        "/users",
        "/users/bobby",
    ):
        page.goto(path)
        for selector in (
            "#add-device",
            "#add-object",
            "#add-user",
            "#save",
            "#delete",
            "#create-token",
            "text=Add new",
        ):
            assert page.locator(selector).count() == 0, (path, selector)
    page.goto("/devices/alice")
    assert page.locator("fieldset.plain[disabled]").count() == 1
    statuses = page.evaluate(
        """async () => {
            const csrf = JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRF-Token'];
            const headers = {'Content-Type': 'application/json', 'X-CSRF-Token': csrf};
            const post = await fetch('/api/v1/devices', {method: 'POST', headers,
                body: JSON.stringify({name: 'x', protocol: 'sip', password: 'x-Secret-1'})});
            const patch = await fetch('/api/v1/devices/alice', {method: 'PATCH', headers,
                body: JSON.stringify({description: 'changed'})});
            const read = await fetch('/api/v1/devices');
            return [post.status, patch.status, read.status];
        }"""
    )
    assert statuses == [403, 403, 200]


def test_markup_in_a_description_is_shown_as_text(page: Any, node: OffhookServer) -> None:
    log_in(page, "admin")
    page.goto("/devices/carol")
    page.fill("#f-description", XSS)
    page.click("#save")
    page.wait_for_url("**/devices?saved=carol")
    assert page.inner_text('tr[data-device="carol"] td.description') == XSS
    assert page.evaluate("window.__xss === undefined")
    page.goto("/devices/carol")
    assert page.input_value("#f-description") == XSS
    page.goto("/audit")
    assert page.evaluate("window.__xss === undefined")
    assert not page.dialogs


@contextmanager
def sccp_phone_registered(node: OffhookServer, name: str) -> Iterator[SccpPhone]:
    """A simulated SCCP phone registered for the block (its own event loop in a thread)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="sccp-phone", daemon=True)
    thread.start()

    def run(coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(30)

    phone = SccpPhone(name, node.sccp_port)
    try:
        run(phone.connect())
        run(phone.register())
        yield phone
        run(phone.unregister())
    finally:
        run(phone.close())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_an_sccp_phone_registers_and_shows_on_the_pages(page: Any, node: OffhookServer) -> None:
    log_in(page, "admin")
    page.goto("/devices")
    assert "Unregistered" in device_status(page, SCCP_PHONE)
    with sccp_phone_registered(node, SCCP_PHONE) as phone:
        assert phone.register_ack is not None
        page.reload()
        assert "Registered" in device_status(page, SCCP_PHONE)
        assert f"sccp:{SCCP_PHONE}" in device_status(page, SCCP_PHONE)
        page.click(f'tr[data-device="{SCCP_PHONE}"] a')
        registration = page.inner_text("#registration")
        assert "Registered" in registration and "sccp" in registration
        assert page.input_value('[id="f-lines[0].dn"]') == "1005"
        page.goto("/")
        page.wait_for_function("document.querySelector('#sccp-phones').textContent.trim() === '1'")
    page.goto("/devices")
    page.wait_for_function(
        f"""() => {{
            const cell = document.querySelector('tr[data-device="{SCCP_PHONE}"] td.status');
            return cell !== null && cell.textContent.includes('Unregistered');
        }}""",
        polling=200,
    )
    assert not page.dialogs
