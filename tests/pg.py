"""A throwaway PostgreSQL server for the database tests.

``start_cluster()`` finds the Debian/Ubuntu binaries (``/usr/lib/postgresql/*/bin``,
or ``initdb`` on PATH), runs ``initdb`` into a temporary directory and starts
``postgres`` on 127.0.0.1 and a free port, with durability switched off (it
is thrown away). PostgreSQL refuses to run as root, so as root the cluster
belongs to the ``postgres`` system user (the child processes are started with
that uid directly, so signals reach ``postgres`` itself).
``PgCluster.stop()`` shuts it down and removes the directory.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


class PgUnavailable(RuntimeError):
    """No usable PostgreSQL server binaries (the message says what is missing)."""


def find_bindir() -> Path | None:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PgCluster:
    root: Path
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    def url(self, db: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{db}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # "fast" shutdown
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def start_cluster(timeout: float = 60.0) -> PgCluster:
    bindir = find_bindir()
    if bindir is None:
        raise PgUnavailable(
            "PostgreSQL server binaries not found (no /usr/lib/postgresql/*/bin/initdb "
            "and no initdb on PATH; Debian package `postgresql`)"
        )
    owner: pwd.struct_passwd | None = None
    as_user: dict[str, object] = {}
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            raise PgUnavailable("running as root and there is no `postgres` user") from None
        as_user = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}
    root = Path(tempfile.mkdtemp(prefix="offhook-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    if owner is not None:
        for p in (root, sock):
            os.chown(p, owner.pw_uid, owner.pw_gid)
    log = root / "postgres.log"
    init = subprocess.run(
        [
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=root,
        **as_user,  # type: ignore[call-overload]
    )
    if init.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"initdb failed ({init.returncode}):\n{init.stdout}\n{init.stderr}")
    port = _free_port()
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [
                str(bindir / "postgres"),
                "-D",
                str(data),
                "-k",
                str(sock),
                "-p",
                str(port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=50",
            ],
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=root,
            **as_user,  # type: ignore[call-overload]
        )
    cluster = PgCluster(root, port, proc, log)
    deadline = time.monotonic() + timeout
    import psycopg

    while True:
        if proc.poll() is not None:
            text = log.read_text(errors="replace")
            shutil.rmtree(root, ignore_errors=True)
            raise RuntimeError(f"postgres exited {proc.returncode}:\n{text}")
        try:
            with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres"):
                return cluster
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                cluster.stop()
                raise RuntimeError(f"postgres did not accept connections in {timeout}s") from None
            time.sleep(0.1)


def create_database(admin_url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    conninfo = admin_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def reset_schema(url: str) -> None:
    """Drop everything in the ``public`` schema of the (throwaway) database at ``url``."""
    import psycopg

    conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")
