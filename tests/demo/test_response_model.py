"""The demo's response models: the rich one keeps every offer's mean click rate and moves who
clicks by segment, life stage and behaviour; the basic one is unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from seeds.generator import ResponseModel, generate_profiles

FEATURES = ResponseModel().feature_names


@pytest.fixture(scope="module")
def profiles() -> np.ndarray:
    return generate_profiles(30_000, seed=5)


@pytest.fixture(scope="module")
def rich() -> ResponseModel:
    return ResponseModel(seed=5, kind="rich")


def column(profiles: np.ndarray, name: str) -> np.ndarray:
    return np.asarray(profiles[:, FEATURES.index(name)])


def test_basic_is_the_default_and_has_no_category_effects() -> None:
    default, basic = ResponseModel(seed=2), ResponseModel(seed=2, kind="basic")
    assert default.kind == "basic" and np.array_equal(default.weights, basic.weights)
    assert not default.stage_effects.any() and not default.segment_effects.any()
    with pytest.raises(ValueError, match=r"kind must be one of \['basic', 'rich'\], got 'fancy'"):
        ResponseModel(kind="fancy")  # type: ignore[arg-type]


def test_rich_keeps_each_offers_mean_click_rate(rich: ResponseModel, profiles: np.ndarray) -> None:
    basic = ResponseModel(seed=5)
    assert np.array_equal(rich.target_rates, basic.target_rates)
    means = rich.click_probabilities(profiles).mean(axis=0)
    assert np.allclose(means, rich.target_rates, rtol=0.08, atol=0.002)


def test_rich_preferences_follow_segment_and_behaviour(rich: ResponseModel, profiles: np.ndarray) -> None:
    p = rich.click_probabilities(profiles)
    offer = rich.offer_ids.index
    segment = column(profiles, "segment")  # basic, silver, gold, platinum
    wealth = p[:, offer("wealth_review")]
    assert wealth[segment == 3].mean() > 3 * wealth[segment == 0].mean()
    student = p[:, offer("card_student")]
    assert student[segment == 0].mean() > 2 * student[segment == 3].mean()
    travel = column(profiles, "travel_spend_share")
    insurance = p[:, offer("travel_insurance")]
    high, low = travel > np.quantile(travel, 0.8), travel < np.quantile(travel, 0.2)
    assert insurance[high].mean() > 3 * insurance[low].mean()
    stage = column(profiles, "life_stage")  # student, young_professional, family, established, retired
    mortgage = p[:, offer("mortgage_first_home")]
    assert mortgage[stage == 2].mean() > 3 * mortgage[stage == 4].mean()
    # far more personal than the basic model, without making anybody certain to click
    spread = p.std(axis=0) / p.mean(axis=0)
    basic = ResponseModel(seed=5).click_probabilities(profiles)
    assert np.median(spread) > 1.5 * np.median(basic.std(axis=0) / basic.mean(axis=0))
    assert np.quantile(p, 0.99) < 0.8


def test_single_pairs_agree_with_the_matrix(rich: ResponseModel, profiles: np.ndarray) -> None:
    rows = profiles[:200]
    offers = np.arange(200) % rich.n_offers
    assert np.allclose(
        rich.click_probability(rows, offers), rich.click_probabilities(rows)[np.arange(200), offers]
    )
