"""What changed between two loads of the settings file (a SIGHUP reload).

``changed_keys(old, new)`` lists the ``(section, key)`` pairs whose values
differ, in the settings' own order; ``shown(key, value)`` is a value as a
reload's log line may print it (never the value of a secret key:
:data:`SECRET_KEYS`). The node (``node_reload``) and the web process
(``web.reload``) each apply what they can of them.
"""

from __future__ import annotations

from typing import Any

from offhook.config import Settings
from offhook.config_base import Section

__all__ = ["SECRET_KEYS", "changed_keys", "shown"]

SECRET_KEYS = frozenset({"secret", "url", "tls_key", "password"})
"""Keys whose values a log line never shows (the database URL may hold a password)."""


def changed_keys(old: Settings, new: Settings) -> list[tuple[str, str]]:
    """``(section, key)`` of every value that differs, in the settings' order."""
    out = []
    for name in Settings.model_fields:
        before, after = getattr(old, name), getattr(new, name)
        if not isinstance(before, Section) or before == after:
            continue
        for key in type(before).model_fields:
            if getattr(before, key) != getattr(after, key):
                out.append((name, key))
    return out


def shown(key: str, value: Any) -> str:
    """``value`` for a log line: its repr, or ``(not shown)`` for a secret key."""
    return "(not shown)" if key in SECRET_KEYS else repr(value)
