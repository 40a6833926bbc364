"""What a catalog file may ask of the YAML loader: its size, its nesting depth, and how far its
aliases expand.

YAML aliases (`*base`, `<<: *base`) stand for a whole node, so a few hundred bytes of nested
aliases can stand for a billion nodes ("billion laughs"). They are allowed, but the document
they describe is measured first, in time linear in the file, before anything walks, builds
or validates it: past a limit the catalog is refused with the position of the alias or node
at fault, never a `RecursionError`. The Rust core has no YAML, so these limits live here; the
core bounds what the catalog declares (offers, placements, rule depth) itself.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import yaml

__all__ = [
    "MAX_CATALOG_BYTES",
    "MAX_YAML_DEPTH",
    "MAX_YAML_NODES",
    "CatalogLoader",
    "YamlLimitError",
    "check_expansion",
    "children",
]

MAX_CATALOG_BYTES = 8 * 1024 * 1024
"""Largest catalog file, in bytes of UTF-8."""
MAX_YAML_DEPTH = 64
"""Deepest nesting of mappings and sequences, counting the levels aliases stand for."""
MAX_YAML_NODES = 1_000_000
"""Most nodes (mappings, sequences, scalars; keys count) the document may have, also once every
alias is expanded. A catalog at the core's limit of 20,000 offers has a few hundred thousand;
composing a million takes the pure-Python YAML parser some 40 s of CPU at worst."""


class YamlLimitError(yaml.MarkedYAMLError):
    """The document is well-formed YAML but asks more of the loader than a catalog may."""


def _limit_error(message: str, mark: yaml.Mark | None) -> YamlLimitError:
    return YamlLimitError(problem=message, problem_mark=mark)


class CatalogLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that refuses nesting deeper than `MAX_YAML_DEPTH` (PyYAML composes
    recursively) and more than `MAX_YAML_NODES` nodes while it composes, and remembers where
    each alias is used."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self.nodes = 0  # composed so far, aliases not expanded
        self.aliases: list[tuple[yaml.Mark, yaml.Node]] = []  # (where the alias is, its node)

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            node = super().compose_node(parent, index)
            if node is not None:
                self.aliases.append((mark, node))
            return node
        if self._depth >= MAX_YAML_DEPTH:
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise _limit_error(f"the catalog nests deeper than {MAX_YAML_DEPTH} levels (the limit)", mark)
        self.nodes += 1
        if self.nodes > MAX_YAML_NODES:
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise _limit_error(f"the catalog has more than {MAX_YAML_NODES:,} YAML nodes (the limit)", mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def children(node: yaml.Node) -> Iterator[yaml.Node]:
    """The child nodes of a mapping (keys and values) or a sequence."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield key
            yield value
    elif isinstance(node, yaml.SequenceNode):
        yield from node.value


@dataclass(frozen=True)
class _Measure:
    nodes: int  # in the expanded tree under the node, itself included
    height: int  # levels of the expanded tree, the node's own included


def _measure(root: yaml.Node, aliases: Iterable[tuple[yaml.Mark, yaml.Node]]) -> dict[int, _Measure]:
    """Size and height of every node's expanded tree, by an iterative post-order walk of the
    node graph (each node once, however many aliases point at it)."""
    done: dict[int, _Measure] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if id(node) in done:
            continue
        kids = list(children(node))
        if expanded:
            open_nodes.discard(id(node))
            measures = [done[id(k)] for k in kids]
            nodes = 1 + sum(m.nodes for m in measures)
            done[id(node)] = _Measure(nodes, 1 + max((m.height for m in measures), default=0))
            continue
        open_nodes.add(id(node))
        stack.append((node, True))
        for kid in kids:
            if id(kid) in open_nodes:
                mark = next((m for m, n in aliases if n is kid), kid.start_mark)
                raise _limit_error("a YAML alias refers to a node that contains it (recursive aliases)", mark)
            if id(kid) not in done:
                stack.append((kid, False))
    return done


def check_expansion(root: yaml.Node, aliases: list[tuple[yaml.Mark, yaml.Node]]) -> None:
    """Raises `YamlLimitError` if the document, aliases expanded, is recursive, has more than
    `MAX_YAML_NODES` nodes or nests deeper than `MAX_YAML_DEPTH`."""
    if not aliases:  # without aliases the composer has bounded the depth, the file size the rest
        return
    measures = _measure(root, aliases)
    total = measures[id(root)]
    if total.nodes > MAX_YAML_NODES:
        mark, node = max(aliases, key=lambda alias: measures[id(alias[1])].nodes)
        raise _limit_error(
            f"YAML aliases expand the catalog to {total.nodes:,} nodes, more than the limit of "
            f"{MAX_YAML_NODES:,}; this alias alone stands for {measures[id(node)].nodes:,}",
            mark,
        )
    if total.height > MAX_YAML_DEPTH:
        node = root
        for _ in range(MAX_YAML_DEPTH):  # down the deepest branch, to the first level too many
            node = max(children(node), key=lambda kid: measures[id(kid)].height)
        raise _limit_error(
            f"with its YAML aliases expanded the catalog nests deeper than {MAX_YAML_DEPTH} levels "
            "(the limit)",
            node.start_mark,
        )
