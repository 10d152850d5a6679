"""Random identifiers: SIP tags, branches, Call-IDs and call ids in records.

With several worker processes (``[node] workers``, docs/workers.md) every
Call-ID, tag and branch a worker makes carries its index in one fixed place,
so that another worker can tell, with a ``bytes.find`` and no parse, whose
dialog or transaction a datagram belongs to: ``w<index>-`` at the start of a
Call-ID or tag, right after the ``z9hG4bK`` magic cookie of a branch. An
:class:`Ids` is the id maker (plain ids: :data:`PLAIN`, what one worker uses);
the module functions make plain ids.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

BRANCH_MAGIC = "z9hG4bK"  # RFC 3261 §8.1.1.7
MAX_WORKERS = 64


def token(nbytes: int = 8) -> str:
    return secrets.token_hex(nbytes)


def new_branch() -> str:
    return BRANCH_MAGIC + secrets.token_hex(8)


def new_tag() -> str:
    return secrets.token_hex(6)


def new_call_id(host: str) -> str:
    return f"{secrets.token_hex(12)}@{host}"


def worker_prefix(index: int) -> str:
    """The mark of worker ``index`` at the start of its ids: ``w3-``."""
    if not 0 <= index < MAX_WORKERS:
        raise ValueError(f"worker index {index} is not in 0..{MAX_WORKERS - 1}")
    return f"w{index}-"


def worker_of(ident: str) -> int | None:
    """The worker index an id (Call-ID, tag, or branch) names, or None."""
    if ident.startswith(BRANCH_MAGIC):
        ident = ident[len(BRANCH_MAGIC) :]
    if not ident.startswith("w"):
        return None
    digits, dash, _ = ident[1:4].partition("-")
    if not dash or not digits.isascii() or not digits.isdigit() or len(digits) > 2:
        return None
    index = int(digits)
    return index if index < MAX_WORKERS and str(index) == digits else None


@dataclass(frozen=True, slots=True)
class Ids:
    """Makes Call-IDs, tags and branches; ``prefix`` (``worker_prefix``) marks a worker's."""

    prefix: str = ""

    @classmethod
    def for_worker(cls, index: int | None) -> Ids:
        return cls() if index is None else cls(worker_prefix(index))

    def branch(self) -> str:
        return BRANCH_MAGIC + self.prefix + secrets.token_hex(8)

    def tag(self) -> str:
        return self.prefix + secrets.token_hex(6)

    def call_id(self, host: str) -> str:
        return f"{self.prefix}{secrets.token_hex(12)}@{host}"


PLAIN = Ids()
"""Ids without a worker mark (one worker: exactly the ids of :func:`new_branch` and co)."""
