"""What this SIP node implements, and what a peer says it implements.

``ALLOW`` is the method list every ``Allow`` header of ours carries (RFC 3261
§20.5); ``SUPPORTED_TAGS`` the option tags we implement (RFC 3261 §19.2):
``100rel`` (RFC 3262 reliable provisional responses), ``timer`` (RFC 4028
session timers) and ``replaces`` (RFC 3891), written in ``Supported``
headers and accepted in a peer's ``Require``.

``option_tags`` reads a peer's ``Supported``/``Require`` tags and
``allowed_methods`` its ``Allow`` list, both lower/upper-cased sets, so the
legs can ask "may I refresh with UPDATE?" or "must this 18x be reliable?".
"""

from __future__ import annotations

from offhook.sip.message import SipMessage

__all__ = [
    "ALLOW",
    "SUPPORTED",
    "SUPPORTED_TAGS",
    "allowed_methods",
    "option_tags",
]

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, INFO, PRACK, UPDATE, REFER, SUBSCRIBE, NOTIFY"
SUPPORTED_TAGS = frozenset({"100rel", "timer", "replaces"})
SUPPORTED = "100rel, timer, replaces"


def option_tags(msg: SipMessage, header: str) -> frozenset[str]:
    """The option tags of every ``header`` line (``Supported``, ``Require``), lower-cased."""
    return frozenset(tag.strip().lower() for tag in msg.headers.get_all(header) if tag.strip())


def allowed_methods(msg: SipMessage) -> frozenset[str] | None:
    """The methods a peer's ``Allow`` lists (upper-cased), or None without an Allow header."""
    if "Allow" not in msg.headers:
        return None
    return frozenset(m.strip().upper() for m in msg.headers.get_all("Allow") if m.strip())
