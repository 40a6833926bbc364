"""Every bad input raises its own exception with a message saying what was expected, and the
engine keeps working afterwards."""

import math
import re

import decision_engine
import numpy as np
import pytest
from decision_engine import (
    CatalogError,
    DecisionEngineError,
    Engine,
    InvalidInputError,
    OutcomeAlreadyReportedError,
    UnknownDecisionError,
    UnknownOfferError,
    UnknownPlacementError,
)

GOOD = [30, 2000, 0, 2]


def raises(exc_type, message):
    """pytest.raises for exactly this message."""
    return pytest.raises(exc_type, match=f"^{re.escape(message)}$")


def unknown(decision_id):
    return f"unknown decision id {decision_id} (never issued, already settled, or it showed no offer)"


def settled(decision_id):
    return f"decision {decision_id} is settled: every offer it showed has its outcome, or it was released"


def run(engine, call, features, now):
    if call == "decide_batch":
        return engine.decide_batch("feed", features, now=now)
    return engine.evaluate_rules(features)


def assert_works(engine, now):
    """A decision, its outcomes and a batch still go through."""
    pending = engine.pending_decisions
    d = engine.decide("feed", np.array(GOOD, np.float32), consents=["email"], now=now)
    assert len(d.offers) == 3
    for offer_id in d.offer_ids:
        engine.report_outcome(d.decision_id, 1.0, offer_id)
    batch = engine.decide_batch("hero", np.array([GOOD, GOOD], np.float32), now=now)
    for decision_id in batch.decision_ids:
        engine.report_outcome(decision_id, 0.0)
    assert engine.pending_decisions == pending


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([30, 2000, 0], "expected 4 features, got 3"),
        ([30, 2000, 0, 2, 1], "expected 4 features, got 5"),
        ([], "expected 4 features, got 0"),
        ([30.5, 2000, 0, 2], "feature 'age': 30.5 is not a whole number"),
        ([30, math.nan, 0, 2], "feature 'spend': NaN is not a finite number"),
        ([30, math.inf, 0, 2], "feature 'spend': inf is not a finite number"),
        ([-math.inf, 2000, 0, 2], "feature 'age': -inf is not a finite number"),
        ([30, 2000, 2, 2], "feature 'owns_card': 2 is not 0 or 1"),
        ([30, 2000, 0.5, 2], "feature 'owns_card': 0.5 is not 0 or 1"),
        ([30, 2000, 0, 4], "feature 'segment': 4 is not a category code 0..3"),
        ([30, 2000, 0, -1], "feature 'segment': -1 is not a category code 0..3"),
        ([30, 2000, 0, 1.5], "feature 'segment': 1.5 is not a category code 0..3"),
    ],
)
def test_bad_profile_vector(engine, now, values, message):
    with raises(InvalidInputError, message):
        engine.decide("hero", np.array(values, np.float32), now=now)
    assert_works(engine, now)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ((1, math.nan), "feature 'spend' in row 1: NaN is not a finite number"),
        ((2, -math.inf), "feature 'spend' in row 2: -inf is not a finite number"),
        ((300, math.nan), "feature 'spend' in row 300: NaN is not a finite number"),
    ],
)
@pytest.mark.parametrize("call", ["decide_batch", "evaluate_rules"])
def test_bad_value_in_a_batch_names_feature_and_row(engine, now, bad, message, call):
    rows = np.tile(np.array(GOOD, np.float32), (400, 1))
    rows[bad[0], 1] = bad[1]
    with raises(InvalidInputError, message):
        run(engine, call, rows, now)
    rows[bad[0], 1] = 10
    rows[bad[0], 3] = 9
    with raises(InvalidInputError, f"feature 'segment' in row {bad[0]}: 9 is not a category code 0..3"):
        run(engine, call, rows, now)
    assert_works(engine, now)


def test_profile_must_be_one_vector(engine, now):
    with raises(InvalidInputError, "a profile is one vector of 4 features"):
        engine.decide("hero", np.array([GOOD, GOOD], np.float32), now=now)
    assert_works(engine, now)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"agee": 30}, "unknown feature 'agee'"),
        ({"age": None}, "missing features: age"),
        ({"segment": "gld"}, "feature 'segment' must be one of bronze, silver, gold, platinum, got 'gld'"),
        ({"segment": 2}, "feature 'segment' takes a category value name, got the number 2"),
        ({"spend": "2000"}, "feature 'spend' takes a number, got the category value '2000'"),
    ],
)
def test_bad_profile_mapping(engine, gold_adult, now, change, message):
    profile = {**gold_adult, **change}
    profile = {k: v for k, v in profile.items() if v is not None}
    with raises(InvalidInputError, message):
        engine.decide("hero", profile, now=now)
    assert_works(engine, now)


@pytest.mark.parametrize("shape", [(4,), (2, 2, 4), ()])
@pytest.mark.parametrize("call", ["decide_batch", "evaluate_rules"])
def test_batch_features_must_be_2d(engine, now, shape, call):
    features = np.zeros(shape, np.float32)
    with raises(InvalidInputError, "features must be 2-D (profiles x 4)"):
        run(engine, call, features, now)
    assert_works(engine, now)


@pytest.mark.parametrize("shape", [(2, 3), (2, 5), (4, 2), (1, 8), (2, 8)])
@pytest.mark.parametrize("call", ["decide_batch", "evaluate_rules"])
def test_batch_with_the_wrong_feature_count_is_rejected(engine, now, shape, call):
    # Every shape here has rows of the wrong width, even when the total divides by 4.
    features = np.zeros(shape, np.float32)
    with pytest.raises(InvalidInputError, match=r"\b4 features"):
        run(engine, call, features, now)
    assert_works(engine, now)


@pytest.mark.parametrize("shape", [(2, 2), (2, 4), (3, 3), (3, 2), (1, 6), (6, 1)])
def test_batch_consents_of_the_wrong_shape(engine, now, shape):
    features = np.array([GOOD, GOOD], np.float32)  # 2 profiles x 3 channels
    with pytest.raises(InvalidInputError, match=r"^consents must be 2 x 3 \(rows x channels\)"):
        engine.decide_batch("feed", features, consents=np.ones(shape, bool), now=now)
    assert_works(engine, now)


@pytest.mark.parametrize("shape", [(6,), (2, 3, 1)])
def test_batch_consents_must_be_2d(engine, now, shape):
    features = np.array([GOOD, GOOD], np.float32)
    with raises(InvalidInputError, "consents must be 2-D (profiles x 3)"):
        engine.decide_batch("feed", features, consents=np.ones(shape, bool), now=now)
    assert_works(engine, now)


def test_unknown_consent_channel(engine, now):
    with raises(InvalidInputError, "consent names unknown channel 'sms'; channels are web, email, push"):
        engine.decide("feed", np.array(GOOD, np.float32), consents=["email", "sms"], now=now)
    assert_works(engine, now)


def test_unknown_placement(engine, now):
    with raises(UnknownPlacementError, "unknown placement 'nope'"):
        engine.decide("nope", np.array(GOOD, np.float32), now=now)
    with raises(UnknownPlacementError, "unknown placement 'Hero'"):
        engine.decide_batch("Hero", np.array([GOOD], np.float32), now=now)
    with raises(UnknownPlacementError, "unknown placement ''"):
        engine.policy_state("")
    assert_works(engine, now)


@pytest.mark.parametrize("decision_id", [0, 3, 10**6, 2**63])
def test_unknown_decision_id(engine, now, decision_id):
    engine.decide("hero", np.array(GOOD, np.float32), now=now)  # id 1
    engine.decide_batch("hero", np.array([GOOD], np.float32), now=now)  # id 2
    with raises(UnknownDecisionError, unknown(decision_id)):
        engine.report_outcome(decision_id, 1.0)
    assert engine.pending_decisions == 2
    assert_works(engine, now)


@pytest.mark.parametrize("decision_id", [-1, 2**64])
def test_out_of_range_decision_id_is_an_unknown_decision(engine, now, decision_id):
    with pytest.raises(UnknownDecisionError, match=f"unknown decision id {decision_id}"):
        engine.report_outcome(decision_id, 1.0)
    assert_works(engine, now)


def test_reporting_a_single_offer_decision_twice(engine, now):
    d = engine.decide("hero", np.array(GOOD, np.float32), now=now)
    engine.report_outcome(d.decision_id, 1.0)
    for offer_id in (None, d.offer_ids[0]):  # a retry is told it was reported, as everywhere
        with raises(OutcomeAlreadyReportedError, settled(d.decision_id)):
            engine.report_outcome(d.decision_id, 1.0, offer_id)
    assert sum(a.alpha for a in engine.policy_state("hero")) == 5.0, "counted once"
    assert_works(engine, now)


def test_reporting_the_same_offer_of_a_multi_slot_decision_twice(engine, now):
    d = engine.decide("feed", np.array(GOOD, np.float32), consents=["email"], now=now)
    first, *rest = d.offer_ids
    engine.report_outcome(d.decision_id, 1.0, first)
    message = f"outcome for offer '{first}' of decision {d.decision_id} was already reported"
    with raises(OutcomeAlreadyReportedError, message):
        engine.report_outcome(d.decision_id, 0.0, first)
    for offer_id in rest:
        engine.report_outcome(d.decision_id, 0.0, offer_id)
    with raises(OutcomeAlreadyReportedError, settled(d.decision_id)):
        engine.report_outcome(d.decision_id, 0.0, first)
    state = {a.offer_id: (a.alpha, a.beta) for a in engine.policy_state("feed")}
    assert state[first] == (2.0, 1.0)
    assert all(state[o] == (1.0, 2.0) for o in rest)
    assert_works(engine, now)


@pytest.mark.parametrize(
    ("reward", "shown"),
    [(-0.1, "-0.1"), (1.0001, "1.0001"), (2, "2"), (math.nan, "NaN"), (math.inf, "inf"), (-math.inf, "-inf")],
)
def test_reward_outside_0_1(engine, now, reward, shown):
    d = engine.decide("hero", np.array(GOOD, np.float32), now=now)
    finite = math.isfinite(reward)
    expected = (
        f"reward must be a number in [0, 1] for placement 'hero' (Beta-Bernoulli thompson), got {shown}"
        if finite
        else f"reward must be a finite number, got {shown}"
    )
    with raises(InvalidInputError, expected):
        engine.report_outcome(d.decision_id, reward)
    assert {(a.alpha, a.beta) for a in engine.policy_state("hero")} == {(1.0, 1.0)}
    engine.report_outcome(d.decision_id, 1.0)  # the decision is still pending
    assert_works(engine, now)


def test_outcome_for_an_offer_not_shown_or_unknown(engine, now):
    d = engine.decide("feed", np.array(GOOD, np.float32), consents=["email"], now=now)
    with raises(InvalidInputError, f"offer 'dud' was not shown in decision {d.decision_id}"):
        engine.report_outcome(d.decision_id, 1.0, "dud")
    with raises(UnknownOfferError, "unknown offer 'nope'"):
        engine.report_outcome(d.decision_id, 1.0, "nope")
    for offer_id in d.offer_ids:
        engine.report_outcome(d.decision_id, 1.0, offer_id)
    assert engine.pending_decisions == 0
    assert_works(engine, now)


def test_multi_slot_outcome_needs_the_offer_id(engine, now):
    d = engine.decide("feed", np.array(GOOD, np.float32), consents=["email"], now=now)
    shown = ", ".join(d.offer_ids)
    message = f"decision {d.decision_id} showed 3 offers ({shown}); say which one the outcome is for"
    with raises(InvalidInputError, message):
        engine.report_outcome(d.decision_id, 1.0)
    assert engine.pending_decisions == 1
    assert_works(engine, now)


UNKNOWN_AGE = "unknown feature 'agee'; did you mean 'age'?"
UNKNOWN_SPEND = "unknown feature 'sepnd'; did you mean 'spend'?"
CATEGORY = "cannot apply '{}' to category 'segment' and a number"
BLOCK = "|\n      age >= 25\n        && agee > 3"
RULE_ERRORS = {  # id: (offer, rule text replaced, replacement, where the error is, detail)
    "typo": ("loan", "'age >= 25", "'agee >= 25", "agee", UNKNOWN_AGE),
    "typo-late": ("loan", "< 5000'", "< 5000 && sepnd > 0'", "sepnd", UNKNOWN_SPEND),
    "category-eq-number": ("silver_card", '"silver"', "3", "segment == 3", CATEGORY.format("==")),
    "category-ordered": ("gold_card", 'in ["gold", "platinum"]', "> 2", "segment > 2", CATEGORY.format(">")),
    "typo-block-scalar": ("loan", "'age >= 25 && spend * 2 < 5000'", BLOCK, "agee", UNKNOWN_AGE),
}


@pytest.mark.parametrize(("offer", "old", "new", "needle", "detail"), RULE_ERRORS.values(), ids=RULE_ERRORS)
def test_catalog_rule_error_points_at_file_offer_line_and_column(
    tmp_path, inline_yaml, engine, now, offer, old, new, needle, detail
):
    assert inline_yaml.count(old) == 1
    path = tmp_path / "catalog.yaml"
    path.write_text(inline_yaml.replace(old, new))
    ((line, column),) = [
        (n, text.index(needle) + 1)
        for n, text in enumerate(path.read_text().splitlines(), 1)
        if needle in text
    ]
    with pytest.raises(CatalogError) as info:
        Engine(path, clock="simulated")
    assert str(info.value) == f"{path}:{line}:{column}: offer '{offer}': {detail}"
    (issue,) = info.value.issues
    assert (issue.file, issue.line, issue.column) == (str(path), line, column)
    assert issue.where == f"offer '{offer}'"
    # The process carries on: the fixed catalog loads, and the engine made before is unaffected.
    path.write_text(inline_yaml)
    assert_works(Engine(path, clock="simulated"), now)
    assert_works(engine, now)


def test_every_engine_error_is_a_decision_engine_error():
    errors = [CatalogError, InvalidInputError, UnknownPlacementError, UnknownOfferError, UnknownDecisionError]
    for exc in [*errors, OutcomeAlreadyReportedError]:
        assert issubclass(exc, DecisionEngineError)
        assert getattr(decision_engine, exc.__name__) is exc
    assert issubclass(DecisionEngineError, Exception)
