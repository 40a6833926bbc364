"""Source positions: YAML paths to file lines and columns, and core errors to positions.

`SourceMap` maps a path of keys and indices to the node that holds it; `locate_core_error`
turns an error the Rust core raised (offer, rule line and column) into a file position, even
inside quoted and block scalars.
"""

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import yaml

from decision_engine.catalog.issues import CatalogIssue
from decision_engine.catalog.limits import MAX_YAML_DEPTH, YamlLimitError

__all__ = [
    "Position",
    "SourceMap",
    "YamlPath",
    "locate_core_error",
    "mark_position",
    "offset_position",
    "walk",
]

YamlPath = tuple[str | int, ...]
Position = tuple[int, int]  # (line, column), both 1-based

# list key -> (label used in messages, key holding the item's name)
_ITEMS: dict[str, tuple[str, str | None]] = {
    "offers": ("offer", "id"),
    "placements": ("placement", "id"),
    "features": ("feature", "name"),
    "channels": ("channel", None),
    "events": ("event", "type"),
    "triggers": ("trigger", "id"),
}
# the key holding the rule text whose rule_line/rule_column a core error gives, by kind
_RULE_KEYS = {"trigger": "filter"}
# top-level sections the core reports errors of by name (not an item of a list)
_SECTIONS = frozenset({"profiles"})


def mark_position(node: yaml.Node) -> Position:
    return node.start_mark.line + 1, node.start_mark.column + 1


def offset_position(text: str, offset: int) -> Position:
    line_start = text.rfind("\n", 0, offset) + 1
    return text.count("\n", 0, offset) + 1, offset - line_start + 1


def _children(
    node: yaml.Node,
) -> Iterator[tuple[str | int, yaml.Node, yaml.Node | None]]:
    """(path component, value node, key node) of each child of a mapping/sequence."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                yield key.value, value, key
    elif isinstance(node, yaml.SequenceNode):
        for index, value in enumerate(node.value):
            yield index, value, None


def walk(root: yaml.Node, visit: Callable[[YamlPath, yaml.Node], None]) -> None:
    """Calls `visit(path, node)` on every node under `root`, parents first, in document order.

    Iterative, and bounded like the loader: a node deeper than `MAX_YAML_DEPTH` raises
    `YamlLimitError` instead of recursing on. A recursive alias is not followed.
    """
    stack: list[tuple[yaml.Node, YamlPath, frozenset[int]]] = [(root, (), frozenset())]
    while stack:
        node, path, active = stack.pop()
        if id(node) in active:  # recursive alias
            continue
        if len(path) >= MAX_YAML_DEPTH:
            raise YamlLimitError(
                problem=f"the catalog nests deeper than {MAX_YAML_DEPTH} levels (the limit)",
                problem_mark=node.start_mark,
            )
        visit(path, node)
        inner = active | {id(node)}
        kids = [(child, (*path, name), inner) for name, child, _ in _children(node)]
        stack.extend(reversed(kids))


@dataclass(frozen=True, eq=False)
class SourceMap(Mapping[YamlPath, Position]):
    """Maps a path of keys and indices, e.g. ("offers", 3, "rule"), to the 1-based
    (line, column) of its value."""

    text: str
    nodes: Mapping[YamlPath, yaml.Node]
    key_nodes: Mapping[YamlPath, yaml.Node]  # the key node of each mapping entry

    @classmethod
    def build(cls, text: str, root: yaml.Node | None) -> "SourceMap":
        nodes: dict[YamlPath, yaml.Node] = {}
        keys: dict[YamlPath, yaml.Node] = {}

        def visit(path: YamlPath, node: yaml.Node) -> None:
            nodes[path] = node
            for name, _, key in _children(node):
                if key is not None:
                    keys[(*path, name)] = key

        if root is not None:
            walk(root, visit)
        return cls(text, nodes, keys)

    def __getitem__(self, path: YamlPath) -> Position:
        return mark_position(self.nodes[path])

    def __iter__(self) -> Iterator[YamlPath]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    def nearest(self, loc: Sequence[str | int]) -> YamlPath:
        """The longest existing path along `loc` (skipping parts not in the file)."""
        path: YamlPath = ()
        for part in loc:
            if (*path, part) in self.nodes:
                path = (*path, part)
        return path

    def key_position(self, path: YamlPath) -> Position | None:
        key = self.key_nodes.get(path)
        return mark_position(key) if key is not None else self.get(path)

    def describe(self, path: YamlPath) -> tuple[str, YamlPath]:
        """("offer 'gold_card'", path inside the item) or ("catalog", path)."""
        if len(path) >= 2 and isinstance(path[1], int) and str(path[0]) in _ITEMS:
            label, name_key = _ITEMS[str(path[0])]
            node = self.nodes.get(path[:2] + ((name_key,) if name_key else ()))
            name = node.value if isinstance(node, yaml.ScalarNode) else None
            return f"{label} '{name}'" if name else f"{label} #{path[1]}", path[2:]
        return "catalog", path

    def find_item(self, kind: str, name: str) -> YamlPath | None:
        """Path of the offer/placement/feature/channel `name`, e.g. ("offers", 3)."""
        for list_key, (label, name_key) in _ITEMS.items():
            if label == kind:
                index = 0
                while (item := (list_key, index)) in self.nodes:
                    node = self.nodes.get(item + ((name_key,) if name_key else ()))
                    if isinstance(node, yaml.ScalarNode) and node.value == name:
                        return item
                    index += 1
        return None


def _rule_offsets(text: str, node: yaml.ScalarNode) -> list[int]:
    """Offset in `text` of each character of the scalar's value, plus one for its end.

    Aligns the value with its source, skipping quotes, escapes, indentation and folded
    line breaks, so it works for plain, quoted, multi-line and block (`|`, `>`) scalars.
    """
    start, end = node.start_mark.index, node.end_mark.index
    if node.style in ("|", ">"):
        newline = text.find("\n", start, end)
        start = end if newline < 0 else newline + 1
    elif node.style in ("'", '"'):
        start += 1
    offsets: list[int] = []
    p = start
    for ch in node.value:
        if not ch.isspace():
            while p < end and text[p].isspace():
                p += 1
            found = text.find(ch, p, min(end, p + 12))  # skip quotes and escapes
            p = found if found >= 0 else p
        offsets.append(min(p, end))
        p += 1
    offsets.append(min(p, end))
    return offsets


def locate_core_error(
    source_map: SourceMap,
    path: str,
    kind: str,
    item: str | None,
    rule_line: int | None,
    rule_column: int | None,
    detail: str,
) -> CatalogIssue:
    """File position of an error raised by the Rust core when compiling the catalog.

    `path` is the catalog's file name; `rule_line`/`rule_column` are 1-based inside the
    rule text of offer `item` (or None when the error is not inside a rule).
    """
    where = f"{kind} '{item}'" if item is not None and kind != "catalog" else kind
    item_path = source_map.find_item(kind, item) if item is not None else None
    position = source_map.get(())
    if kind in _SECTIONS:  # a top-level section such as `profiles:`, at its key
        position = source_map.key_position((kind,)) or position
    if item_path is not None:
        name_key = next((key for label, key in _ITEMS.values() if label == kind and key), "id")
        position = source_map.get((*item_path, name_key), source_map.get(item_path))
        rule = source_map.nodes.get((*item_path, _RULE_KEYS.get(kind, "rule")))
        if rule_line is not None and isinstance(rule, yaml.ScalarNode):
            lines = str(rule.value).split("\n")
            row = min(max(rule_line, 1), len(lines)) - 1
            index = sum(len(line) + 1 for line in lines[:row])
            index += max(rule_column or 1, 1) - 1
            offsets = _rule_offsets(source_map.text, rule)
            offset = offsets[min(index, len(offsets) - 1)]
            position = offset_position(source_map.text, offset)
    line, column = position or (None, None)
    return CatalogIssue(path, line, column, where, detail)
