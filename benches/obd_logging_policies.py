"""Each Open Bandit Dataset logging policy's value estimated from the *other* policy's log,
beside its own on-policy click rate: `python benches/obd_logging_policies.py`.

The uniform policy (1/80 per item) is scored on the Bernoulli-Thompson log with that log's
propensities; BTS, which is context-free, gets its action distribution per position from its
own log (mean logged propensity per item and position, renormalised) and is scored on the
uniform log. The same checks run as tests in tests/evaluation/test_ope_obd.py."""

from __future__ import annotations

from pathlib import Path

from decision_engine.evaluation import (
    context_free_distribution,
    estimate,
    load_obd,
    on_policy,
    positional_policy,
    uniform_policy,
)

OBD = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "obd"


def main() -> None:
    random_log = load_obd(OBD / "random" / "all" / "all.csv")
    bts_log = load_obd(OBD / "bts" / "all" / "all.csv")
    cases = [
        ("uniform random", random_log, bts_log, uniform_policy(bts_log)),
        (
            "Bernoulli TS",
            bts_log,
            random_log,
            positional_policy(context_free_distribution(bts_log), random_log),
        ),
    ]
    print(
        "| policy | on-policy click rate | estimator, on the other log | estimate [95% interval] | covers |"
    )
    print("|---|---|---|---|---|")
    for name, own, other, target in cases:
        truth = on_policy(own)
        for estimator, e in estimate(other, target, ["ips", "snips", "dr"]).items():
            covers = "yes" if e.lower <= truth.value <= e.upper else "no"
            print(
                f"| {name} | {truth.value:.4f} [{truth.lower:.4f}, {truth.upper:.4f}] | {estimator} "
                f"| {e.value:.4f} [{e.lower:.4f}, {e.upper:.4f}] | {covers} |"
            )


if __name__ == "__main__":
    main()
