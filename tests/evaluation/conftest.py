"""`engine_bandit` is the real `decision_engine.Bandit` once the extension has it; before that
the tests use a pure-Python fake in its place."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from decision_engine.evaluation import progressive
from ope_fakes import HAS_BANDIT, FakeBandit


@pytest.fixture
def engine_bandit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Makes `progressive.engine_bandit` work: the real Bandit or, without it, the fake."""
    if HAS_BANDIT:
        return

    def fake(policy: Mapping[str, Any], n_arms: int, n_features: int, seed: int = 0) -> FakeBandit:
        if policy.get("type") not in ("thompson", "lin_ucb", "epsilon_greedy"):
            raise ValueError(f"unknown policy type {policy.get('type')!r}")
        return FakeBandit(n_arms)

    monkeypatch.setattr(progressive, "engine_bandit", fake)
