"""Process logging for offhook's processes (the node, the media server): text or JSON lines.

``[log] format = "json"`` writes one JSON object a line: ``ts`` (UTC, ISO
8601), ``level``, ``logger``, ``msg`` (the formatted message), ``exc`` (a
traceback, when there is one) and, when the log call gave them with
``extra=``, the context fields :data:`CONTEXT_FIELDS` in fields of their own:
``call_id``, ``device`` and ``source`` (``host:port`` of the peer), so that a
collector can select every line about one call, one phone or one address::

    log.info("SCCP %s registered from %s", name, where,
             extra={"device": name, "source": where})

``setup_logging`` may be called again (a settings reload): it replaces the
handler, so the new level and format hold from the next line.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from offhook.common.addr import host_port

CONTEXT_FIELDS = ("call_id", "device", "source")
"""Record attributes (given with ``extra=``) a JSON line carries in fields of their own."""


class JsonLines(logging.Formatter):
    """One JSON object a record: ts (UTC, ISO 8601), level, logger, msg, the context
    fields a record has (``call_id``, ``device``, ``source``), exc."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = record.__dict__.get(name)
            if value is not None and value != "":
                out[name] = _field(value)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)


def _field(value: object) -> str | int | float:
    """A context value as JSON carries it: a (host, port) pair as ``host:port``."""
    if isinstance(value, str | int | float):
        return value
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], int):
        return host_port(str(value[0]), value[1])
    return str(value)


def setup_logging(level: str, fmt: str) -> None:
    """Log to stderr at ``level`` (a name such as ``info``), ``fmt`` ``text`` or ``json``."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonLines())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    # Alembic tells at info which of its plugins it set up, at every start: only at debug.
    quiet = logging.WARNING if root.level > logging.DEBUG else logging.NOTSET
    logging.getLogger("alembic").setLevel(quiet)
