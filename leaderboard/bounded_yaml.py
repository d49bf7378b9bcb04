"""YAML from a submission, parsed with bounds: nesting depth, expanded size and wall-clock time.

YAML aliases let a few hundred bytes name a tree of billions of nodes (an "alias bomb": nine
anchors of nine aliases each). `yaml.safe_load` builds it cheaply, as shared objects, but anything
that walks the result (the config hash serialises it) expands every alias, for minutes and
gigabytes. Here the node graph is composed first, its expanded size is counted once per distinct
node (linear in the file), and a document that would expand past `max_nodes`, refers to itself,
nests deeper than `max_depth` or takes longer than `seconds` to parse is refused before anything
is built from it. Anchors and aliases within the bounds stay valid (grid configs use them).
"""
from __future__ import annotations

import time
from typing import Any

import yaml

MAX_NODES = 100_000     # a grid config has a few hundred nodes once its aliases are expanded
MAX_DEPTH = 64          # nesting levels (the grid schema needs about 8)
MAX_SECONDS = 5.0       # parsing a capped-size file takes milliseconds


class YamlLimitError(ValueError):
    """A YAML document over one of the bounds; the message names the bound and the fix."""


class _BoundedLoader(yaml.SafeLoader):
    def __init__(self, text: str, max_depth: int, deadline: float):
        super().__init__(text)
        self._max_depth, self._deadline, self._depth = max_depth, deadline, 0

    def compose_node(self, parent, index):
        if time.monotonic() > self._deadline:
            raise YamlLimitError("parsing took longer than the time limit; a config is a small file")
        self._depth += 1
        try:
            if self._depth > self._max_depth:
                raise YamlLimitError(f"nested more than {self._max_depth} levels deep; a config "
                                     "needs about 8")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def expanded_size(root: yaml.Node, limit: int) -> int:
    """Nodes of the document with every alias expanded, each distinct node visited once (no
    recursion); raises YamlLimitError past `limit` or on a node that contains itself."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            on_path.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in _children(node))
            if sizes[key] > limit:
                raise YamlLimitError(f"its aliases expand to more than {limit} values (an alias bomb?); "
                                     "write the config out without nested aliases")
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise YamlLimitError("an alias refers to a node that contains it (a recursive structure); "
                                 "a config must be a tree")
        on_path.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)
    return sizes[id(root)]


def load(text: str, max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH,
         seconds: float = MAX_SECONDS) -> Any:
    """Like `yaml.safe_load(text)`, within the bounds (YamlLimitError otherwise; yaml.YAMLError
    for a syntax error, as safe_load)."""
    loader = _BoundedLoader(text, max_depth, time.monotonic() + seconds)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        expanded_size(node, max_nodes)
        return loader.construct_document(node)
    finally:
        loader.dispose()
