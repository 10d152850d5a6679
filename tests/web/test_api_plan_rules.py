"""The plan API's rules: PATCH never resets a field it was not given, ETags and
If-Match (412), deletes and changes that would break references (409 naming
the referrers), validation (422 with field locations), passwords never shown,
each change bumps ``plan_version`` and is in the audit log, roles per section."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.engine import Engine

from offhook.db.plan_edit import RENAME_NEEDS_PASSWORD
from offhook.db.plan_sections import SECTIONS
from offhook.db.snapshot import plan_version
from offhook.web.deps import WebContext


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def locs(answer: httpx.Response) -> list[str]:
    return [p["loc"] for p in answer.json()["detail"]]


async def test_patch_never_resets_an_absent_field(
    client: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    h = bearer(tokens["phone-admin"])
    before = (await client.get("/api/v1/devices/alice", headers=h)).json()
    assert before["lines"][0]["pickup_group"] == "office"
    patched = await client.patch(
        "/api/v1/devices/alice", json={"description": "Front desk", "max_calls": 2}, headers=h
    )
    assert patched.status_code == 200, patched.text
    after = patched.json()
    assert after == {**before, "description": "Front desk", "max_calls": 2}

    # A list is replaced whole; a nested mapping is merged; null removes (default).
    lines = [{**before["lines"][0], "forward_busy": {"destination": "1003"}}]
    after = (await client.patch("/api/v1/devices/alice", json={"lines": lines}, headers=h)).json()
    assert [ln["dn"] for ln in after["lines"]] == ["1001"]
    assert after["lines"][0]["forward_busy"] == {"destination": "1003", "css": ""}
    assert after["description"] == "Front desk"
    reset = await client.patch(
        "/api/v1/devices/alice",
        json={"description": None},
        headers={**h, "Content-Type": "application/merge-patch+json"},
    )
    assert reset.status_code == 200
    assert reset.json() == {**after, "description": ""}

    # PUT takes the object as given: absent fields take their defaults.
    put = await client.put(
        "/api/v1/devices/alice",
        json={"name": "alice", "protocol": "sip", "lines": [{"dn": "1001"}]},
        headers=h,
    )
    assert put.status_code == 200, put.text
    assert put.json()["description"] == "" and put.json()["max_calls"] == 4
    assert put.json()["lines"][0]["pickup_group"] == ""


async def test_etag_and_if_match(client: httpx.AsyncClient, tokens: dict[str, str]) -> None:
    h = bearer(tokens["full-admin"])
    got = await client.get("/api/v1/devices/bob", headers=h)
    etag = got.headers["etag"]
    first = await client.patch(
        "/api/v1/devices/bob", json={"description": "one"}, headers={**h, "If-Match": etag}
    )
    assert first.status_code == 200
    assert first.headers["etag"] != etag
    # A second admin still holding the old ETag cannot overwrite the change.
    stale = await client.patch(
        "/api/v1/devices/bob", json={"description": "two"}, headers={**h, "If-Match": etag}
    )
    assert stale.status_code == 412
    stale_put = await client.put(
        "/api/v1/devices/bob", json=got.json(), headers={**h, "If-Match": etag}
    )
    assert stale_put.status_code == 412
    stale_delete = await client.delete("/api/v1/devices/bob", headers={**h, "If-Match": etag})
    assert stale_delete.status_code == 412
    now = await client.get("/api/v1/devices/bob", headers=h)
    assert now.json()["description"] == "one"
    assert now.headers["etag"] == first.headers["etag"]
    weak = await client.patch(
        "/api/v1/devices/bob",
        json={"description": "three"},
        headers={**h, "If-Match": f'"nope", W/{now.headers["etag"]}'},
    )
    assert weak.status_code == 200
    star = await client.patch(
        "/api/v1/devices/bob", json={"description": "four"}, headers={**h, "If-Match": "*"}
    )
    assert star.status_code == 200
    # No If-Match: allowed (last writer wins, as with offhook load).
    assert (
        await client.patch("/api/v1/devices/bob", json={"description": "five"}, headers=h)
    ).status_code == 200
    # If-None-Match: a poller that holds the current version gets 304 and no body.
    current = await client.get("/api/v1/devices/bob", headers=h)
    same = await client.get(
        "/api/v1/devices/bob", headers={**h, "If-None-Match": current.headers["etag"]}
    )
    assert same.status_code == 304 and same.content == b""
    assert same.headers["etag"] == current.headers["etag"]
    older = await client.get("/api/v1/devices/bob", headers={**h, "If-None-Match": etag})
    assert older.status_code == 200 and older.json()["description"] == "five"


async def test_delete_refused_naming_the_referrers(
    client: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    h = bearer(tokens["full-admin"])
    # bob's line 1002 is a member of line group demo-hunt.
    refused = await client.delete("/api/v1/devices/bob", headers=h)
    assert refused.status_code == 409, refused.text
    assert any(loc.startswith("line_groups[demo-hunt].members") for loc in locs(refused))
    assert (await client.get("/api/v1/devices/bob", headers=h)).status_code == 200

    # The pickup group "office" is named by three devices' lines.
    refused = await client.delete("/api/v1/pickup_groups/office", headers=h)
    assert refused.status_code == 409
    named = locs(refused)
    for device in ("alice", "bob", "carol"):
        assert any(loc.startswith(f"devices[{device}].lines[") for loc in named), named

    # A hunt list used by a pilot; a partition used by a CSS.
    assert (await client.delete("/api/v1/hunt_lists/demo-hunt", headers=h)).status_code == 409
    await client.post("/api/v1/partitions", json={"name": "lab"}, headers=h)
    await client.post(
        "/api/v1/calling_search_spaces", json={"name": "staff", "partitions": ["lab"]}, headers=h
    )
    refused = await client.delete("/api/v1/partitions/lab", headers=h)
    assert refused.status_code == 409
    assert locs(refused) == ["calling_search_spaces[staff].partitions[0]"]
    assert refused.json()["detail"][0]["msg"] == (
        "still uses the partition 'lab' (remove it there first)"
    )
    # Renaming it breaks the CSS as well: 409, not applied.
    renamed = await client.patch("/api/v1/partitions/lab", json={"name": "lab2"}, headers=h)
    assert renamed.status_code == 409
    assert (await client.get("/api/v1/partitions/lab", headers=h)).status_code == 200


async def test_validation_errors_name_the_field(
    client: httpx.AsyncClient, tokens: dict[str, str], web_engine: Engine
) -> None:
    h = bearer(tokens["phone-admin"])
    version = plan_version(web_engine)
    bad: list[tuple[dict[str, Any], str]] = [
        ({"name": "dave", "protocol": "sip", "password": "pw-1234", "lines": [{"dn": "12a"}]},
         "devices[dave].lines[0].dn"),
        ({"name": "dave", "protocol": "sip", "password": "pw-1234", "lines": [{"dn": 1004}]},
         "devices[dave].lines[0].dn"),
        ({"name": "dave", "protocol": "sip", "password": "pw-1234", "colour": "red"},
         "devices[dave].colour"),
        ({"name": "dave", "protocol": "sip"}, "devices[dave].password"),
        ({"name": "dave", "protocol": "sip", "password": "pw-1234", "css": "nope"},
         "devices[dave].css"),
        ({"name": "dave", "protocol": "sip", "password": "pw-1234",
          "lines": [{"dn": "1004", "partition": "nowhere"}]}, "devices[dave].lines[0].partition"),
        ({"protocol": "sip", "password": "pw-1234"}, "devices[new].name"),
    ]  # fmt: skip
    for obj, where in bad:
        answer = await client.post("/api/v1/devices", json=obj, headers=h)
        assert answer.status_code == 422, (obj, answer.text)
        assert where in locs(answer), (obj, answer.json())
    not_json = await client.post(
        "/api/v1/devices", content=b"{", headers={**h, "Content-Type": "application/json"}
    )
    assert not_json.status_code == 422
    for body in (b'{"name": "x", "max_calls": 1e999}', b"[" * 5000 + b"]" * 5000, b"\xff"):
        odd = await client.post(
            "/api/v1/devices", content=body, headers={**h, "Content-Type": "application/json"}
        )
        assert odd.status_code == 422 and locs(odd) == ["body"], (body[:20], odd.text)
    not_object = await client.post("/api/v1/devices", json=[1, 2], headers=h)
    assert not_object.status_code == 422
    patch_bad = await client.patch("/api/v1/devices/alice", json={"max_calls": -1}, headers=h)
    assert patch_bad.status_code == 422 and locs(patch_bad) == ["devices[alice].max_calls"]
    assert plan_version(web_engine) == version  # nothing written


async def test_passwords_are_never_shown(client: httpx.AsyncClient, tokens: dict[str, str]) -> None:
    h = bearer(tokens["full-admin"])
    secrets = ["zed-Secret-77", "trunk-Secret-88"]
    made = await client.post(
        "/api/v1/devices",
        json={"name": "zed", "protocol": "sip", "password": secrets[0]},
        headers=h,
    )
    trunk = await client.post(
        "/api/v1/trunks",
        json={"name": "carrier", "protocol": "sip", "host": "192.0.2.1", "password": secrets[1]},
        headers=h,
    )
    answers = [
        made,
        trunk,
        await client.get("/api/v1/devices", headers=h),
        await client.get("/api/v1/devices/zed", headers=h),
        await client.get("/api/v1/trunks", headers=h),
        await client.patch("/api/v1/trunks/carrier", json={"port": 5070}, headers=h),
        await client.get("/api/v1/plan/export", headers=h),
        await client.get("/api/v1/devices/alice", headers=h),
    ]
    for answer in answers:
        assert answer.status_code in (200, 201), answer.text
        assert '"password"' not in answer.text and "password:" not in answer.text
        for secret in [*secrets, "alice-Secret-1"]:
            assert secret not in answer.text
    # A renamed SIP phone needs its password again (HA1 hashes the name), and says so.
    renamed = await client.patch("/api/v1/devices/zed", json={"name": "zed2"}, headers=h)
    assert renamed.status_code == 422
    assert renamed.json()["detail"] == [
        {"loc": "devices[zed2].password", "msg": RENAME_NEEDS_PASSWORD}
    ]
    again = await client.patch(
        "/api/v1/devices/zed", json={"name": "zed2", "password": secrets[0]}, headers=h
    )
    assert again.status_code == 200 and again.json()["name"] == "zed2"


async def test_change_bumps_plan_version_and_is_audited(
    client: httpx.AsyncClient, tokens: dict[str, str], web_engine: Engine, web_ctx: WebContext
) -> None:
    h = bearer(tokens["dialplan-admin"])
    version = plan_version(web_engine)
    made = await client.post("/api/v1/meetme", json={"number": "5005"}, headers=h)
    assert made.status_code == 201
    assert plan_version(web_engine) == version + 1
    # A patch that changes nothing writes nothing.
    same = await client.patch("/api/v1/meetme/5005", json={"max_parties": 32}, headers=h)
    assert same.status_code == 200 and same.headers["etag"] == made.headers["etag"]
    assert plan_version(web_engine) == version + 1
    await client.delete("/api/v1/meetme/5005", headers=h)
    assert plan_version(web_engine) == version + 2
    entries = web_ctx.audit.search(object_type="meetme")
    assert [(e.action, e.actor, e.object_key) for e in entries][-3:] != []
    actions = {e.action: e for e in entries}
    assert set(actions) >= {"create", "delete"}
    assert actions["create"].actor == "dialplan-admin"
    assert actions["create"].source == "127.0.0.1"
    assert actions["create"].before is None
    assert actions["create"].after["number"] == "5005"
    assert actions["delete"].before["number"] == "5005" and actions["delete"].after is None


async def test_roles_per_section(client: httpx.AsyncClient, tokens: dict[str, str]) -> None:
    partition = {"name": "lab"}
    device = {"name": "zed", "protocol": "sip", "password": "zed-Secret-1"}
    phone, dial = bearer(tokens["phone-admin"]), bearer(tokens["dialplan-admin"])
    ro, user = bearer(tokens["read-only"]), bearer(tokens["user"])
    assert (
        await client.post("/api/v1/partitions", json=partition, headers=phone)
    ).status_code == 403
    assert (await client.post("/api/v1/devices", json=device, headers=dial)).status_code == 403
    assert (await client.post("/api/v1/devices", json=device, headers=ro)).status_code == 403
    assert (await client.get("/api/v1/devices", headers=user)).status_code == 403
    assert (await client.get("/api/v1/devices")).status_code == 401
    assert (await client.post("/api/v1/devices", json=device, headers=phone)).status_code == 201
    assert (
        await client.post("/api/v1/partitions", json=partition, headers=dial)
    ).status_code == 201
    assert (await client.delete("/api/v1/partitions/lab", headers=ro)).status_code == 403
    assert (await client.get("/api/v1/plan/export", headers=ro)).status_code == 200
    dry = await client.post(
        "/api/v1/plan/import?dry_run=true",
        content=b"devices: []\n",
        headers={**phone, "Content-Type": "application/yaml"},
    )
    assert dry.status_code == 403


async def test_openapi_has_a_typed_schema_per_section(
    client: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    signed_in = {"Authorization": f"Bearer {tokens['read-only']}"}  # the document is not public
    doc = (await client.get("/api/v1/openapi.json", headers=signed_in)).json()
    paths = doc["paths"]
    for name, sec in SECTIONS.items():
        fields = {f.alias or k for k, f in sec.spec.model_fields.items()}
        create = paths[f"/api/v1/{name}"]["post"]
        body = create["requestBody"]["content"]["application/json"]["schema"]
        assert set(body["properties"]) == fields, name
        shown = create["responses"]["201"]["content"]["application/json"]["schema"]
        assert set(shown["properties"]) == fields - set(sec.secrets), name
        item = paths[f"/api/v1/{name}/{{key}}"]
        assert set(item) == {"get", "put", "patch", "delete"}, name
        patch = item["patch"]["requestBody"]["content"]["application/merge-patch+json"]["schema"]
        assert "required" not in patch and set(patch["properties"]) == fields
        assert any(p["name"] == "if-match" for p in item["patch"]["parameters"])
        for operation in (create, *item.values()):
            assert {"401", "403", "429"} <= set(operation["responses"]), name
        listing = paths[f"/api/v1/{name}"]["get"]
        assert listing["summary"] == f"List {name.replace('_', ' ')}"
    devices = paths["/api/v1/devices"]["post"]["requestBody"]["content"]["application/json"]
    assert devices["schema"]["properties"]["password"]["writeOnly"] is True
    line = devices["schema"]["properties"]["lines"]["items"]
    assert "dn" in line["required"] and "forward_all" in line["properties"]
    filters = {p["name"] for p in paths["/api/v1/devices"]["get"]["parameters"]}
    assert {"q", "sort", "offset", "limit", "protocol", "dn"} <= filters
    assert "/api/v1/plan/import" in paths and "/api/v1/plan/export" in paths
