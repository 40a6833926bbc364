"""The catalog's `triggers:` section: its JSON for the core (durations in seconds, absent
optional keys left out), structural errors at their YAML position, and the core's errors of a
trigger at the trigger's line, or inside its filter at the offending character."""

from __future__ import annotations

import json

import pytest
from decision_engine import CatalogError, Engine, parse_catalog

from tests.triggers.conftest import BASE_YAML, CART_ABANDONED

FULL = """\
  - id: cart_abandoned
    event: cart_add
    properties:
      - {name: cart_value, type: float}
      - {name: tier, type: category, values: [low, high]}
    filter: 'cart_value >= 20 && segment != "basic"'
    key: cart_id
    delay: 30m
    cancel_on:
      - {event: purchase, key: cart_id}
      - {event: unsubscribe}
    placement: email_cart
    quiet_hours:
      start: 22
      end: 8
      time_zone: utc_offset
      without_time_zone: utc
      action: queue
      ttl: 12h
    reentry: 24h
    max_live: 1
    delivery_ttl: 2d
  - {id: at_once, event: visit, delay: 0s, placement: email_news}
"""


def core_json(yaml_text: str) -> dict[str, object]:
    return json.loads(parse_catalog(yaml_text, "t.yaml").to_core_json())  # type: ignore[no-any-return]


def test_the_json_the_core_gets() -> None:
    triggers = core_json(BASE_YAML + "triggers:\n" + FULL)["triggers"]
    assert triggers == [
        {
            "id": "cart_abandoned",
            "event": "cart_add",
            "properties": [
                {"name": "cart_value", "type": "float"},
                {"name": "tier", "type": "category", "values": ["low", "high"]},
            ],
            "filter": 'cart_value >= 20 && segment != "basic"',
            "key": "cart_id",
            "delay": 1800,
            "cancel_on": [{"event": "purchase", "key": "cart_id"}, {"event": "unsubscribe"}],
            "placement": "email_cart",
            "quiet_hours": {
                "start": 22,
                "end": 8,
                "time_zone": "utc_offset",
                "without_time_zone": "utc",
                "action": "queue",
                "ttl": 43200,
            },
            "reentry": 86400,
            "max_live": 1,
            "delivery_ttl": 172800,
        },
        {"id": "at_once", "event": "visit", "delay": 0, "placement": "email_news"},
    ]
    Engine(parse_catalog(BASE_YAML + "triggers:\n" + FULL, "t.yaml"), clock="simulated")  # the core takes it


def test_a_catalog_without_triggers_sends_no_triggers_key() -> None:
    assert "triggers" not in core_json(BASE_YAML)


def position(text: str, marker: str) -> tuple[int, int]:
    """1-based (line, column) of `marker`'s first character in `text` (it must occur once)."""
    assert text.count(marker) == 1, marker
    offset = text.index(marker)
    return text.count("\n", 0, offset) + 1, offset - text.rfind("\n", 0, offset)


@pytest.mark.parametrize(
    ("old", "new", "at", "message"),
    [
        ("delay: 30m", "delay: 30", "30\n", "delay: invalid duration 30"),
        ("delay: 30m", "delay: -5m", "-5m", "delay: invalid duration '-5m'"),
        ("    key: cart_id\n", "    key: cart_id\n    keys: [cart_id]\n", "keys:", "unknown field 'keys'"),
        ("filter: 'cart_value >= 20'", "filter: ''", "''", "empty filter"),
        ("filter: 'cart_value >= 20'", "filter: 20", "20\n", "filter: Input should be a valid string"),
        ("    placement: email_cart\n", "", "id: cart_abandoned", "missing required field 'placement'"),
        (
            "{event: purchase, key: cart_id}",
            "{key: cart_id}",
            "{key: cart_id}",
            "cancel_on[0]: missing required field",
        ),
        ("type: float}", "type: decimal}", "decimal", "properties[0].type: Input should be"),
        (
            "delay: 30m",
            "delay: 30m\n    max_live: -1",
            "-1",
            "max_live: Input should be greater than or equal to 0",
        ),
    ],
)
def test_structural_errors_point_at_their_line(old: str, new: str, at: str, message: str) -> None:
    assert CART_ABANDONED.count(old) == 1
    text = BASE_YAML + "triggers:\n" + CART_ABANDONED.replace(old, new)
    with pytest.raises(CatalogError) as info:
        parse_catalog(text, "t.yaml")
    (issue,) = info.value.issues
    assert issue.where == "trigger 'cart_abandoned'"
    assert (issue.line, issue.column) == position(text, at), issue
    assert message in issue.message


QUIET = "    quiet_hours: {start: 22, end: 8, time_zone: utc_offset, action: queue, ttl: 12h}\n"


def test_quiet_hours_need_an_explicit_policy_for_profiles_without_a_time_zone() -> None:
    text = BASE_YAML + "triggers:\n" + CART_ABANDONED + QUIET
    with pytest.raises(CatalogError, match="quiet_hours: missing required field 'without_time_zone'"):
        parse_catalog(text, "t.yaml")


def core_error(triggers: str) -> CatalogError:
    """The error of the catalog with these triggers: from loading it (every rule and filter is
    checked by the core then) or from compiling it into an engine (the core's other checks)."""
    with pytest.raises(CatalogError) as info:
        Engine(parse_catalog(BASE_YAML + "triggers:\n" + triggers, "t.yaml"), clock="simulated")
    return info.value


def test_loading_reports_every_bad_filter_and_rule_at_once() -> None:
    second = CART_ABANDONED.replace("cart_abandoned", "second").replace("'cart_value >= 20'", "'nope == 1'")
    text = (
        BASE_YAML.replace("value: 2.0}", "value: 2.0, rule: 'segment == \"silver\"'}")
        + "triggers:\n"
        + CART_ABANDONED.replace("'cart_value >= 20'", "'cart_value >= \"x\"'")
        + second
        + "  - {id: third, event: visit, delay: 1, placement: email_news}\n"
    )
    with pytest.raises(CatalogError) as info:
        parse_catalog(text, "t.yaml")
    found = {(i.where, i.line, i.column) for i in info.value.issues}
    assert found == {
        ("trigger 'third'", *position(text, "1, placement")),  # structural: delay needs a unit
        ("offer 'cart_reminder'", *position(text, 'segment == "silver"')),  # at the comparison
        ("trigger 'cart_abandoned'", *position(text, 'cart_value >= "x"')),
        ("trigger 'second'", *position(text, "nope")),
    }


def test_a_core_error_in_the_filter_points_at_the_character() -> None:
    triggers = CART_ABANDONED.replace("'cart_value >= 20'", "'cart_value >= 20 && nosuch > 1'")
    (issue,) = core_error(triggers).issues
    assert (issue.where, issue.message) == ("trigger 'cart_abandoned'", "unknown feature 'nosuch'")
    assert (issue.line, issue.column) == position(BASE_YAML + "triggers:\n" + triggers, "nosuch")


def test_a_core_error_in_a_block_scalar_filter() -> None:
    block = 'filter: |\n      cart_value >= 20 &&\n        segment == "platinum"'
    triggers = CART_ABANDONED.replace("filter: 'cart_value >= 20'", block)
    (issue,) = core_error(triggers).issues
    assert "no value 'platinum'" in issue.message
    assert (issue.line, issue.column) == position(
        BASE_YAML + "triggers:\n" + triggers, 'segment == "platinum"'
    )


def test_a_core_error_of_the_trigger_points_at_its_id() -> None:
    triggers = CART_ABANDONED.replace("placement: email_cart", "placement: nowhere")
    (issue,) = core_error(triggers).issues
    assert (issue.where, issue.message) == ("trigger 'cart_abandoned'", "unknown placement 'nowhere'")
    assert (issue.line, issue.column) == position(BASE_YAML + "triggers:\n" + triggers, "cart_abandoned")
    # semantic checks are the core's: hours 0..23
    triggers = CART_ABANDONED + QUIET.replace("start: 22", "start: 24").replace(
        "action", "without_time_zone: utc, action"
    )
    (issue,) = core_error(triggers).issues
    assert issue.message.startswith("quiet_hours: start and end are different hours 0..23")
    assert (issue.line, issue.column) == position(BASE_YAML + "triggers:\n" + triggers, "cart_abandoned")
