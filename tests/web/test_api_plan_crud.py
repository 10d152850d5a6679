"""Create, read, list, patch, replace and delete one object of every plan section
through the REST API (the real app on a real database with the demo plan)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from offhook.db.models import Device, TrunkRow
from offhook.db.plan_apply import ha1
from offhook.db.plan_sections import SECTIONS
from offhook.db.snapshot import plan_version
from offhook.web.deps import WebContext


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def url(section: str, key: str) -> str:
    return f"/api/v1/{section}/{quote(key, safe='/')}"


def cases(moh_file: Path) -> list[tuple[str, dict[str, Any], str, dict[str, Any]]]:
    """(section, object to create, its key, a patch) in an order that only ever
    refers to what exists; deleting in reverse order breaks nothing."""
    return [
        ("partitions", {"name": "lab"}, "lab", {}),
        ("calling_search_spaces", {"name": "lab-css", "partitions": ["lab"]}, "lab-css",
         {"partitions": []}),
        ("trunks", {"name": "carrier", "protocol": "sip", "host": "127.0.0.1", "port": 5080,
                    "password": "trunk-Secret-9"}, "carrier", {"port": 5090}),
        ("route_groups", {"name": "carriers", "members": ["carrier"]}, "carriers",
         {"distribution": "circular"}),
        ("route_lists", {"name": "pstn-out", "groups": ["carriers"]}, "pstn-out",
         {"groups": ["carriers"]}),
        ("route_patterns", {"pattern": "9.1XXX", "partition": "lab", "route_list": "pstn-out"},
         "lab/9.1XXX", {"urgent": True}),
        ("translation_patterns", {"pattern": "0", "partition": "lab", "css": "lab-css",
                                  "called_transform": {"replace": "1001"}}, "lab/0",
         {"called_transform": {"prefix": "9"}}),
        ("moh_sources", {"name": "jazz", "file": str(moh_file)}, "jazz", {}),
        ("meetme", {"number": "5001", "max_parties": 4}, "5001", {"pin": "1234"}),
        ("media_resource_groups", {"name": "local", "servers": ["embedded"]}, "local",
         {"servers": ["embedded", "spare"]}),
        ("media_resource_lists", {"name": "standard", "groups": ["local"]}, "standard", {}),
        ("line_groups", {"name": "sales", "members": ["1001"]}, "sales", {"rna_timeout": 20}),
        ("hunt_lists", {"name": "sales", "line_groups": ["sales"]}, "sales", {}),
        ("hunt_pilots", {"pattern": "1501", "partition": "lab", "hunt_list": "sales"},
         "lab/1501", {"final_forward": "1001"}),
        ("pickup_groups", {"name": "sales", "number": "8101"}, "sales", {"number": "8102"}),
        ("call_park", {"range": "7100-7104"}, "7100-7104", {"reversion": 30}),
        ("cti_route_points", {"name": "ivr", "dn": "3000", "partition": "lab", "css": "lab-css"},
         "ivr", {"timeout": 2.5, "default": "1004"}),
        ("cti_ports", {"name": "port1", "dn": "3100", "css": "lab-css"}, "port1",
         {"partition": "lab"}),
        ("devices", {"name": "dave", "protocol": "sip", "password": "dave-Secret-4",
                     "css": "lab-css", "lines": [{"dn": "1004", "partition": "lab"}]}, "dave",
         {"description": "Dave's phone"}),
    ]  # fmt: skip


@pytest.fixture
def moh_file(tmp_path: Path) -> Path:
    path = tmp_path / "jazz.wav"
    path.write_bytes(b"RIFF" + bytes(100))
    return path


def test_cases_cover_every_section(moh_file: Path) -> None:
    assert {c[0] for c in cases(moh_file)} == set(SECTIONS)


async def test_crud_every_section(
    client: httpx.AsyncClient,
    tokens: dict[str, str],
    web_ctx: WebContext,
    web_engine: Engine,
    moh_file: Path,
) -> None:
    h = bearer(tokens["full-admin"])
    made: dict[str, dict[str, Any]] = {}
    for section, obj, key, _ in cases(moh_file):
        version = plan_version(web_engine)
        created = await client.post(f"/api/v1/{section}", json=obj, headers=h)
        assert created.status_code == 201, (section, created.text)
        assert created.headers["location"] == url(section, key)
        assert created.headers["etag"].startswith('"')
        assert "password" not in created.json()
        assert plan_version(web_engine) > version, section
        got = await client.get(url(section, key), headers=h)
        assert got.status_code == 200, (section, got.text)
        assert got.json() == created.json()
        assert got.headers["etag"] == created.headers["etag"]
        listed = await client.get(f"/api/v1/{section}", headers=h)
        assert got.json() in listed.json()["items"]
        made[section] = got.json()
        again = await client.post(f"/api/v1/{section}", json=obj, headers=h)
        assert again.status_code == 409, (section, again.text)

    for section, _, key, patch in cases(moh_file):
        before = made[section]
        patched = await client.patch(url(section, key), json=patch, headers=h)
        assert patched.status_code == 200, (section, patched.text)
        after = patched.json()
        for field, value in patch.items():
            if isinstance(value, dict):
                assert after[field] == {**before[field], **value}, section
            else:
                assert after[field] == value, section
        unchanged = {k: v for k, v in before.items() if k not in patch}
        assert {k: after[k] for k in unchanged} == unchanged, section
        # PUT: the whole object again (as read), answered as given.
        put = await client.put(url(section, key), json=after, headers=h)
        assert put.status_code == 200, (section, put.text)
        assert put.json() == after
        assert put.headers["etag"] == patched.headers["etag"]

    # The translation pattern kept its replace through the nested patch.
    tp = (await client.get(url("translation_patterns", "lab/0"), headers=h)).json()
    assert tp["called_transform"]["replace"] == "1001"
    assert tp["called_transform"]["prefix"] == "9"

    # Secrets: stored, never shown, kept through PATCH and PUT.
    with Session(web_engine) as session:
        dave = session.scalars(select(Device).where(Device.name == "dave")).one()
        assert dave.ha1_md5 == ha1("md5", "dave", web_ctx.settings.sip.realm, "dave-Secret-4")
        trunk = session.scalars(select(TrunkRow).where(TrunkRow.name == "carrier")).one()
        assert trunk.password == "trunk-Secret-9"

    for section, _, key, _ in reversed(cases(moh_file)):
        gone = await client.delete(url(section, key), headers=h)
        assert gone.status_code == 204, (section, gone.text)
        assert (await client.get(url(section, key), headers=h)).status_code == 404
        assert (await client.delete(url(section, key), headers=h)).status_code == 404


async def test_list_filter_sort_page(client: httpx.AsyncClient, tokens: dict[str, str]) -> None:
    h = bearer(tokens["read-only"])
    everything = (await client.get("/api/v1/devices", headers=h)).json()
    assert everything["total"] == 3
    assert [d["name"] for d in everything["items"]] == ["alice", "bob", "carol"]
    found = (await client.get("/api/v1/devices", params={"q": "AR"}, headers=h)).json()
    assert [d["name"] for d in found["items"]] == ["carol"]
    by_field = await client.get("/api/v1/devices", params={"protocol": "sccp"}, headers=h)
    assert by_field.json() == {"items": [], "total": 0}
    by_number = await client.get("/api/v1/devices", params={"max_calls": "4"}, headers=h)
    assert by_number.json()["total"] == 3
    desc = (await client.get("/api/v1/devices", params={"sort": "-name"}, headers=h)).json()
    assert [d["name"] for d in desc["items"]] == ["carol", "bob", "alice"]
    page = (await client.get("/api/v1/devices", params={"offset": 1, "limit": 1}, headers=h)).json()
    assert page["total"] == 3 and [d["name"] for d in page["items"]] == ["bob"]
    unknown = await client.get("/api/v1/devices", params={"colour": "red"}, headers=h)
    assert unknown.status_code == 422
    # The devices with a line of a directory number (alice and bob share 1010).
    shared = (await client.get("/api/v1/devices", params={"dn": "1010"}, headers=h)).json()
    assert [d["name"] for d in shared["items"]] == ["alice", "bob"]
    one = await client.get("/api/v1/devices", params={"dn": "1003", "q": "car"}, headers=h)
    assert [d["name"] for d in one.json()["items"]] == ["carol"]
    not_devices = await client.get("/api/v1/partitions", params={"dn": "1"}, headers=h)
    assert not_devices.status_code == 422
    assert (
        await client.get("/api/v1/devices", params={"limit": 501}, headers=h)
    ).status_code == 422
    assert (
        await client.get("/api/v1/devices", params={"sort": "lines"}, headers=h)
    ).status_code == 422


async def test_keys_with_partition_and_hash(
    client: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    h = bearer(tokens["dialplan-admin"])
    assert (
        await client.post("/api/v1/partitions", json={"name": "pstn"}, headers=h)
    ).status_code == 201
    made = await client.post(
        "/api/v1/route_patterns",
        json={"pattern": "*#1X", "partition": "pstn", "block": True},
        headers=h,
    )
    assert made.status_code == 201, made.text
    assert made.headers["location"] == "/api/v1/route_patterns/pstn/%2A%231X"
    assert (await client.get(made.headers["location"], headers=h)).json() == made.json()
    got = await client.get("/api/v1/route_patterns/pstn/*%231X", headers=h)
    assert got.status_code == 200 and got.json()["pattern"] == "*#1X"
    # Without a partition the key is the pattern alone.
    bare = await client.post(
        "/api/v1/route_patterns", json={"pattern": "8XXX", "block": True}, headers=h
    )
    assert bare.status_code == 201
    assert (await client.get("/api/v1/route_patterns/8XXX", headers=h)).status_code == 200
    listed = await client.get("/api/v1/route_patterns", params={"partition": "pstn"}, headers=h)
    assert [p["pattern"] for p in listed.json()["items"]] == ["*#1X"]
