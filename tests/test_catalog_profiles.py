"""The catalog's profile plane: feature defaults and computed attributes, the `events:` and
`profiles:` sections. Python checks their structure (with file positions); the core checks
what they mean and its errors point at the feature, the event or the section."""

import json

import pytest
from decision_engine import Engine
from decision_engine.catalog import parse_catalog
from decision_engine.errors import CatalogError

# line numbers matter below: features start on line 3
PROFILE_YAML = """\
version: 1
features:
  - {name: age, type: int, default: 35}
  - {name: segment, type: category, values: [basic, gold], default: basic}
  - name: cart_adds_7d
    type: int
    computed: {event: cart_add, aggregate: count, window: 7d}
  - name: spend_30d
    type: float
    computed: {event: purchase, aggregate: sum, property: amount, window: 30d}
  - name: last_cart_value
    type: float
    default: 0
    computed: {event: cart_add, aggregate: last, property: value}
  - name: days_since_purchase
    type: float
    default: 9999
    computed: {event: purchase, aggregate: time_since, unit: days}
  - {name: vip, type: bool, default: false}
channels: [web, email]
placements:
  - {id: hero, channel: web}
events:
  - {type: purchase, purchase: product}
  - {type: email_opt_in, grant: email}
  - {type: email_opt_out, revoke: email}
profiles:
  unknown: not_found
  capacity: 1000000
  idle_ttl: 365d
"""


def errors_of(text: str) -> list[str]:
    with pytest.raises(CatalogError) as info:
        parse_catalog(text, "p.yaml")
    return str(info.value).splitlines()


def test_profile_plane_to_core_json() -> None:
    data = json.loads(parse_catalog(PROFILE_YAML).to_core_json())
    age, segment, carts, spend, last, since, vip = data["features"]
    assert age == {"name": "age", "type": "int", "values": None, "default": 35}
    assert segment["default"] == "basic"
    assert vip["default"] is False
    assert carts == {
        "name": "cart_adds_7d",
        "type": "int",
        "values": None,
        "computed": {"event": "cart_add", "aggregate": "count", "window": 7 * 86400},
    }
    assert spend["computed"] == {
        "event": "purchase",
        "aggregate": "sum",
        "property": "amount",
        "window": 30 * 86400,
    }
    assert last["default"] == 0
    assert last["computed"] == {"event": "cart_add", "aggregate": "last", "property": "value"}
    assert since["computed"] == {"event": "purchase", "aggregate": "time_since", "unit": "days"}
    assert data["events"] == [
        {"type": "purchase", "purchase": "product"},
        {"type": "email_opt_in", "grant": "email"},
        {"type": "email_opt_out", "revoke": "email"},
    ]
    assert data["profiles"] == {"unknown": "not_found", "capacity": 1_000_000, "idle_ttl": 365 * 86400}


def test_absent_optional_keys_are_left_out() -> None:
    text = PROFILE_YAML.split("events:")[0]
    data = json.loads(parse_catalog(text).to_core_json())
    assert "events" not in data
    assert "profiles" not in data
    assert "default" not in data["features"][2]
    assert "computed" not in data["features"][0]
    sparse = json.loads(parse_catalog(text + "profiles: {capacity: 10}\n").to_core_json())
    assert sparse["profiles"] == {"capacity": 10}


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "default: 35}",
            "default: [35]}",
            "p.yaml:3:37: feature 'age': default: a default is a number, true/false or a category value "
            "name, got [35]",
        ),
        (
            "default: 35}",
            "default: .nan}",
            "p.yaml:3:37: feature 'age': default: a default must be finite, got nan",
        ),
        (
            "aggregate: count",
            "aggregate: avg",
            "p.yaml:7:44: feature 'cart_adds_7d': computed.aggregate: Input should be 'count', 'sum', "
            "'last' or 'time_since'",
        ),
        (
            "window: 7d}",
            "window: 7 days}",
            "p.yaml:7:59: feature 'cart_adds_7d': computed.window: invalid duration '7 days'",
        ),
        (
            "unit: days}",
            "unit: weeks}",
            "p.yaml:18:62: feature 'days_since_purchase': computed.unit: Input should be 'seconds', "
            "'minutes', 'hours' or 'days'",
        ),
        (
            "{event: cart_add, aggregate: count, window: 7d}",
            "{aggregate: count, window: 7d}",
            "p.yaml:7:15: feature 'cart_adds_7d': computed: missing required field 'event'",
        ),
        (
            "property: value}",
            "property: value, over: 3}",
            "p.yaml:14:67: feature 'last_cart_value': computed: unknown field 'over'",
        ),
        (
            "computed: {event: purchase, aggregate: sum",
            "computed: {event: '', aggregate: sum",
            "p.yaml:10:23: feature 'spend_30d': computed.event: String should have at least 1 character",
        ),
        (
            "{type: email_opt_in, grant: email}",
            "{type: email_opt_in, grants: email}",
            "p.yaml:25:26: event 'email_opt_in': unknown field 'grants'",
        ),
        (
            "{type: purchase, purchase: product}",
            "{purchase: product}",
            "p.yaml:24:5: event #0: missing required field 'type'",
        ),
        ("unknown: not_found", "unknown: maybe", "p.yaml:28:12: catalog: profiles.unknown: Input should be"),
        ("capacity: 1000000", "capacity: 0", "p.yaml:29:13: catalog: profiles.capacity: Input should be"),
        ("capacity: 1000000", "capacity: '10'", "p.yaml:29:13: catalog: profiles.capacity: Input should be"),
        ("idle_ttl: 365d", "idle_ttl: 1y", "p.yaml:30:13: catalog: profiles.idle_ttl: invalid duration '1y'"),
        ("idle_ttl: 365d", "idle_tl: 365d", "p.yaml:30:3: catalog: profiles: unknown field 'idle_tl'"),
    ],
)
def test_structure_errors_have_positions(old: str, new: str, expected: str) -> None:
    assert old in PROFILE_YAML
    errors = errors_of(PROFILE_YAML.replace(old, new, 1))
    assert len(errors) == 1, errors
    assert errors[0].startswith(expected), errors[0]


def test_events_must_be_a_list() -> None:
    errors = errors_of(PROFILE_YAML.split("events:")[0] + "events: {type: purchase}\n")
    assert errors == ["p.yaml:23:9: catalog: events: Input should be a list"]


@pytest.mark.parametrize(
    ("old", "new", "where", "words"),
    [
        # `last` and `time_since` need a default (the core's rule)
        (
            "    default: 0\n    computed: {event: cart_add, aggregate: last",
            "    computed: {event: cart_add, aggregate: last",
            "p.yaml:11:11: feature 'last_cart_value'",
            "default",
        ),
        (
            "aggregate: sum, property: amount",
            "aggregate: sum",
            "p.yaml:8:11: feature 'spend_30d'",
            "property",
        ),
        (
            "{type: email_opt_in, grant: email}",
            "{type: email_opt_in, grant: sms}",
            "p.yaml:25:12: event 'email_opt_in'",
            "sms",
        ),
        ("default: basic}", "default: platinum}", "p.yaml:4:12: feature 'segment'", "platinum"),
    ],
)
def test_meaning_errors_come_from_the_core_at_the_item(old: str, new: str, where: str, words: str) -> None:
    assert old in PROFILE_YAML
    loaded = parse_catalog(PROFILE_YAML.replace(old, new, 1), "p.yaml")  # the structure is fine
    with pytest.raises(CatalogError) as info:
        Engine(loaded)
    message = str(info.value)
    assert message.startswith(where), message
    assert words in message
