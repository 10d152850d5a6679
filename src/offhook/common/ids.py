"""Random identifiers: SIP tags, branches, Call-IDs and call ids in records."""

from __future__ import annotations

import secrets

BRANCH_MAGIC = "z9hG4bK"  # RFC 3261 §8.1.1.7


def token(nbytes: int = 8) -> str:
    return secrets.token_hex(nbytes)


def new_branch() -> str:
    return BRANCH_MAGIC + secrets.token_hex(8)


def new_tag() -> str:
    return secrets.token_hex(6)


def new_call_id(host: str) -> str:
    return f"{secrets.token_hex(12)}@{host}"
