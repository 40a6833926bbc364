"""The demo's decision and outcome logs (Parquet), in the format `decision-engine report` reads."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from decision_engine._core import Decision
from decision_engine.experiments.assignment import Experiment
from decision_engine.experiments.log import DecisionLogWriter, OutcomeLogWriter

FLUSH_ROWS = 20_000


class DemoLog:
    """Buffers rows and appends them to the two Parquet files in `directory`."""

    def __init__(self, directory: Path, experiments: list[Experiment]) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.decisions_path = directory / "decisions.parquet"
        self.outcomes_path = directory / "outcomes.parquet"
        self._decisions = DecisionLogWriter(self.decisions_path, experiments)
        self._outcomes = OutcomeLogWriter(self.outcomes_path)
        self._decision_rows: list[dict[str, Any]] = []
        self._outcome_rows: list[dict[str, Any]] = []

    def decision(self, decision: Decision, profile_id: str, now: float) -> None:
        time = datetime.fromtimestamp(now, UTC)
        for experiment, group in decision.experiments:
            for chosen in decision.offers:
                self._decision_rows.append(
                    {
                        "decision_id": decision.decision_id,
                        "time": time,
                        "profile_id": profile_id,
                        "placement": decision.placement,
                        "experiment": experiment,
                        "group": group,
                        "offer_id": chosen.offer_id,
                        "slot": chosen.slot,
                        "propensity": chosen.propensity,
                    }
                )
        if len(self._decision_rows) >= FLUSH_ROWS:
            self._decisions.append(self._decision_rows)
            self._decision_rows = []

    def outcome(self, decision_id: int, offer_id: str, now: float, value: float) -> None:
        time = datetime.fromtimestamp(now, UTC)
        row = {"decision_id": decision_id, "offer_id": offer_id, "time": time, "reward": 1.0, "value": value}
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
