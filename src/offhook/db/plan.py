"""The plan loader: ``offhook load PLAN.yaml`` imports a whole telephony plan.

The YAML file is the whole truth about what it describes: one
transaction makes the database match it. Devices and dial plan
entries in the file are created or updated; those in the database but absent
from the file are deleted (``prune=False`` / ``offhook load --no-prune``
keeps them). Running the same
file twice changes nothing, and ``plan_version`` (``plan_meta``) is bumped
only when something changed, so running nodes reload only then.

This module is the entry point (:func:`load_plan`, and :func:`ensure_demo_plan`
for a node's first start); the work is done by

- ``offhook.db.plan_spec``: the YAML format, as pydantic models (``PlanSpec``;
  call coverage's sections are ``offhook.db.plan_coverage``'s, the CTI
  devices' ``offhook.db.plan_cti``'s, what every
  section shares ``offhook.db.plan_base``'s);
- ``offhook.db.plan_check``: validation across entries (``parse_plan``,
  ``PlanError``);
- ``offhook.db.plan_yaml``: reading the YAML text, bounded (``read_plan``,
  ``parse_plan_text``);
- ``offhook.db.plan_apply``: writing a valid plan in one transaction
  (``apply_plan``, ``PlanReport``).

Their public names are importable from here too.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from offhook.db.engine import create_engine_for, upgrade
from offhook.db.models import Device
from offhook.db.plan_apply import PlanReport, apply_plan, ha1
from offhook.db.plan_check import MAX_PROBLEMS, PlanError, parse_plan
from offhook.db.plan_coverage import (
    CallParkSpec,
    ForwardSpec,
    HuntListSpec,
    HuntPilotSpec,
    LineGroupSpec,
    PickupGroupSpec,
)
from offhook.db.plan_cti import CtiPortSpec, CtiRoutePointSpec
from offhook.db.plan_spec import (
    MAX_LABEL,
    SCCP_MODELS,
    CallingSearchSpaceSpec,
    DeviceSpec,
    LineSpec,
    MediaResourceGroupSpec,
    MediaResourceListSpec,
    MeetMeSpec,
    MohSourceSpec,
    PlanSpec,
    RouteGroupMemberSpec,
    RouteGroupSpec,
    RouteListSpec,
    RoutePatternSpec,
    SpeedDialSpec,
    TransformSpec,
    TranslationPatternSpec,
    TrunkSpec,
    inbound_network,
    trunk_host,
)
from offhook.db.plan_yaml import (
    MAX_PLAN_BYTES,
    MAX_PLAN_DEPTH,
    MAX_PLAN_NODES,
    parse_plan_text,
    read_plan,
)

if TYPE_CHECKING:
    from offhook.config import Settings

__all__ = [
    "DEMO_PLAN",
    "MAX_LABEL",
    "MAX_PLAN_BYTES",
    "MAX_PLAN_DEPTH",
    "MAX_PLAN_NODES",
    "MAX_PROBLEMS",
    "SCCP_MODELS",
    "CallParkSpec",
    "CallingSearchSpaceSpec",
    "CtiPortSpec",
    "CtiRoutePointSpec",
    "DeviceSpec",
    "ForwardSpec",
    "HuntListSpec",
    "HuntPilotSpec",
    "LineGroupSpec",
    "LineSpec",
    "MediaResourceGroupSpec",
    "MediaResourceListSpec",
    "MeetMeSpec",
    "MohSourceSpec",
    "PickupGroupSpec",
    "PlanError",
    "PlanReport",
    "PlanSpec",
    "RouteGroupMemberSpec",
    "RouteGroupSpec",
    "RouteListSpec",
    "RoutePatternSpec",
    "SpeedDialSpec",
    "TransformSpec",
    "TranslationPatternSpec",
    "TrunkSpec",
    "apply_plan",
    "device_count",
    "ensure_demo_plan",
    "ha1",
    "inbound_network",
    "load_plan",
    "parse_plan",
    "parse_plan_text",
    "read_plan",
    "trunk_host",
]

DEMO_PLAN = Path(__file__).resolve().parents[1] / "demo" / "plan.yaml"


def load_plan(
    path: Path | str,
    url: str | Engine,
    realm: str,
    *,
    prune: bool = True,
    keep_passwords: bool = False,
) -> PlanReport:
    """Validate ``path`` and import it into the database at ``url`` (schema upgraded first).

    ``keep_passwords``: a sip device or trunk without a password keeps its
    stored one (a plan exported by ``offhook.db.plan_export``); a new sip
    device still needs one. Raises :class:`PlanError` (nothing written) for an
    invalid plan.
    """
    plan = read_plan(Path(path), require_passwords=not keep_passwords)
    engine = url if isinstance(url, Engine) else create_engine_for(url)
    try:
        upgrade(engine)
        return apply_plan(engine, plan, realm, prune=prune, keep_passwords=keep_passwords)
    finally:
        if not isinstance(url, Engine):
            engine.dispose()


def device_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Device)).scalar_one())


def ensure_demo_plan(settings: Settings, path: Path = DEMO_PLAN) -> bool:
    """Load the packaged demo plan into a database that never had a plan.

    "Never had a plan" means no devices and ``plan_version`` 0: a database
    emptied on purpose by loading an empty plan is left alone. The schema is
    upgraded first. Returns True when the demo plan was loaded.
    """
    from offhook.db.snapshot import plan_version

    engine = create_engine_for(settings.database.url)
    try:
        upgrade(engine)
        if device_count(engine) or plan_version(engine):
            return False
        apply_plan(engine, read_plan(path), settings.sip.realm)
        return True
    finally:
        engine.dispose()
