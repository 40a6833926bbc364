"""Our policies on the Open Bandit Dataset sample (/work/shared/data/obd, 10,000 impressions of
80 items logged by a uniform random policy): trained on the first 70% of the random log in
time order, estimated off-policy on the last 30% with `decision_engine.evaluation`."""

from __future__ import annotations

from pathlib import Path

OBD = Path("/work/shared/data/obd")
TRAIN_FRACTION = 0.7
ESTIMATORS = ("ips", "snips", "dr")
POLICIES = [
    {"type": "lin_ucb"},
    {"type": "lin_thompson"},
    {"type": "thompson"},
    {"type": "ucb1"},
    {"type": "epsilon_greedy"},
    {"type": "softmax"},
]


def _cell(estimate: object) -> str:
    value, lower, upper = (getattr(estimate, name) for name in ("value", "lower", "upper"))
    return f"{value:.4f} [{lower:.4f}, {upper:.4f}]"


def obd_section() -> str:
    """A markdown section; says why when the log or the evaluation module is missing."""
    log = OBD / "random" / "all" / "all.csv"
    if not log.exists():
        return f"## Open Bandit Dataset\n\nNot run: {log} is missing.\n"
    try:
        from decision_engine.evaluation import evaluate_on_obd, load_obd, on_policy
    except ImportError as exc:
        return f"## Open Bandit Dataset\n\nNot run: decision_engine.evaluation is not importable ({exc}).\n"
    data = load_obd(log)
    cut = round(data.n * TRAIN_FRACTION)
    test = data.take(data.time_order()[cut:])
    random_rate = on_policy(test)
    rows = ["| policy (defaults) | " + " | ".join(ESTIMATORS) + " |", "|---|" + "---|" * len(ESTIMATORS)]
    rows.append("| logging policy (uniform random), on-policy | " + _cell(random_rate) + " | | |")
    for policy in POLICIES:
        estimates = evaluate_on_obd(policy, data, TRAIN_FRACTION)
        cells = " | ".join(_cell(estimates[name]) for name in ESTIMATORS)
        rows.append(f"| {policy['type']} | {cells} |")
    n_features = 0 if data.X is None else data.X.shape[1]
    return f"""## Open Bandit Dataset (random log, "all" campaign)

{data.n:,} impressions, {data.n_actions} items, {n_features} context features (the 4 hashed
user features one-hot in 8 buckets each, `load_obd` defaults). Each policy learns the first
{TRAIN_FRACTION:.0%} of the log in time order ({cut:,} rows, from the logged actions), then is
scored on the last {data.n - cut:,} rows with `decision_engine.evaluation.evaluate_on_obd`: chunk
by chunk (1,000 rows), each chunk's action probabilities taken before the policy learns it.
Cells: estimated click rate [95% interval]. With ~{random_rate.value * (data.n - cut):.0f} clicks
in the test part, the intervals are wide: this shows the pipeline runs, not which policy wins.
A deterministic policy (lin_ucb, ucb1) whose items drew no click in the test part gets IPS 0
with a zero-width normal interval, which says nothing about its real value.

{chr(10).join(rows)}
"""
