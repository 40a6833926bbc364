"""Salted assignment: published vectors, shares, layer independence and mutual exclusion."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
import xxhash
from decision_engine.errors import InvalidInputError
from decision_engine.experiments.assignment import (
    Experiment,
    Layer,
    assign_all,
    bucket,
    buckets,
    to_basis_points,
)
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from tests.experiments.generate_assignment_vectors import VECTORS, build, hash64

IDS = [f"p{i:07d}" for i in range(100_000)]


def test_xxh3_is_the_reference_function() -> None:
    # XXH3_64bits("") from the xxHash reference implementation.
    assert xxhash.xxh3_64_intdigest(b"") == 0x2D06800538D394C2


def test_published_vectors_are_reproduced() -> None:
    published = json.loads(VECTORS.read_text(encoding="utf-8"))
    assert published == build()
    for case in published["cases"]:
        assert hash64(case["salt"], case["profile_id"]) == case["xxh3_64"]
        assert bucket(case["salt"], case["profile_id"]) == case["xxh3_64"] % 10_000 == case["bucket"]
    assert len(published["cases"]) >= 30
    assert {c["group"] for c in published["layer"]["cases"]} >= {None, "control"}


def test_separator_keeps_salt_and_id_apart() -> None:
    assert hash64("ab", "c") != hash64("a", "bc")


def test_split_matches_shares_within_sampling_error() -> None:
    for groups in ({"holdout": 500, "personalized": 9500}, {"a": 0.2, "b": 0.3, "c": 0.5}):
        experiment = Experiment.create("split", groups, salt="split-test")
        counts = Counter(experiment.groups_of(IDS).tolist())
        assert counts == Counter(experiment.group_of(i) for i in IDS[:1000]) + Counter(
            experiment.groups_of(IDS[1000:]).tolist()
        )
        observed = [counts[name] for name, _ in experiment.groups]
        expected = [len(IDS) * share for share in experiment.shares.values()]
        assert stats.chisquare(observed, expected).pvalue > 0.001


def test_buckets_are_uniform() -> None:
    coarse = np.bincount(buckets("uniformity", IDS) // 100, minlength=100)
    assert buckets("uniformity", IDS[:50]).tolist() == [bucket("uniformity", i) for i in IDS[:50]]
    assert stats.chisquare(coarse).pvalue > 0.001


def test_layers_are_independent() -> None:
    first = Experiment.create("hero", {"control": 0.5, "treatment": 0.5}, layer="web")
    second = Experiment.create("mail", {"control": 0.2, "a": 0.4, "b": 0.4}, layer="email")
    web = Layer.allocate("web", [(first, 10_000)])
    email = Layer.allocate("email", [(second, 10_000)])
    both = [assign_all([web, email], i) for i in IDS]
    table = Counter((a["web"].group, a["email"].group) for a in both)
    contingency = np.array(
        [[table[(g1, g2)] for g2 in ("control", "a", "b")] for g1 in ("control", "treatment")]
    )
    assert stats.chi2_contingency(contingency).pvalue > 0.001


def test_mutually_exclusive_experiments_never_overlap() -> None:
    first = Experiment.create("hero_copy", {"control": 0.5, "treatment": 0.5}, layer="web")
    second = Experiment.create("feed_ranker", {"control": 0.2, "linucb": 0.8}, layer="web")
    layer = Layer.allocate("web", [(first, 3000), (second, 5000)])
    members: dict[str, set[str]] = {"hero_copy": set(), "feed_ranker": set()}
    groups: Counter[str] = Counter()
    for i in IDS:
        found = layer.assign(i)
        if found is not None:
            members[found.experiment].add(i)
            groups[found.group] += found.experiment == "feed_ranker"
    assert not members["hero_copy"] & members["feed_ranker"]
    observed = [
        len(members["hero_copy"]),
        len(members["feed_ranker"]),
        len(IDS) - sum(map(len, members.values())),
    ]
    assert stats.chisquare(observed, [0.3 * len(IDS), 0.5 * len(IDS), 0.2 * len(IDS)]).pvalue > 0.001
    # Inside its slice the experiment's own salt still splits by its shares.
    n = len(members["feed_ranker"])
    assert stats.chisquare([groups["control"], groups["linucb"]], [0.2 * n, 0.8 * n]).pvalue > 0.001


def test_overlapping_slices_and_bad_shares_are_rejected() -> None:
    experiment = Experiment.create("x", {"a": 0.5, "b": 0.5}, layer="web")
    other = Experiment.create("y", {"a": 0.5, "b": 0.5}, layer="web")
    with pytest.raises(InvalidInputError, match="overlaps"):
        Layer("web", "s", ((experiment, 0, 6000), (other, 5000, 10_000)))
    with pytest.raises(InvalidInputError, match="10000"):
        Layer.allocate("web", [(experiment, 6000), (other, 6000)])
    with pytest.raises(InvalidInputError, match="layer"):
        Layer.allocate("email", [(experiment, 100)])
    with pytest.raises(InvalidInputError, match="sum to 10000"):
        to_basis_points([5000, 4000])
    with pytest.raises(InvalidInputError, match="sum to 1"):
        to_basis_points([0.5, 0.4])
    with pytest.raises(InvalidInputError, match="control"):
        Experiment.create("z", {"a": 0.5, "b": 0.5}, control="c")


@given(st.lists(st.integers(1, 1000), min_size=1, max_size=8))
def test_fractional_shares_round_to_exact_basis_points(weights: list[int]) -> None:
    shares = [w / sum(weights) for w in weights]
    points = to_basis_points(shares)
    assert sum(points) == 10_000
    assert all(abs(p - s * 10_000) < 1 for p, s in zip(points, shares, strict=True))


def test_experiment_round_trips_through_dict() -> None:
    experiment = Experiment.create("h", {"holdout": 0.05, "personalized": 0.95}, control="holdout")
    assert Experiment.from_dict(experiment.to_dict()) == experiment
    assert experiment.shares == {"holdout": 0.05, "personalized": 0.95}
