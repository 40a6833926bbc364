"""Load and validate a catalog YAML file, keeping source positions for error messages.

Every problem is raised as one `CatalogError` whose `issues` lists all of them, and
whose message has one `file:LINE:COL: where: message` line per issue.
"""

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from decision_engine import _core
from decision_engine.catalog.issues import CatalogIssue, catalog_error
from decision_engine.catalog.limits import MAX_CATALOG_BYTES, CatalogLoader, YamlLimitError, check_expansion
from decision_engine.catalog.schema import Catalog, Feature
from decision_engine.catalog.source_map import (
    SourceMap,
    YamlPath,
    locate_core_error,
    mark_position,
    offset_position,
    walk,
)
from decision_engine.catalog.triggers import EventProperty
from decision_engine.errors import CatalogError

__all__ = ["LoadedCatalog", "load_catalog", "parse_catalog"]

_MERGE_TAG = "tag:yaml.org,2002:merge"


def _dotted(path: YamlPath) -> str:
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
    return text.lstrip(".")


def _validation_issue(source_map: SourceMap, file: str, error: ErrorDetails) -> CatalogIssue:
    loc = tuple(error["loc"])
    if error["type"] == "policy_parameter" and (parameter := error.get("ctx", {}).get("parameter")):
        loc += (parameter,)  # the core's refusal names the parameter: point at its line
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
                    issues.append(CatalogIssue(file, *mark_position(key), where, message))
                first.setdefault(key.value, key)

    walk(root, visit)
    return issues


def _too_large(file: str, size: int) -> CatalogIssue:
    message = (
        f"the catalog is {size:,} bytes; the limit is {MAX_CATALOG_BYTES:,} ({MAX_CATALOG_BYTES >> 20} MiB)"
    )
    return CatalogIssue(file, None, None, "catalog", message)


def _yaml_issue(file: str, text: str, exc: yaml.YAMLError) -> CatalogIssue:
    if isinstance(exc, YamlLimitError) and (at := exc.problem_mark) is not None:
        return CatalogIssue(file, at.line + 1, at.column + 1, "catalog", str(exc.problem))
    if isinstance(exc, yaml.MarkedYAMLError) and (mark := exc.problem_mark or exc.context_mark):
        message = f"invalid YAML: {exc.problem or exc.context}"
        if exc.context and exc.problem and exc.context_mark:
            message += f" ({exc.context} at line {exc.context_mark.line + 1})"
        return CatalogIssue(file, mark.line + 1, mark.column + 1, "catalog", message)
    if isinstance(exc, yaml.reader.ReaderError):
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        message = f"invalid YAML: {exc.reason} (character #x{code:04x})"
        position = offset_position(text, exc.position)
        return CatalogIssue(file, *position, "catalog", message)
    return CatalogIssue(file, None, None, "catalog", f"invalid YAML: {exc}")


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
    size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_CATALOG_BYTES:
        raise catalog_error([_too_large(path, size)])
    try:
        loader = CatalogLoader(text)
        try:
            root = loader.get_single_node()
            issues, data = [], None
            if root is not None:  # duplicate keys are looked for before merges flatten
                check_expansion(root, loader.aliases)  # before anything walks the expanded tree
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
    issues += _rule_issues(source_map, path, data)  # every rule error, beside the structural ones
    if issues:
        raise catalog_error(issues)
    return LoadedCatalog(path, model, source_map)


def _rule_issues(source_map: SourceMap, path: str, data: dict[object, object]) -> list[CatalogIssue]:
    """Every offer's rule checked by the core on its own against the features, so one bad rule
    (or a structural error elsewhere) does not hide the others. Needs valid features: against
    broken ones every rule would report unknown names."""
    features, offers = data.get("features"), data.get("offers")
    if not isinstance(features, list):
        return []
    try:
        specs = [Feature.model_validate(f).model_dump(mode="json") for f in features]
    except ValidationError:
        return []
    rules = [
        (o["id"], o["rule"])
        for o in (offers if isinstance(offers, list) else [])
        if isinstance(o, dict) and isinstance(o.get("id"), str) and isinstance(o.get("rule"), str)
    ]
    found = _core.check_rules(json.dumps(specs), rules) if rules else []
    issues = [
        locate_core_error(source_map, path, "offer", item, line, col, detail)
        for item, line, col, detail in found
    ]
    return issues + _filter_issues(source_map, path, data.get("triggers"), specs)


def _filter_issues(
    source_map: SourceMap, path: str, triggers: object, specs: list[dict[str, object]]
) -> list[CatalogIssue]:
    """Every trigger's filter checked by the core over the features and the trigger's event
    properties, as offers' rules are (properties the core refuses are left to it)."""
    issues: list[CatalogIssue] = []
    for t in triggers if isinstance(triggers, list) else []:
        if not (isinstance(t, dict) and isinstance(t.get("id"), str) and isinstance(t.get("filter"), str)):
            continue
        if not t["filter"].strip():
            continue  # reported as an empty filter
        try:
            props = [
                EventProperty.model_validate(p).model_dump(mode="json") for p in t.get("properties") or []
            ]
            found = _core.check_rules(json.dumps(specs + props), [(t["id"], t["filter"])])
        except (ValidationError, TypeError, _core.CatalogError):
            continue
        issues += [locate_core_error(source_map, path, "trigger", *error) for error in found]
    return issues


def load_catalog(path: str | os.PathLike[str]) -> LoadedCatalog:
    """Read, parse and validate the catalog file at `path`."""
    name = os.fspath(path)
    try:
        size = os.stat(name).st_size
        if size > MAX_CATALOG_BYTES:  # refused before it is read
            raise catalog_error([_too_large(name, size)])
        text = Path(name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        missing = isinstance(exc, FileNotFoundError)
        message = "catalog file not found" if missing else f"cannot read it: {exc}"
        raise catalog_error([CatalogIssue(name, None, None, "catalog", message)]) from exc
    return parse_catalog(text, name)
