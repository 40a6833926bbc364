"""The catalog loader's limits: file size, nesting depth, alias expansion (billion laughs) and
node count, each refused with a catalog error at a position, never a RecursionError."""

from pathlib import Path

import pytest
import yaml
from decision_engine.catalog import SourceMap, load_catalog, parse_catalog
from decision_engine.catalog import limits as catalog_limits
from decision_engine.catalog.limits import MAX_CATALOG_BYTES, MAX_YAML_DEPTH, YamlLimitError
from decision_engine.errors import CatalogError

VALID = """\
version: 1
features: [{name: age, type: int}]
channels: [web]
placements: [{id: hero, channel: web, slots: 1}]
offers: [{id: a, placements: [hero]}]
"""


def error_of(text: str) -> str:
    with pytest.raises(CatalogError) as info:
        parse_catalog(text, "cat.yaml")
    return str(info.value)


def laughs() -> str:
    """Nine levels of nine aliases each: 342 bytes standing for about 490 million nodes."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def nested(levels: int) -> str:
    """VALID plus a field `x` whose value nests `levels` sequences: the document is levels + 1 deep."""
    return VALID + "x: " + "[" * levels + "]" * levels + "\n"


def test_a_billion_laughs_is_refused_at_the_alias_that_expands_most() -> None:
    text = laughs()
    assert len(text) < 400
    message = error_of(text)
    assert message.startswith("cat.yaml:9:8: catalog: YAML aliases expand the catalog to 490,329,064 nodes")
    assert "nodes, more than the limit of 1,000,000" in message


def test_aliases_within_the_limits_still_load() -> None:
    offers = "offers: [{id: a, placements: [hero]}]"
    merged = VALID.replace(offers, "offers: [&a {id: a, placements: [hero]}, {<<: *a, id: b}]")
    assert [o.id for o in parse_catalog(merged, "cat.yaml").model.offers] == ["a", "b"]


def test_a_recursive_alias_is_refused() -> None:
    assert error_of(VALID + "x: &loop [1, *loop]\n") == (
        "cat.yaml:6:14: catalog: a YAML alias refers to a node that contains it (recursive aliases)"
    )


def test_nesting_at_the_limit_loads_and_one_level_more_is_refused() -> None:
    at_limit = nested(MAX_YAML_DEPTH - 1)
    assert error_of(at_limit) == "cat.yaml:6:1: catalog: unknown field 'x'"  # the loader took it
    too_deep = error_of(nested(MAX_YAML_DEPTH))
    column = 4 + MAX_YAML_DEPTH - 1  # the first '[' past the limit
    assert too_deep == f"cat.yaml:6:{column}: catalog: the catalog nests deeper than 64 levels (the limit)"


@pytest.mark.parametrize(
    "text",
    [
        nested(1000),
        VALID + "x: " + "{a: " * 1000 + "1" + "}" * 1000 + "\n",
        VALID + "x:\n" + "".join("  " * i + "-\n" for i in range(1, 1001)),
    ],
    ids=["flow sequences", "flow mappings", "block sequences"],
)
def test_a_thousand_levels_give_a_catalog_error(text: str) -> None:
    message = error_of(text)
    assert message.startswith("cat.yaml:")
    assert message.endswith(": catalog: the catalog nests deeper than 64 levels (the limit)")


def test_depth_counts_the_levels_aliases_stand_for() -> None:
    # each mapping merges the one before it: 100 levels once the aliases are expanded
    chain = "a0: &a0 {k: 1}\n" + "".join(f"a{i}: &a{i} {{<<: *a{i - 1}}}\n" for i in range(1, 100))
    message = error_of(VALID + chain)
    assert message.endswith(
        "catalog: with its YAML aliases expanded the catalog nests deeper than 64 levels (the limit)"
    )


def test_an_oversize_catalog_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    text = VALID + "# " + "x" * MAX_CATALOG_BYTES + "\n"
    size = len(text)
    expected = f"catalog: the catalog is {size:,} bytes; the limit is 8,388,608 (8 MiB)"
    assert error_of(text) == f"cat.yaml: {expected}"
    path = tmp_path / "big.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    assert str(info.value) == f"{path}: {expected}"
    multibyte = VALID + "# " + "é" * (MAX_CATALOG_BYTES // 2) + "\n"  # fewer characters than bytes
    assert "bytes; the limit is 8,388,608" in error_of(multibyte)


def test_too_many_nodes_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(catalog_limits, "MAX_YAML_NODES", 40)
    assert parse_catalog(VALID, "cat.yaml").model.offers  # 26 nodes
    many = VALID + "x: [" + ", ".join(["1"] * 20) + "]\n"
    assert error_of(many) == "cat.yaml:6:29: catalog: the catalog has more than 40 YAML nodes (the limit)"


def test_the_source_map_walk_is_bounded_like_the_loader() -> None:
    text = "x: " + "[" * 100 + "]" * 100 + "\n"
    root = yaml.SafeLoader(text).get_single_node()  # the plain loader composes 100 levels
    assert root is not None
    with pytest.raises(YamlLimitError, match="nests deeper than 64 levels"):
        SourceMap.build(text, root)
