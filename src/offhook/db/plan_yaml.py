"""Reading a plan's YAML text: bounded, then validated by ``plan_check.parse_plan``.

The text is limited in size (``MAX_PLAN_BYTES``), nesting
(``MAX_PLAN_DEPTH``; PyYAML composes recursively) and size once aliases are
expanded (``MAX_PLAN_NODES``: anchors cannot multiply the work), and only
YAML's safe types are built (``yaml.SafeLoader``). Every failure,
a YAML syntax error included, is a :class:`~offhook.db.plan_check.PlanError`
naming the file and, where known, the line and column.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from offhook.db.plan_check import PlanError, parse_plan
from offhook.db.plan_spec import PlanSpec

MAX_PLAN_BYTES = 64 << 20
MAX_PLAN_DEPTH = 64
"""Deepest YAML nesting accepted (a plan needs 7; PyYAML composes recursively)."""
MAX_PLAN_NODES = 4_000_000
"""Most YAML nodes a plan may have once its aliases are expanded (what a
``MAX_PLAN_BYTES`` file could hold anyway): anchors cannot multiply the work."""


class _PlanLoader(yaml.SafeLoader):
    """PyYAML's safe loader with a bound on nesting (its composer recurses per level)."""

    def __init__(self, stream: bytes | str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_PLAN_DEPTH:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"nested deeper than {MAX_PLAN_DEPTH} levels",
                    self.peek_event().start_mark,  # type: ignore[no-untyped-call]
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _expanded_size(root: yaml.Node) -> int:
    """Nodes of ``root`` with every alias expanded (a shared node counts each time).

    Raises ``ValueError`` for a node that contains itself (``&a [*a]``).
    """
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise ValueError("an alias refers to a node that contains it")
        active.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        total = min(total, MAX_PLAN_NODES + 1)
        active.discard(key)
        sizes[key] = total
        return total

    return size(root)


def _load_yaml(text: bytes | str, source: str) -> Any:
    """YAML text as Python data, bounded in depth and expanded size; PlanError otherwise."""
    loader: _PlanLoader | None = None
    try:
        loader = _PlanLoader(text)  # the reader decodes (and may refuse) the text here
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node) > MAX_PLAN_NODES:
            raise PlanError(
                source, [("", f"more than {MAX_PLAN_NODES} YAML nodes once aliases are expanded")]
            )
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise PlanError(source, [(where, f"invalid YAML: {problem}")]) from None
    except ValueError as exc:
        # PyYAML's constructors let a few ValueErrors out: a date that does not
        # exist (2020-02-30), an integer of more than 4300 digits (CVE-2020-10735
        # limit), a time zone offset of a day or more; and _expanded_size.
        raise PlanError(source, [("", f"invalid YAML: {exc}")]) from None
    finally:
        if loader is not None:
            loader.dispose()


def parse_plan_text(
    text: bytes | str,
    source: str,
    base: Path | None = None,
    *,
    require_passwords: bool = False,
) -> PlanSpec:
    """Validate a plan given as YAML text; raise :class:`PlanError` on any problem.

    ``base``: the directory relative music on hold files are read from;
    ``require_passwords``: see :func:`~offhook.db.plan_check.parse_plan`.
    """
    if len(text) > MAX_PLAN_BYTES:
        raise PlanError(source, [("", f"larger than {MAX_PLAN_BYTES} bytes")])
    return parse_plan(_load_yaml(text, source), source, base, require_passwords=require_passwords)


def read_plan(path: Path, *, require_passwords: bool = True) -> PlanSpec:
    """Read and validate a YAML plan file (music on hold files relative to its directory).

    A sip device needs its password unless ``require_passwords`` is False
    (a file to be applied with ``keep_passwords``).
    """
    source = str(path)
    try:
        with Path(path).open("rb") as fh:
            text = fh.read(MAX_PLAN_BYTES + 1)
    except OSError as exc:
        raise PlanError(source, [("", f"cannot read ({exc.strerror})")]) from None
    return parse_plan_text(text, source, Path(path).parent, require_passwords=require_passwords)
