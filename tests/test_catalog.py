import json
from pathlib import Path

import pytest
from decision_engine.catalog import (
    CatalogIssue,
    LoadedCatalog,
    load_catalog,
    locate_core_error,
    parse_catalog,
)
from decision_engine.errors import CatalogError, DecisionEngineError

FULL = """\
version: 1
features:
  - {name: age, type: int}
  - {name: spend_90d, type: float}
  - {name: owns_card, type: bool}
  - {name: segment, type: category, values: [bronze, silver, gold, platinum]}
channels: [web, app, email, push]
placements:
  - id: web_home_hero
    channel: web
    slots: 1
    policy: {type: thompson, alpha: 2.0, beta: 3.0}
  - id: app_feed
    channel: app
    slots: 3
    policy: thompson
  - id: email_main
    channel: email
offers:
  - id: gold_card
    placements: [web_home_hero, app_feed]
    value: 120.0
    weight: 1.0
    rule: 'age >= 21 && segment in ["gold", "platinum"] && !owns_card'
    group: cards
    consent: email
    product: card_gold
    active_from: 2026-01-01T00:00:00Z
    active_to: 2026-12-31T23:59:59Z
  - id: newsletter
    placements: [email_main]
    active_from: "2026-01-01T00:00:00"
    active_to: 2026-02-01
contact_policy:
  caps:
    - {scope: channel, channel: email, max: 1, window: 1d}
    - {scope: all, max: 3, window: 7d}
    - {scope: offer, max: 2, window: 7d}
    - {scope: group, group: cards, max: 1, window: 30d}
  cooldown_after_conversion: 14d
  cooldown_after_dismissal: 3d
  suppress_purchased: true
  max_per_group: 1
"""

# Offers are appended after line 9, so the first appended line is line 10.
HEAD = """\
version: 1
features:
  - {name: age, type: int}
  - {name: segment, type: category, values: [bronze, gold]}
channels: [web, email]
placements:
  - id: web_home
    channel: web
offers:
"""


def issues_of(err: BaseException) -> list[CatalogIssue]:
    issues: list[CatalogIssue] = getattr(err, "issues")  # noqa: B009 (set at runtime)
    return issues


def errors_of(text: str, path: str = "cat.yaml") -> list[str]:
    with pytest.raises(CatalogError) as info:
        parse_catalog(text, path)
    lines = [str(issue) for issue in issues_of(info.value)]
    assert str(info.value) == "\n".join(lines)
    return lines


def at(position: str, where: str, message: str) -> str:
    return f"cat.yaml:{position}: {where}: {message}"


def with_placement_line(line: str) -> str:
    """HEAD with `line` added to placement web_home, as line 9."""
    return HEAD.replace("    channel: web\n", f"    channel: web\n{line}\n")


OFFER_A = "  - id: a\n    placements: [web_home]\n"  # lines 10-11


def test_valid_catalog_to_core_json() -> None:
    loaded = parse_catalog(FULL, "full.yaml")
    assert isinstance(loaded, LoadedCatalog)
    assert loaded.path == "full.yaml"
    data = json.loads(loaded.to_core_json())
    assert data["version"] == 1
    names = [f["name"] for f in data["features"]]
    assert names == ["age", "spend_90d", "owns_card", "segment"]
    assert data["features"][0]["values"] is None
    assert data["features"][3]["values"] == ["bronze", "silver", "gold", "platinum"]
    assert data["channels"] == ["web", "app", "email", "push"]
    hero, feed, email = data["placements"]
    assert hero["policy"] == {"type": "thompson", "alpha": 2.0, "beta": 3.0, "discount": 1.0, "window": None}
    assert feed["policy"] == {"type": "thompson", "alpha": 1.0, "beta": 1.0, "discount": 1.0, "window": None}
    assert (feed["slots"], email["slots"]) == (3, 1)
    gold, news = data["offers"]
    assert gold["rule"] == 'age >= 21 && segment in ["gold", "platinum"] && !owns_card'
    assert gold["active_from"] == 1767225600.0
    assert gold["active_to"] == 1798761599.0
    assert (gold["group"], gold["consent"], gold["product"]) == (
        "cards",
        "email",
        "card_gold",
    )
    assert (news["value"], news["weight"], news["rule"]) == (1.0, 1.0, None)
    assert news["active_from"] == 1767225600.0  # naive ISO string taken as UTC
    assert news["active_to"] == 1769904000.0  # plain date: midnight UTC
    policy = data["contact_policy"]
    windows = [cap["window"] for cap in policy["caps"]]
    assert windows == [86400, 604800, 604800, 2592000]
    assert policy["caps"][0]["channel"] == "email"
    assert policy["caps"][3]["group"] == "cards"
    assert policy["cooldown_after_conversion"] == 14 * 86400
    assert policy["cooldown_after_dismissal"] == 3 * 86400
    assert policy["suppress_purchased"] is True
    assert policy["max_per_group"] == 1


def test_source_map_positions() -> None:
    source_map = parse_catalog(FULL).source_map
    assert source_map[("offers", 0, "rule")] == (24, 11)
    assert source_map[("placements", 1)] == (13, 5)
    assert source_map.nearest(("offers", 0, "no_such_field")) == ("offers", 0)


def test_load_catalog_from_file(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(FULL, encoding="utf-8")
    loaded = load_catalog(path)
    assert loaded.path == str(path)
    assert loaded.model.offers[0].id == "gold_card"


def test_defaults_and_shorthands() -> None:
    loaded = parse_catalog(HEAD + OFFER_A + "    rule: true\n")
    data = json.loads(loaded.to_core_json())
    policy = data["placements"][0]["policy"]
    assert policy == {"type": "thompson", "alpha": 1.0, "beta": 1.0, "discount": 1.0, "window": None}
    assert data["offers"][0]["rule"] == "true"
    assert data["contact_policy"] is None


def test_catalog_error_is_a_decision_engine_error() -> None:
    with pytest.raises(DecisionEngineError):
        parse_catalog("version: 2\n")


def test_duplicate_offer_id() -> None:
    assert errors_of(HEAD + OFFER_A + OFFER_A) == [at("12:9", "offer 'a'", "id: duplicate offer id 'a'")]


def test_unknown_placement_in_offer() -> None:
    text = HEAD + "  - id: gold_card\n    placements: [web_home, app_feed]\n"
    assert errors_of(text) == [
        at(
            "11:28",
            "offer 'gold_card'",
            "placements[1]: unknown placement 'app_feed' (known: web_home)",
        )
    ]


def test_bad_slots() -> None:
    assert errors_of(with_placement_line("    slots: 0") + OFFER_A) == [
        at(
            "9:12",
            "placement 'web_home'",
            "slots: Input should be greater than or equal to 1",
        )
    ]


KNOWN_POLICIES = "thompson, gaussian_thompson, ucb1, epsilon_greedy, softmax, lin_ucb, lin_thompson"


def test_unknown_policy_type() -> None:
    for policy, name in [("{type: ucb}", "'ucb'"), ("eps_greedy", "'eps_greedy'")]:
        assert errors_of(with_placement_line(f"    policy: {policy}")) == [
            at(
                "9:13",
                "placement 'web_home'",
                f"policy: unknown policy type {name} (known types: {KNOWN_POLICIES})",
            )
        ]


def test_bad_policy_parameter() -> None:
    text = with_placement_line("    policy: {type: thompson, alpha: 0}")
    assert errors_of(text) == [
        at(
            "9:37",
            "placement 'web_home'",
            "policy.alpha: thompson needs alpha > 0, got 0",
        )
    ]


def test_bad_duration() -> None:
    text = HEAD + "contact_policy:\n  caps:\n    - {scope: all, max: 3, window: 7 days}\n"
    assert errors_of(text) == [
        at(
            "12:36",
            "catalog",
            "contact_policy.caps[0].window: invalid duration '7 days': "
            "expected <int><s|m|h|d|w>, e.g. '30m', '7d'",
        )
    ]


def test_cap_companion_fields() -> None:
    text = HEAD + (
        "contact_policy:\n  caps:\n"
        "    - {scope: channel, max: 1, window: 1d}\n"
        "    - {scope: channel, channel: sms, max: 1, window: 1d}\n"
        "    - {scope: all, channel: web, max: 1, window: 1d}\n"
    )
    assert errors_of(text) == [
        at(
            "12:7",
            "catalog",
            "contact_policy.caps[0]: a cap with scope 'channel' needs 'channel'",
        ),
        at(
            "13:33",
            "catalog",
            "contact_policy.caps[1].channel: unknown channel 'sms' (known: web, email)",
        ),
        at(
            "14:7",
            "catalog",
            "contact_policy.caps[2]: 'channel' is only allowed on caps with scope 'channel'",
        ),
    ]


def test_unknown_consent_channel() -> None:
    text = HEAD + "  - id: promo\n    placements: [web_home]\n    consent: sms\n"
    assert errors_of(text) == [
        at(
            "12:14",
            "offer 'promo'",
            "consent: unknown channel 'sms' (known: web, email)",
        )
    ]


def test_category_without_values() -> None:
    needs = "category feature 'segment' needs a non-empty 'values' list"
    text = HEAD.replace("values: [bronze, gold]", "values: []")
    assert errors_of(text) == [at("4:5", "feature 'segment'", needs)]
    text = HEAD.replace(", values: [bronze, gold]", "")
    assert errors_of(text) == [at("4:5", "feature 'segment'", needs)]
    text = HEAD.replace("{name: age, type: int}", "{name: age, type: int, values: [a]}")
    assert errors_of(text) == [
        at(
            "3:5",
            "feature 'age'",
            "only category features may have 'values' (this one is int)",
        )
    ]


def test_active_to_before_active_from() -> None:
    text = HEAD + OFFER_A + ("    active_from: 2026-06-01T00:00:00Z\n    active_to: 2026-01-01T00:00:00Z\n")
    assert errors_of(text) == [
        at(
            "13:16",
            "offer 'a'",
            "active_to: active_to (2026-01-01T00:00:00+00:00) "
            "must be after active_from (2026-06-01T00:00:00+00:00)",
        )
    ]


def test_unknown_field_and_item_without_id() -> None:
    text = HEAD + "  - placements: [web_home]\n    colour: red\n"
    assert errors_of(text) == [
        at("10:5", "offer #0", "missing required field 'id'"),
        at("11:5", "offer #0", "unknown field 'colour'"),
    ]


def test_yaml_syntax_error() -> None:
    [line] = errors_of(HEAD + "  - id: a\n    placements: [web_home\n")
    assert line.startswith("cat.yaml:12:1: catalog: invalid YAML: expected ',' or ']'")


def test_not_a_mapping() -> None:
    assert errors_of("- 1\n- 2\n") == [at("1:1", "catalog", "the catalog must be a mapping, found a list")]


def test_duplicate_yaml_key() -> None:
    text = HEAD + OFFER_A + "    rule: age > 1\n    rule: age > 2\n"
    assert errors_of(text) == [at("13:5", "offer 'a'", "duplicate key 'rule' (first at line 12)")]


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    assert str(info.value) == f"{path}: catalog: catalog file not found"
    assert issues_of(info.value) == [CatalogIssue(str(path), None, None, "catalog", "catalog file not found")]


def test_several_errors_at_once() -> None:
    text = with_placement_line("    slots: 0") + (
        "  - id: a\n    placements: [web_home, nowhere]\n"
        "  - id: a\n    placements: [web_home]\n    consent: sms\n"
    )
    slots = "slots: Input should be greater than or equal to 1"
    assert errors_of(text) == [
        at("9:12", "placement 'web_home'", slots),
        at(
            "12:28",
            "offer 'a'",
            "placements[1]: unknown placement 'nowhere' (known: web_home)",
        ),
        at("13:9", "offer 'a'", "id: duplicate offer id 'a'"),
        at("15:14", "offer 'a'", "consent: unknown channel 'sms' (known: web, email)"),
    ]


def test_merge_keys_point_at_the_anchor() -> None:
    text = HEAD + ("  - &base {id: a, placements: [web_home], consent: sms}\n  - {<<: *base, id: b}\n")
    unknown = "consent: unknown channel 'sms' (known: web, email)"
    assert errors_of(text) == [
        at("10:52", "offer 'a'", unknown),
        at("10:52", "offer 'b'", unknown),
    ]


def rule_catalog(rule_yaml: str) -> LoadedCatalog:
    offer = "  - id: gold_card\n    placements: [web_home]\n"
    return parse_catalog(HEAD + offer + rule_yaml, "cat.yaml")


def locate(loaded: LoadedCatalog, line: int, column: int) -> str:
    source_map = loaded.source_map
    issue = locate_core_error(source_map, loaded.path, "offer", "gold_card", line, column, "boom")
    return str(issue)


def test_locate_core_error_single_quoted() -> None:
    loaded = rule_catalog("    rule: 'age >= 21 && segment == \"gold\"'\n")
    # line 12 is `    rule: '...`: the rule text starts at column 12
    assert locate(loaded, 1, 1) == at("12:12", "offer 'gold_card'", "boom")
    assert locate(loaded, 1, 14) == at("12:25", "offer 'gold_card'", "boom")


def test_locate_core_error_double_quoted() -> None:
    loaded = rule_catalog('    rule: "segment == \\"gold\\" && age > 3"\n')
    assert locate(loaded, 1, 1) == at("12:12", "offer 'gold_card'", "boom")
    # the escapes shift the file column: `age`, rule column 23, is at file column 36
    assert locate(loaded, 1, 23) == at("12:36", "offer 'gold_card'", "boom")


def test_locate_core_error_plain() -> None:
    loaded = rule_catalog("    rule: age >= 21 && age < 3\n")
    assert locate(loaded, 1, 1) == at("12:11", "offer 'gold_card'", "boom")
    assert locate(loaded, 1, 14) == at("12:24", "offer 'gold_card'", "boom")


def test_locate_core_error_block_scalar() -> None:
    loaded = rule_catalog('    rule: |\n      age >= 21\n        && segment == "gold"\n')
    assert locate(loaded, 1, 1) == at("13:7", "offer 'gold_card'", "boom")
    assert locate(loaded, 2, 6) == at("14:12", "offer 'gold_card'", "boom")


def test_locate_core_error_folded_and_multiline_plain() -> None:
    loaded = rule_catalog('    rule: >\n      age >= 21\n      && segment == "gold"\n')
    assert locate(loaded, 1, 14) == at("14:10", "offer 'gold_card'", "boom")
    loaded = rule_catalog('    rule: age >= 21\n      && segment == "gold"\n')
    assert locate(loaded, 1, 14) == at("13:10", "offer 'gold_card'", "boom")


def test_locate_core_error_without_rule_position() -> None:
    source_map = rule_catalog("    rule: age > 0\n").source_map
    issue = locate_core_error(source_map, "cat.yaml", "offer", "gold_card", None, None, "not a bool")
    assert issue == CatalogIssue("cat.yaml", 10, 9, "offer 'gold_card'", "not a bool")
    issue = locate_core_error(source_map, "cat.yaml", "feature", "segment", None, None, "bad")
    assert str(issue) == at("4:12", "feature 'segment'", "bad")
    issue = locate_core_error(source_map, "cat.yaml", "catalog", None, None, None, "big")
    assert str(issue) == at("1:1", "catalog", "big")


def test_core_error_from_exception_attributes() -> None:
    class FakeCoreError(Exception):
        kind = "offer"
        item = "gold_card"
        rule_line = 1
        rule_column = 5
        detail = "unknown identifier 'agx'"

    loaded = rule_catalog("    rule: age + age > 3\n")
    err = loaded.core_error(FakeCoreError("x"))
    assert isinstance(err, CatalogError)
    assert str(err) == at("12:15", "offer 'gold_card'", "unknown identifier 'agx'")
    assert issues_of(err)[0].line == 12


def test_every_rule_error_is_reported_beside_structural_errors() -> None:
    text = """\
version: 1
features: [{name: age, type: int}]
channels: [web]
placements:
  - {id: p, channel: web, slots: 1, policy: {type: thompson, alpah: 2}}
offers:
  - {id: a, placements: [p], rule: 'agee > 3'}
  - {id: b, placements: [p], rule: 'age >>= 3'}
  - {id: c, placements: [p], rule: 'age > 3'}
"""
    with pytest.raises(CatalogError) as err:
        parse_catalog(text, "x.yaml")
    lines = str(err.value).splitlines()
    assert lines[0].startswith("x.yaml:5:") and "unknown field 'alpah'" in lines[0]
    assert lines[1] == "x.yaml:7:37: offer 'a': unknown feature 'agee'; did you mean 'age'?"
    assert lines[2].startswith("x.yaml:8:42: offer 'b': syntax error")
    assert len(lines) == 3, "offer c is fine"
