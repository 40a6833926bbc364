"""A decision log on disk: decisions and outcomes as two Parquet files, in the format that
`decision-engine report` (experiments) and `decision-engine evaluate` (off-policy evaluation)
read. Every decision is logged, with or without experiments; decisions made with
``explain=True`` also log the eligible set the policy chose among.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from decision_engine._core import Decision
from decision_engine.decision_log.format import DecisionLogWriter, OutcomeLogWriter, features_hash
from decision_engine.experiments.assignment import Experiment

FLUSH_ROWS = 20_000


class DecisionLog:
    """Buffers rows and appends them to ``decisions.parquet`` and ``outcomes.parquet`` in
    ``directory``; the files are published when the log closes without an error.

    One row per chosen offer (and per experiment group the profile is in), with the columns
    off-policy evaluation needs: the policy version, a hash of the features (or, with
    ``features=True``, the features themselves) and the eligible set.
    """

    def __init__(
        self,
        directory: str | Path,
        experiments: Sequence[Experiment] = (),
        *,
        policy_version: str = "",
        features: bool = False,
    ) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.decisions_path = directory / "decisions.parquet"
        self.outcomes_path = directory / "outcomes.parquet"
        self.policy_version = policy_version
        self._with_features = features
        self._decisions = DecisionLogWriter(self.decisions_path, experiments, ope=True, features=features)
        self._outcomes = OutcomeLogWriter(self.outcomes_path)
        self._decision_rows: list[dict[str, Any]] = []
        self._outcome_rows: list[dict[str, Any]] = []

    def decision(
        self, decision: Decision, profile_id: str, now: float, features: npt.ArrayLike | None = None
    ) -> None:
        """Logs one decision made at ``now`` (unix seconds) for ``profile_id``."""
        time = datetime.fromtimestamp(now, UTC)
        shared: dict[str, Any] = {
            "decision_id": decision.decision_id,
            "time": time,
            "profile_id": profile_id,
            "placement": decision.placement,
            "policy_version": self.policy_version,
            "features_hash": None if features is None else features_hash(features),
            "eligible": decision.eligible or None,
        }
        if self._with_features:
            shared["features"] = None if features is None else np.asarray(features, np.float32).tolist()
        groups = decision.experiments or [("", "")]
        for experiment, group in groups:
            for chosen in decision.offers:
                row = dict(shared, experiment=experiment, group=group, offer_id=chosen.offer_id)
                row.update(slot=chosen.slot, propensity=chosen.propensity)
                self._decision_rows.append(row)
        if len(self._decision_rows) >= FLUSH_ROWS:
            self._decisions.append(self._decision_rows)
            self._decision_rows = []

    def outcome(self, decision_id: int, offer_id: str, now: float, value: float, reward: float = 1.0) -> None:
        time = datetime.fromtimestamp(now, UTC)
        row = {
            "decision_id": decision_id,
            "offer_id": offer_id,
            "time": time,
            "reward": reward,
            "value": value,
        }
        self._outcome_rows.append(row)
        if len(self._outcome_rows) >= FLUSH_ROWS:
            self._outcomes.append(self._outcome_rows)
            self._outcome_rows = []

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is None and self._decision_rows:
            self._decisions.append(self._decision_rows)
        if kind is None and self._outcome_rows:
            self._outcomes.append(self._outcome_rows)
        self._decisions.close(publish=kind is None)
        self._outcomes.close(publish=kind is None)
