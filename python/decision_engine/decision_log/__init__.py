"""The decision log: every decision and outcome in two Parquet files.

- `writer`: `DecisionLog`, what a running engine logs (decisions, outcomes, eligible sets,
  propensities, features or their hash);
- `format`: the files' schemas, their low-level writers and readers, and `join_outcomes`
  (outcomes within an attribution window), shared by the experiment report and evaluation;
- `reader`: `load_decision_log`, one placement's rows as `decision_engine.evaluation.LoggedBandit`
  for off-policy evaluation.
"""

from decision_engine.decision_log.format import (
    DECISIONS_SCHEMA,
    OUTCOMES_SCHEMA,
    DecisionLogWriter,
    OutcomeLogWriter,
    features_hash,
    join_outcomes,
    read_decisions,
    read_experiments,
    read_outcomes,
)
from decision_engine.decision_log.reader import load_decision_log, placements
from decision_engine.decision_log.writer import DecisionLog

__all__ = [
    "DECISIONS_SCHEMA",
    "OUTCOMES_SCHEMA",
    "DecisionLog",
    "DecisionLogWriter",
    "OutcomeLogWriter",
    "features_hash",
    "join_outcomes",
    "load_decision_log",
    "placements",
    "read_decisions",
    "read_experiments",
    "read_outcomes",
]
