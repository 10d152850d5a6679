"""CSCsa75554: a crafted packet overflowed a buffer in CallManager's database layer.

The advisory's aupair.exe sat between the call manager and SQL Server, listened
on TCP 8001, and a crafted packet to it could run code; the workaround was an
access list in front of port 8001. offhook's answer has three parts, and this
module checks the two that are not fuzzing (fuzz/README.md has the fuzz
targets for every parser, the plan loader included, and their figures):

1. No database port is exposed. With the default configuration (SQLite, a file)
   a running ``offhook serve`` has exactly the listeners its settings name
   (SIP UDP+TCP, SCCP, TFTP, provisioning HTTP, admin; its web child
   process only ``[web] port``) and no other socket
   that accepts anything: the process's sockets are found through
   ``/proc/PID/fd`` (``socket:[inode]``) and looked up in ``/proc/net/tcp``,
   ``tcp6``, ``udp``, ``udp6`` and ``unix``. With a PostgreSQL URL the node
   connects out to the database and listens on nothing more: every socket
   touching the database port has it as its *remote* port.
2. SQL is only ever issued with bound parameters. A SQLAlchemy
   ``before_cursor_execute`` listener records every statement while the plan
   loader imports a plan full of SQL metacharacters (``'; DROP TABLE
   devices; --``, quotes, ``%s``, ``:name``, ``?``, backslashes, non-ASCII
   text) and CDRs carrying such values are written and read: none of those
   strings ever appears in a statement's text, each arrives as a parameter,
   and everything reads back unchanged (SQLite and PostgreSQL).
3. A static check over ``src/``: no ``text()``, ``literal_column()``,
   ``exec_driver_sql()`` or DB-API ``execute()`` is given anything but a
   literal string (never an f-string, ``%``, ``+`` or ``.format()``; the one
   exception, listed by file and argument, is SQL SQLAlchemy compiled from the
   models), and no formatted string anywhere builds SQL.
"""

from __future__ import annotations

import ast
import os
import re
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import event
from sqlalchemy.engine import Engine

from offhook.db.cdr import CdrRepository, CdrRow
from offhook.db.engine import create_engine_for, upgrade
from offhook.db.plan import load_plan
from offhook.db.snapshot import load_snapshot
from support.netprobe import wait_until
from support.server import OffhookServer, device

SRC = Path(__file__).resolve().parents[2] / "src" / "offhook"

# -- 1. listeners -------------------------------------------------------------------

TCP_LISTEN = "0A"


@dataclass(frozen=True)
class Sock:
    proto: str  # tcp, tcp6, udp, udp6
    local: tuple[str, int]
    remote: tuple[str, int]
    state: str  # /proc/net hex state


def _addr(hexaddr: str) -> tuple[str, int]:
    host, port = hexaddr.split(":")
    raw = bytes.fromhex(host)
    if len(raw) == 4:
        ip = socket.inet_ntop(socket.AF_INET, raw[::-1])
    else:  # four little-endian 32-bit words
        words = struct.unpack("<4I", raw)
        ip = socket.inet_ntop(socket.AF_INET6, struct.pack(">4I", *words))
    return ip, int(port, 16)


def socket_inodes(pid: int) -> set[int]:
    """Inodes of the sockets ``pid`` has open (``/proc/PID/fd`` -> ``socket:[N]``)."""
    out = set()
    fd_dir = f"/proc/{pid}/fd"
    for name in os.listdir(fd_dir):
        try:
            target = os.readlink(f"{fd_dir}/{name}")
        except OSError:
            continue  # closed meanwhile
        m = re.fullmatch(r"socket:\[(\d+)\]", target)
        if m:
            out.add(int(m.group(1)))
    return out


def inet_sockets(pid: int) -> list[Sock]:
    """Every IPv4/IPv6 TCP/UDP socket of ``pid``, from ``/proc/net``."""
    inodes = socket_inodes(pid)
    found = []
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        with open(f"/proc/{pid}/net/{proto}") as fh:
            next(fh)
            for line in fh:
                cols = line.split()
                if int(cols[9]) in inodes:
                    found.append(Sock(proto, _addr(cols[1]), _addr(cols[2]), cols[3]))
    return found


def unix_listeners(pid: int) -> list[str]:
    """Listening AF_UNIX sockets of ``pid`` (flag __SO_ACCEPTCON, 0x10000)."""
    inodes = socket_inodes(pid)
    out = []
    with open(f"/proc/{pid}/net/unix") as fh:
        next(fh)
        for line in fh:
            cols = line.split()
            if int(cols[6]) in inodes and int(cols[3], 16) & 0x10000:
                out.append(cols[7] if len(cols) > 7 else "(anonymous)")
    return out


def listening(socks: list[Sock]) -> set[tuple[str, int]]:
    """What accepts traffic: TCP in LISTEN, UDP not connected to one peer."""
    out = set()
    for s in socks:
        if s.proto.startswith("tcp") and s.state == TCP_LISTEN:
            out.add(("tcp", s.local[1]))
        elif s.proto.startswith("udp") and s.remote[1] == 0:
            out.add(("udp", s.local[1]))
    return out


def configured(server: OffhookServer) -> set[tuple[str, int]]:
    return {
        ("udp", server.sip_port),
        ("tcp", server.sip_port),
        ("tcp", server.sccp_port),
        ("udp", server.tftp_port),
        ("tcp", server.tftp_http_port),
        ("tcp", server.admin_port),
    }


PLAN = {"devices": [device("alice", "alice-Secret-1", "1001")]}


def test_default_node_listens_only_where_configured(tmp_path: Path) -> None:
    with OffhookServer(tmp_path, PLAN) as server:
        assert server.status()["sip"]["port"] == server.sip_port  # the admin endpoint answers
        socks = inet_sockets(server.pid)
        assert listening(socks) == configured(server), socks
        # Every listener is bound to the configured (loopback) address, nothing to a wildcard.
        for s in socks:
            assert s.local[0] == "127.0.0.1", s
        # Nothing else: no connected socket at rest, no database port (the database is a file).
        others = [s for s in socks if s.state != TCP_LISTEN and s.remote[1] != 0]
        assert others == []
        assert unix_listeners(server.pid) == []
        assert server.db_path.exists()


def test_the_web_child_listens_only_on_its_port(tmp_path: Path) -> None:
    """With ``[web] enabled`` the web process is a child of its own: the node's sockets
    are exactly as without it, and the child listens on ``[web] port`` alone (its only
    connection is out, to the node's admin endpoint, for the CTI event stream)."""
    with OffhookServer(tmp_path, PLAN, web=True) as server:
        web = server.status()["web"]
        assert web["up"] and web["pid"] != server.pid
        socks = inet_sockets(server.pid)
        assert listening(socks) == configured(server), socks
        child = inet_sockets(int(web["pid"]))
        assert listening(child) == {("tcp", server.web_port)}, child
        for s in child:
            assert s.local[0] == "127.0.0.1", s
        # Its one connection out is the CTI hub's event stream from the node's admin endpoint.
        upstream = [s for s in child if s.state != TCP_LISTEN and s.remote[1] != 0]
        assert all(s.remote == ("127.0.0.1", server.admin_port) for s in upstream), upstream
        assert len(upstream) <= 1, upstream
        assert unix_listeners(int(web["pid"])) == []


@pytest.mark.postgres
def test_postgres_node_connects_out_and_listens_on_nothing_more(
    tmp_path: Path, pg_url: str
) -> None:
    from sqlalchemy.engine import make_url

    import pg

    pg.reset_schema(pg_url)
    pg_port = make_url(pg_url).port
    assert pg_port
    server = OffhookServer(tmp_path, PLAN, extra_config={"database": {"url": pg_url}})
    with server:
        assert server.status()["sip"]["port"] == server.sip_port

        def db_sockets() -> list[Sock]:
            return [
                s
                for s in inet_sockets(server.pid)
                if pg_port in (s.local[1], s.remote[1]) and s.proto.startswith("tcp")
            ]

        # The node keeps a pooled connection (it polls the plan version).
        assert wait_until(lambda: bool(db_sockets()), 15.0), inet_sockets(server.pid)
        for s in db_sockets():
            assert s.remote[1] == pg_port and s.local[1] != pg_port, s  # outbound only
            assert s.state != TCP_LISTEN
        socks = inet_sockets(server.pid)
        assert listening(socks) == configured(server), socks
        assert unix_listeners(server.pid) == []


# -- 2. bound parameters --------------------------------------------------------------

EVIL = [
    "'; DROP TABLE devices; --",
    '" OR "1"="1',
    "Robert'); DELETE FROM lines;--",
    "%s %d %(name)s %%",
    ":name ?1 $1 @p",
    "back\\slash \\' \\x27",
    "Ünïcødé ☎ 電話 ' \"",
    "`tick`; /* c */ #x",
]


@dataclass
class Recorder:
    statements: list[tuple[str, Any]]

    def __call__(self, conn: Any, cursor: Any, statement: str, params: Any, *rest: Any) -> None:
        self.statements.append((statement, params))


@pytest.fixture
def recorded(db_url: str) -> Iterator[tuple[Engine, Recorder]]:
    engine = create_engine_for(db_url)
    upgrade(engine)
    rec = Recorder([])
    event.listen(engine, "before_cursor_execute", rec)
    try:
        yield engine, rec
    finally:
        event.remove(engine, "before_cursor_execute", rec)
        engine.dispose()


def _values(params: Any) -> list[Any]:
    """Every parameter value of one execute (dict, sequence, or executemany lists)."""
    if isinstance(params, dict):
        return [v for p in params.values() for v in _values(p)]
    if isinstance(params, list | tuple):
        return [v for p in params for v in _values(p)]
    return [params]


def _check_bound(rec: Recorder, expected: list[str]) -> None:
    assert rec.statements
    for statement, _ in rec.statements:
        for evil in EVIL:
            assert evil not in statement, (evil, statement)
    bound = {v for _, params in rec.statements for v in _values(params) if isinstance(v, str)}
    for value in expected:
        assert any(value in b for b in bound), f"{value!r} never arrived as a parameter"


def evil_plan() -> dict[str, Any]:
    return {
        "devices": [
            {
                "name": f"dev{i}",
                "protocol": "sip",
                "password": evil,
                "description": evil,
                "model": evil[:32],
                "lines": [{"dn": f"10{i:02d}", "display": evil}],
            }
            for i, evil in enumerate(EVIL)
        ]
        + [
            {
                "name": "SEP00112233AABB",
                "protocol": "sccp",
                "model": "7960",
                "speed_dials": [{"number": "1000", "label": evil[:40]} for evil in EVIL],
            }
        ],
        "trunks": [
            {
                "name": f"trunk{i}",
                "protocol": "sip",
                # host is checked (an IP address or RFC 3261 hostname), so the
                # payloads go in the free-text credentials.
                "host": f"trunk{i}.example",
                "username": evil,
                "password": evil,
            }
            for i, evil in enumerate(EVIL)
        ],
    }


def test_plan_loader_binds_every_value(recorded: tuple[Engine, Recorder], tmp_path: Path) -> None:
    engine, rec = recorded
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(evil_plan(), allow_unicode=True), encoding="utf-8")
    report = load_plan(path, engine, "realm'; --")
    assert report.created == len(EVIL) + 1
    _check_bound(rec, EVIL)
    # Round trip: what was stored is what the plan said, byte for byte.
    snap = load_snapshot(engine)
    for i, evil in enumerate(EVIL):
        dev = snap.devices[f"dev{i}"]
        assert dev.lines[0].display == evil
        assert dev.model == evil[:32]
        assert dev.realm == "realm'; --"
    sccp = snap.devices["SEP00112233AABB"]
    assert [sd.label for sd in sccp.speed_dials] == [e[:40] for e in EVIL]
    trunks = {t.name: t for t in snap.dialplan_spec.trunks}
    for i, evil in enumerate(EVIL):
        assert (trunks[f"trunk{i}"].host, trunks[f"trunk{i}"].username) == (
            f"trunk{i}.example",
            evil,
        )
        assert trunks[f"trunk{i}"].password == evil
    # The tables the payloads name are all still there, and loading again changes nothing.
    rec.statements.clear()
    assert not load_plan(path, engine, "realm'; --").changed
    assert len(load_snapshot(engine).devices) == len(EVIL) + 1


def test_cdrs_bind_every_value(recorded: tuple[Engine, Recorder]) -> None:
    engine, rec = recorded
    repo = CdrRepository(engine)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [
        CdrRow(
            call_id=f"{evil}@host",
            calling=evil,
            called=evil[:20],
            original_called=evil,
            calling_device=evil,
            called_device=evil,
            start=start + timedelta(seconds=i),
            answer=None,
            end=start + timedelta(seconds=i + 1),
            duration=0,
            cause=16,
            cause_text=evil,
            node=evil,
            extra={"from": evil, evil: "key"},
        )
        for i, evil in enumerate(EVIL)
    ]
    assert repo.add_many(rows) == len(rows)
    assert repo.query() == rows
    assert repo.query(since=start + timedelta(seconds=3), limit=2) == rows[3:5]
    _check_bound(rec, EVIL)


# -- 3. static check over src/ ----------------------------------------------------------

# Functions that take SQL text: only a string literal may be given to them.
SQL_TEXT_FUNCS = {"text", "literal_column", "exec_driver_sql", "executescript", "executemany"}
SQL_WORDS = re.compile(
    r"\b(SELECT\b.*\bFROM|INSERT\s+INTO|UPDATE\b.*\bSET|DELETE\s+FROM|DROP\s+(TABLE|INDEX)"
    r"|CREATE\s+(TABLE|INDEX)|ALTER\s+TABLE|PRAGMA|TRUNCATE|GRANT|VALUES\s*\()",
    re.S,
)
# SQL that SQLAlchemy compiled from the models, run as compiled (no value in its
# text; part 2 watches what reaches the database): (file, argument) pairs.
COMPILED_BY_SQLALCHEMY = {
    ("offhook/db/cdr.py", "compiled.sql"),  # insert(Cdr), compiled once (_CdrInsert)
}


def _call_name(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return ""


def _built_string(node: ast.AST) -> bool:
    """An expression that builds a string from parts: f-string, %, +, .format, .join."""
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.FormattedValue) for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add):
        return True
    return isinstance(node, ast.Call) and _call_name(node) in ("format", "join")


def _literal_text(node: ast.AST) -> str:
    """The constant parts of a (possibly formatted) string expression."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(_literal_text(v) for v in node.values)
    if isinstance(node, ast.BinOp):
        return _literal_text(node.left) + " " + _literal_text(node.right)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return _literal_text(node.func.value)
    return ""


def sql_findings(tree: ast.AST, where: str) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args:
            name = _call_name(node)
            first = node.args[0]
            literal = isinstance(first, ast.Constant) and isinstance(first.value, str)
            compiled = (where, ast.unparse(first)) in COMPILED_BY_SQLALCHEMY
            if name in SQL_TEXT_FUNCS and not literal and not compiled:
                found.append(f"{where}:{node.lineno}: {name}() given a non-literal")
            elif name == "execute" and _built_string(first):
                found.append(f"{where}:{node.lineno}: execute() of a built string")
        if _built_string(node) and SQL_WORDS.search(_literal_text(node)):
            found.append(f"{where}:{getattr(node, 'lineno', 0)}: SQL built by formatting")
    return found


def test_no_sql_is_built_from_variables_in_src() -> None:
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 50
    findings = []
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        findings += sql_findings(tree, str(path.relative_to(SRC.parent)))
    assert findings == []


@pytest.mark.parametrize(
    "code",
    [
        "conn.execute(text(f'SELECT * FROM devices WHERE name = {name}'))",
        "conn.execute(text('SELECT 1 FROM t WHERE a = ' + value))",
        "conn.exec_driver_sql(query)",
        "cur.execute('DELETE FROM lines WHERE dn = %s' % dn)",
        "cur.execute('SELECT * FROM t WHERE x = {}'.format(x))",
        "q = f'UPDATE devices SET css = {css}'",
        "conn.execute(literal_column(name))",
        "conn.exec_driver_sql(compiled.sql, rows)",  # allowed only where listed
    ],
)
def test_the_static_check_catches_string_built_sql(code: str) -> None:
    assert sql_findings(ast.parse(code), "example")


@pytest.mark.parametrize(
    "code",
    [
        "conn.execute(text('SELECT pg_advisory_xact_lock(:k)'), {'k': 1})",
        "cur.execute('PRAGMA foreign_keys=ON')",
        "session.execute(select(Device).where(Device.name == name))",
        "log.info(f'loaded {n} devices from {path}')",
    ],
)
def test_the_static_check_allows_bound_sql(code: str) -> None:
    assert sql_findings(ast.parse(code), "example") == []
