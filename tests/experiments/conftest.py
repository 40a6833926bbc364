"""A simulated holdout experiment log, written once per test session."""

from __future__ import annotations

import pytest
from decision_engine.experiments.simulate import SimulatedLog, simulate_experiment_log


@pytest.fixture(scope="session")
def holdout_log(tmp_path_factory: pytest.TempPathFactory) -> SimulatedLog:
    """7 days, 5% holdout converting at 3% against 4% for personalized offers."""
    folder = tmp_path_factory.mktemp("holdout")
    return simulate_experiment_log(
        folder / "decisions.parquet",
        folder / "outcomes.parquet",
        days=7,
        customers=20_000,
        decisions_per_day=12_000,
    )
