"""``offhook status`` with ``[node] workers`` > 1: one summary line per worker.

Each worker has its own control endpoint (``[admin] port + index``); the
status view of the rest of ``offhook status`` is worker 0's. This asks every
worker for its ``status`` and prints, per worker, its pid, the registrations
it holds (its own and the copies of the others'), its calls and dialogs, and
its bus counters (datagrams passed on and received, messages dropped).
"""

from __future__ import annotations

from typing import Any

from offhook.config import Settings
from offhook.ris.control import ControlError, NodeUnavailable
from offhook.ris.status_view import fetch_status


def worker_settings_of(settings: Settings, index: int) -> Settings:
    """``settings`` with the control endpoint of worker ``index``."""
    admin = settings.admin
    port = admin.port + index if admin.port else 0
    return settings.model_copy(update={"admin": admin.model_copy(update={"port": port})})


def summaries(settings: Settings, timeout: float = 5.0) -> list[dict[str, Any]]:
    """One row per worker: its figures, or ``{"index": i, "down": why}``."""
    rows: list[dict[str, Any]] = []
    for index in range(settings.node.workers):
        try:
            data = fetch_status(worker_settings_of(settings, index), timeout=timeout)
        except (NodeUnavailable, ControlError, OSError) as exc:  # that worker is shown down
            rows.append({"index": index, "down": str(exc) or type(exc).__name__})
            continue
        worker = data.get("worker") or {}
        calls = data.get("calls") or {}
        counters = data.get("counters") or {}
        rows.append(
            {
                "index": index,
                "pid": worker.get("pid"),
                "registrations": len(data.get("registrations") or []),
                "calls": len(calls.get("calls") or []) if isinstance(calls, dict) else 0,
                "dialogs": counters.get("dialogs", 0),
                **{
                    k: worker.get(k, 0) for k in ("forwarded", "received", "bus_dropped", "bus_bad")
                },
            }
        )
    return rows


def print_workers(settings: Settings) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Workers ({settings.node.workers})")
    columns = ("index", "pid", "registrations", "calls", "dialogs", "forwarded", "received")
    for name in (*columns, "bus_dropped"):
        table.add_column(name)
    for row in summaries(settings):
        if "down" in row:
            table.add_row(str(row["index"]), f"down: {row['down']}", *[""] * 6)
        else:
            table.add_row(*(str(row[k]) for k in (*columns, "bus_dropped")))
    Console().print(table)
