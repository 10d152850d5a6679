"""Whole-plan import and export through the API: the export is ``offhook load``'s
YAML without passwords and imports back unchanged; a dry run answers the diff
and writes nothing; an import applies it (``plan_version`` bumped)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy.engine import Engine

from offhook.db.snapshot import plan_version


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def yaml_headers(token: str) -> dict[str, str]:
    return {**bearer(token), "Content-Type": "application/yaml"}


RICH_PLAN = """
devices:
  - name: alice
    protocol: sip
    password: alice-Secret-1
    css: staff
    lines:
      - dn: "1001"
        display: Alice
        partition: internal
        forward_busy: {destination: "8000", css: staff}
        cfna_timer: 15
        voicemail: "8000"
        pickup_group: sales
  - name: SEP001122334455
    protocol: sccp
    model: "7960"
    css: staff
    lines: [{dn: "1003", partition: internal}]
    speed_dials: [{number: "1001", label: Alice}]
partitions: [internal, pstn]
calling_search_spaces:
  - {name: staff, partitions: [internal, pstn]}
trunks:
  - {name: carrier, protocol: sip, host: 127.0.0.1, port: 5080, password: trunk-Secret-5,
     inbound_addresses: [127.0.0.1/32]}
  - {name: backup, protocol: sip, host: 192.0.2.1}
route_groups:
  - {name: carriers, distribution: circular,
     members: [carrier, {trunk: backup, called_transform: {prefix: "0"}}]}
route_lists:
  - {name: pstn-out, groups: [carriers]}
route_patterns:
  - {pattern: "9.1[2-9]XX[2-9]XXXXXX", partition: pstn, route_list: pstn-out,
     called_transform: {discard: pre-dot, prefix: "+"}}
  - {pattern: "9.1900XXXXXXX", partition: pstn, block: true, block_cause: 21}
translation_patterns:
  - {pattern: "0", partition: internal, css: staff, called_transform: {replace: "1001"}}
moh_sources:
  - {name: jazz, file: MOH}
meetme:
  - {number: "5000", partition: internal, pin: "1234", max_parties: 8}
media_resource_groups:
  - {name: local, servers: [embedded]}
media_resource_lists:
  - {name: standard, groups: [local]}
line_groups:
  - {name: support, distribution: longest-idle, rna_timeout: 12, members: ["1001", "1003"]}
hunt_lists:
  - {name: support, line_groups: [support]}
hunt_pilots:
  - {pattern: "1500", partition: internal, hunt_list: support, final_forward: "8000"}
pickup_groups:
  - {name: sales, number: "8100", partition: internal}
call_park:
  - {range: "7000-7009", partition: internal, reversion: 30}
"""


async def export(client: httpx.AsyncClient, token: str) -> str:
    answer = await client.get("/api/v1/plan/export", headers=bearer(token))
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/yaml")
    return answer.text


@pytest.mark.parametrize("rich", [False, True], ids=["demo", "rich"])
async def test_export_imports_back_unchanged(
    client: httpx.AsyncClient,
    tokens: dict[str, str],
    web_engine: Engine,
    tmp_path: Path,
    rich: bool,
) -> None:
    admin = tokens["full-admin"]
    if rich:
        moh = tmp_path / "jazz.wav"
        moh.write_bytes(b"RIFF" + bytes(64))
        loaded = await client.post(
            "/api/v1/plan/import",
            content=RICH_PLAN.replace("MOH", str(moh)).encode(),
            headers=yaml_headers(admin),
        )
        assert loaded.status_code == 200, loaded.text
        assert loaded.json()["applied"] and loaded.json()["changed"]
    text = await export(client, admin)
    data = yaml.safe_load(text)
    assert "password" not in str(data)
    version = plan_version(web_engine)
    again = await client.post(
        "/api/v1/plan/import", content=text.encode(), headers=yaml_headers(admin)
    )
    assert again.status_code == 200, again.text
    assert again.json() == {
        "changed": False,
        "applied": True,
        "plan_version": version,
        "sections": {},
    }
    assert plan_version(web_engine) == version
    assert await export(client, admin) == text


async def test_dry_run_shows_the_diff_and_changes_nothing(
    client: httpx.AsyncClient, tokens: dict[str, str], web_engine: Engine
) -> None:
    admin = tokens["full-admin"]
    text = await export(client, admin)
    data = yaml.safe_load(text)
    data["devices"].append({"name": "dave", "protocol": "sip", "password": "dave-Secret-4"})
    carol = next(d for d in data["devices"] if d["name"] == "carol")
    carol["description"] = "Reception"
    alice = next(d for d in data["devices"] if d["name"] == "alice")
    alice["password"] = "alice-New-Secret"
    bob = next(d for d in data["devices"] if d["name"] == "bob")
    bob["password"] = "bob-Secret-2"  # the stored one: no change
    del data["meetme"]
    new_text = yaml.safe_dump(data, sort_keys=False)
    version = plan_version(web_engine)

    dry = await client.post(
        "/api/v1/plan/import",
        params={"dry_run": "true"},
        content=new_text.encode(),
        headers=yaml_headers(admin),
    )
    assert dry.status_code == 200, dry.text
    diff = dry.json()
    assert diff["changed"] is True and diff["applied"] is False
    assert diff["plan_version"] is None
    assert diff["sections"] == {
        "devices": {
            "created": ["dave"],
            "updated": {"alice": ["password"], "carol": ["description"]},
            "deleted": [],
        },
        "meetme": {"created": [], "updated": {}, "deleted": ["5000"]},
    }
    assert plan_version(web_engine) == version
    assert await export(client, admin) == text
    assert (await client.get("/api/v1/devices/dave", headers=bearer(admin))).status_code == 404

    applied = await client.post(
        "/api/v1/plan/import", content=new_text.encode(), headers=yaml_headers(admin)
    )
    assert applied.status_code == 200
    assert applied.json()["applied"] is True
    assert applied.json()["sections"] == diff["sections"]
    assert applied.json()["plan_version"] == version + 1 == plan_version(web_engine)
    assert (await client.get("/api/v1/devices/dave", headers=bearer(admin))).status_code == 200
    assert (await client.get("/api/v1/meetme/5000", headers=bearer(admin))).status_code == 404


async def test_invalid_import_is_refused_with_locations(
    client: httpx.AsyncClient, tokens: dict[str, str], web_engine: Engine
) -> None:
    admin = tokens["full-admin"]
    version = plan_version(web_engine)
    cases = [
        (b"devices: [\n", ""),
        (b"devices:\n  - {name: x, protocol: sip, password: pw, css: nope}\n", "devices[x].css"),
        (b"devices:\n  - {name: x, protocol: sip}\n", "devices[x].password"),
        (b"devices:\n  - {name: x, protocol: sip, password: pw, lines: [{dn: 12}]}\n",
         "devices[x].lines[0].dn"),
        (b"- just a list\n", ""),
    ]  # fmt: skip
    for body, where in cases:
        answer = await client.post(
            "/api/v1/plan/import?dry_run=true", content=body, headers=yaml_headers(admin)
        )
        assert answer.status_code == 422, (body, answer.text)
        problems = answer.json()["detail"]
        assert problems and all({"loc", "msg"} <= set(p) for p in problems)
        if where:
            assert where in [p["loc"] for p in problems], problems
    assert plan_version(web_engine) == version
