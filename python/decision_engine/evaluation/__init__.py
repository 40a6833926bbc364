"""Off-policy evaluation: what a policy would have earned, estimated from logged decisions.

- `LoggedBandit`: the logged rows (reward, action, propensity, optional context, mask, slot);
- `replay`, `ips`, `snips`, `dr` (and `estimate` for several): a `PolicyValueEstimate` with a 95%
  interval;
- `load_obd` (Open Bandit Dataset CSV); the engine's own Parquet log is read by
  `decision_engine.decision_log.load_decision_log`;
- `evaluate_policy`: a learning policy, scored chunk by chunk before it learns from each chunk.
"""

from decision_engine.evaluation.data import LoggedBandit, target_probabilities
from decision_engine.evaluation.estimators import (
    ESTIMATORS,
    Options,
    PolicyValueEstimate,
    dr,
    estimate,
    ips,
    on_policy,
    replay,
    snips,
)
from decision_engine.evaluation.obd import (
    context_free_distribution,
    load_obd,
    positional_policy,
    uniform_policy,
)
from decision_engine.evaluation.progressive import (
    BanditLike,
    engine_bandit,
    evaluate_on_obd,
    evaluate_policy,
    evaluate_trained,
    progressive_probabilities,
)
from decision_engine.evaluation.reward_model import cross_fit_rewards

__all__ = [
    "ESTIMATORS",
    "BanditLike",
    "LoggedBandit",
    "Options",
    "PolicyValueEstimate",
    "context_free_distribution",
    "cross_fit_rewards",
    "dr",
    "engine_bandit",
    "estimate",
    "evaluate_on_obd",
    "evaluate_policy",
    "evaluate_trained",
    "ips",
    "load_obd",
    "on_policy",
    "positional_policy",
    "progressive_probabilities",
    "replay",
    "snips",
    "target_probabilities",
    "uniform_policy",
]
