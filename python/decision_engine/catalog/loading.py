"""Load and validate a catalog YAML file, keeping source positions for error messages.

Every problem is raised as one `CatalogError` whose `issues` lists all of them, and
whose message has one `file:LINE:COL: where: message` line per issue.
"""

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from .catalog_schema import Catalog
from .errors import CatalogError

__all__ = [
    "CatalogIssue",
    "LoadedCatalog",
    "SourceMap",
    "catalog_error",
    "load_catalog",
    "locate_core_error",
    "parse_catalog",
]

YamlPath = tuple[str | int, ...]
Position = tuple[int, int]  # (line, column), both 1-based

_MERGE_TAG = "tag:yaml.org,2002:merge"
# list key -> (label used in messages, key holding the item's name)
_ITEMS: dict[str, tuple[str, str | None]] = {
    "offers": ("offer", "id"),
    "placements": ("placement", "id"),
    "features": ("feature", "name"),
    "channels": ("channel", None),
}


@dataclass(frozen=True)
class CatalogIssue:
    file: str
    line: int | None
    column: int | None
    where: str  # "offer 'id'", "placement 'id'", "feature 'name'", "channel 'name'"
    #             or "catalog"
    message: str

    def __str__(self) -> str:
        pos = "" if self.line is None else f":{self.line}:{self.column or 1}"
        return f"{self.file}{pos}: {self.where}: {self.message}"


def catalog_error(issues: Sequence[CatalogIssue]) -> CatalogError:
    """A `CatalogError` listing `issues` (sorted by position) in `.issues` too."""
    ordered = sorted(issues, key=lambda i: (i.line or 0, i.column or 0))
    err = CatalogError("\n".join(str(issue) for issue in ordered))
    cast(Any, err).issues = ordered
    return err


def _mark(node: yaml.Node) -> Position:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _offset_position(text: str, offset: int) -> Position:
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


def _walk(
    node: yaml.Node,
    visit: Callable[[YamlPath, yaml.Node], None],
    path: YamlPath = (),
    active: frozenset[int] = frozenset(),
) -> None:
    if id(node) in active:  # recursive alias
        return
    visit(path, node)
    for name, child, _ in _children(node):
        _walk(child, visit, (*path, name), active | {id(node)})


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
            _walk(root, visit)
        return cls(text, nodes, keys)

    def __getitem__(self, path: YamlPath) -> Position:
        return _mark(self.nodes[path])

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
        return _mark(key) if key is not None else self.get(path)

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


def _dotted(path: YamlPath) -> str:
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
    return text.lstrip(".")


def _validation_issue(source_map: SourceMap, file: str, error: ErrorDetails) -> CatalogIssue:
    loc = tuple(error["loc"])
    path = source_map.nearest(loc)
    position = source_map.get(path)
    message = error["msg"].removeprefix("Value error, ").replace("valid tuple", "list")
    if error["type"] == "string_type" and isinstance(error.get("input"), bool):
        message += " (YAML reads unquoted yes/no/on/off/true/false as booleans)"
    if error["type"] == "missing" and loc:
        message = f"missing required field '{loc[-1]}'"
    elif error["type"] == "extra_forbidden" and path and path[-1] == loc[-1]:
        message = f"unknown field '{loc[-1]}'"
        position, path = source_map.key_position(path), path[:-1]
    where, inner = source_map.describe(path)
    label = _dotted(inner)
    line, column = position or (None, None)
    message = f"{label}: {message}" if label else message
    return CatalogIssue(file, line, column, where, message)


def _duplicate_key_issues(source_map: SourceMap, file: str, root: yaml.Node) -> list[CatalogIssue]:
    """Duplicate keys (YAML silently keeps the last one); run before merges flatten."""
    issues: list[CatalogIssue] = []
    done: set[int] = set()

    def visit(path: YamlPath, node: yaml.Node) -> None:
        if not isinstance(node, yaml.MappingNode) or id(node) in done:
            return
        done.add(id(node))
        first: dict[str, yaml.Node] = {}
        for key, _ in node.value:
            if isinstance(key, yaml.ScalarNode) and key.tag != _MERGE_TAG:
                if key.value in first:
                    where, _inner = source_map.describe(path)
                    line = first[key.value].start_mark.line + 1
                    message = f"duplicate key '{key.value}' (first at line {line})"
                    issues.append(CatalogIssue(file, *_mark(key), where, message))
                first.setdefault(key.value, key)

    _walk(root, visit)
    return issues


def _yaml_issue(file: str, text: str, exc: yaml.YAMLError) -> CatalogIssue:
    if isinstance(exc, yaml.MarkedYAMLError) and (mark := exc.problem_mark or exc.context_mark):
        message = f"invalid YAML: {exc.problem or exc.context}"
        if exc.context and exc.problem and exc.context_mark:
            message += f" ({exc.context} at line {exc.context_mark.line + 1})"
        return CatalogIssue(file, mark.line + 1, mark.column + 1, "catalog", message)
    if isinstance(exc, yaml.reader.ReaderError):
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        message = f"invalid YAML: {exc.reason} (character #x{code:04x})"
        position = _offset_position(text, exc.position)
        return CatalogIssue(file, *position, "catalog", message)
    return CatalogIssue(file, None, None, "catalog", f"invalid YAML: {exc}")


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
    if item_path is not None:
        name_key = "name" if kind == "feature" else "id"
        position = source_map.get((*item_path, name_key), source_map.get(item_path))
        rule = source_map.nodes.get((*item_path, "rule"))
        if rule_line is not None and isinstance(rule, yaml.ScalarNode):
            lines = str(rule.value).split("\n")
            row = min(max(rule_line, 1), len(lines)) - 1
            index = sum(len(line) + 1 for line in lines[:row])
            index += max(rule_column or 1, 1) - 1
            offsets = _rule_offsets(source_map.text, rule)
            offset = offsets[min(index, len(offsets) - 1)]
            position = _offset_position(source_map.text, offset)
    line, column = position or (None, None)
    return CatalogIssue(path, line, column, where, detail)


@dataclass(frozen=True, eq=False)
class LoadedCatalog:
    """A validated catalog (`model`) with the file positions of its YAML nodes."""

    path: str
    model: Catalog
    source_map: SourceMap = field(repr=False)

    def to_core_json(self) -> str:
        """JSON for `_core.Engine`: defaults filled in, durations/times in seconds."""
        return self.model.model_dump_json()

    def locate_core_error(self, exc: BaseException) -> CatalogIssue:
        """Issue for a `_core.CatalogError` (kind, item, rule_line/column, detail)."""
        return locate_core_error(
            self.source_map,
            self.path,
            getattr(exc, "kind", None) or "catalog",
            getattr(exc, "item", None),
            getattr(exc, "rule_line", None),
            getattr(exc, "rule_column", None),
            getattr(exc, "detail", None) or str(exc),
        )

    def core_error(self, exc: BaseException) -> CatalogError:
        """A `CatalogError` with the file position of a `_core.CatalogError`."""
        return catalog_error([self.locate_core_error(exc)])


def parse_catalog(text: str, path: str = "<string>") -> LoadedCatalog:
    """Parse and validate catalog YAML `text`; `path` names it in error messages."""
    try:
        loader = yaml.SafeLoader(text)
        try:
            root = loader.get_single_node()
            issues, data = [], None
            if root is not None:  # duplicate keys are looked for before merges flatten
                issues = _duplicate_key_issues(SourceMap.build(text, root), path, root)
                data = loader.construct_document(root)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise catalog_error([_yaml_issue(path, text, exc)]) from exc
    source_map = SourceMap.build(text, root)  # with merge keys (`<<: *base`) flattened
    if not isinstance(data, dict):
        found = "an empty document" if data is None else f"a {type(data).__name__}"
        line, column = source_map.get(()) or (1, 1)
        message = f"the catalog must be a mapping, found {found}"
        raise catalog_error([*issues, CatalogIssue(path, line, column, "catalog", message)])
    try:
        model = Catalog.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        issues += [_validation_issue(source_map, path, e) for e in errors]
    if issues:
        raise catalog_error(issues)
    return LoadedCatalog(path, model, source_map)


def load_catalog(path: str | os.PathLike[str]) -> LoadedCatalog:
    """Read, parse and validate the catalog file at `path`."""
    name = os.fspath(path)
    try:
        text = Path(name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        missing = isinstance(exc, FileNotFoundError)
        message = "catalog file not found" if missing else f"cannot read it: {exc}"
        raise catalog_error([CatalogIssue(name, None, None, "catalog", message)]) from exc
    return parse_catalog(text, name)
