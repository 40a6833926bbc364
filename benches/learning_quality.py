"""Learning quality side by side: progressive mean reward of our Bandit and its peers on
supervised-to-bandit streams (bandit_streams.py), every learner on the same shuffled streams.

    python benches/learning_quality.py               # ~6 min; writes benches/results/learning_quality.md
    python benches/learning_quality.py --quick       # 2 seeds, 1 pass, digits and iris; prints only
    python benches/learning_quality.py --peers-only  # without decision_engine.Bandit
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from bandit_obd import obd_section
from bandit_peers import ContextualBanditsLinUCB, Mabwiser, OurBandit, VowpalWabbit
from bandit_streams import EPOCHS, Learner, Stream, load_stream, progressive_reward
from mabwiser.mab import LearningPolicy

CHUNK = 10  # rows chosen before learning; 1 would take MABWiser ~2 ms a row
SEEDS = (0, 1, 2, 3, 4)
RESULTS = Path(__file__).parent / "results" / "learning_quality.md"
LINEAR_GRID = (0.01, 0.03, 0.1, 0.3, 1.0)
LEARNING_RATES = (0.1, 0.5, 2.0, 8.0, 32.0)
LINTS_NOTE = (
    "MABWiser 2.7.4's LinTS draws the same noise for every arm (its arms share one copied random"
    " generator), so it is not a fair reference for linear Thompson sampling"
)


@dataclass(frozen=True)
class Contender:
    name: str
    parameter: str  # the hyperparameter tuned on `grid`
    grid: tuple[float, ...]
    make: Callable[[float, Stream, int], Learner]
    ours: bool = False
    note: str = ""


def _ours(policy: str, parameter: str, **fixed: float) -> Callable[[float, Stream, int], Learner]:
    def make(value: float, stream: Stream, seed: int) -> Learner:
        spec = {"type": policy, parameter: value, **fixed}
        return OurBandit(spec, stream.n_arms, stream.n_features, seed)

    return make


def _thompson_prior(value: float, stream: Stream, seed: int) -> Learner:
    return OurBandit(
        {"type": "thompson", "alpha": value, "beta": value}, stream.n_arms, stream.n_features, seed
    )


def _vw(options: str) -> Callable[[float, Stream, int], Learner]:
    def make(rate: float, stream: Stream, seed: int) -> Learner:
        return VowpalWabbit(f"{options} -l {rate}", stream.n_arms, seed)

    return make


def _mabwiser(policy: Callable[..., object]) -> Callable[[float, Stream, int], Learner]:
    def make(alpha: float, stream: Stream, seed: int) -> Learner:
        return Mabwiser(policy(alpha=alpha), stream.n_arms, seed)

    return make


def _contextualbandits(alpha: float, stream: Stream, seed: int) -> Learner:
    return ContextualBanditsLinUCB(alpha, stream.n_arms, seed)


CONTENDERS = [
    Contender("ours lin_ucb", "alpha", LINEAR_GRID, _ours("lin_ucb", "alpha"), ours=True),
    Contender("ours lin_thompson", "scale", LINEAR_GRID, _ours("lin_thompson", "scale"), ours=True),
    Contender(
        "ours epsilon_greedy (context-free floor)",
        "epsilon",
        (0.005, 0.01, 0.03, 0.1, 0.2),
        _ours("epsilon_greedy", "epsilon"),
        ours=True,
    ),
    Contender(
        "ours thompson (context-free floor)",
        "prior a=b",
        (0.25, 0.5, 1.0, 2.0, 4.0),
        _thompson_prior,
        ours=True,
    ),
    Contender("VW cb_explore_adf --epsilon 0.05", "-l", LEARNING_RATES, _vw("--epsilon 0.05")),
    Contender("VW cb_explore_adf --squarecb", "-l", LEARNING_RATES, _vw("--squarecb")),
    Contender("MABWiser LinUCB", "alpha", LINEAR_GRID, _mabwiser(LearningPolicy.LinUCB)),
    Contender("MABWiser LinTS", "alpha", LINEAR_GRID, _mabwiser(LearningPolicy.LinTS), note=LINTS_NOTE),
    Contender("contextualbandits LinUCB", "alpha", LINEAR_GRID, _contextualbandits),
]


@dataclass(frozen=True)
class Score:
    rewards: tuple[float, ...]  # one per seed
    seconds: float

    @property
    def mean(self) -> float:
        return float(np.mean(self.rewards))

    @property
    def cell(self) -> str:
        sd = float(np.std(self.rewards, ddof=1)) if len(self.rewards) > 1 else 0.0
        return f"{self.mean:.3f} ± {sd:.3f}"


def evaluate(
    contender: Contender, value: float, stream: Stream, seeds: tuple[int, ...], epochs: int
) -> Score:
    start = time.perf_counter()
    rewards = tuple(
        progressive_reward(contender.make(value, stream, seed), stream, stream.order(seed, epochs), CHUNK)
        for seed in seeds
    )
    return Score(rewards, time.perf_counter() - start)


def _value(x: float) -> str:
    return f"{x:g}"


def tables(
    scores: dict[tuple[str, str, float], Score],
    contenders: list[Contender],
    streams: list[Stream],
    seeds: tuple[int, ...],
    epochs: dict[str, int],
) -> str:
    """Best-of-grid table, then the whole grid."""
    header = "| learner | tuned on | " + " | ".join(
        f"{s.name} ({s.n_arms} arms, {s.n_features} features, {epochs[s.name]} x {len(s.labels)} rows)"
        for s in streams
    )
    rule = "|---|---|" + "---|" * len(streams)
    best_rows, grid_rows = [header + " | seconds |", rule + "---|"], [header + " |", rule]
    for c in contenders:
        cells, seconds = [], 0.0
        for s in streams:
            by_value = {v: scores[c.name, s.name, v] for v in c.grid}
            best = max(by_value, key=lambda v: by_value[v].mean)
            cells.append(f"{by_value[best].cell} ({c.parameter} {_value(best)})")
            seconds += sum(score.seconds for score in by_value.values())
        name = c.name + (" *" if c.note else "")
        grid = ", ".join(map(_value, c.grid))
        best_rows.append(
            f"| {name} | {c.parameter} in {{{grid}}} | " + " | ".join(cells) + f" | {seconds:.0f} |"
        )
        for v in c.grid:
            cells = [scores[c.name, s.name, v].cell for s in streams]
            grid_rows.append(f"| {name} | {c.parameter} {_value(v)} | " + " | ".join(cells) + " |")
    chance = ", ".join(f"{s.name} {1 / s.n_arms:.3f}" for s in streams)
    notes = "\n".join(f"\\* {c.name}: {c.note}." for c in contenders if c.note)
    return f"""# Learning quality: progressive mean reward

Supervised-to-bandit streams from scikit-learn datasets (shipped, not downloaded): each class
is an arm, reward 1 when the chosen arm is the row's label. Features standardised, plus a
constant 1 column so every linear learner has a per-arm intercept (counted below). Each seed is
one stream order ({len(seeds)} seeds: {", ".join(map(str, seeds))}); a stream makes several passes over the
dataset (passes x rows below), each pass a new permutation; every learner sees the same streams.
Learners choose {CHUNK} rows at a time, then learn the rewards of their own choices, so each
reward comes from a decision made before its row was learned. Cells: mean ± sd over the seeds of
the mean reward over the whole stream. Each learner's main hyperparameter is tuned on a grid of
{len(LINEAR_GRID)} values (the same budget for all; for Vowpal Wabbit the learning rate `-l`) and the
best value is reported, chosen on the same seeds, which flatters every learner alike. Uniform
random choice earns {chance}.

## Best of each learner's grid

{chr(10).join(best_rows)}

{notes}

## Whole grid

{chr(10).join(grid_rows)}
"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="2 seeds, 1 pass, digits and iris; not written")
    parser.add_argument("--peers-only", action="store_true", help="leave our Bandit out")
    args = parser.parse_args()
    names = ["digits", "iris"] if args.quick else list(EPOCHS)
    seeds = SEEDS[:2] if args.quick else SEEDS
    epochs = {name: 1 if args.quick else EPOCHS[name] for name in names}
    contenders = [c for c in CONTENDERS if not (args.peers_only and c.ours)]
    streams = [load_stream(name) for name in names]
    scores = {}
    for c in contenders:
        for s in streams:
            for v in c.grid:
                scores[c.name, s.name, v] = score = evaluate(c, v, s, seeds, epochs[s.name])
                print(
                    f"{c.name:45} {s.name:14} {c.parameter} {_value(v):5} {score.cell}  {score.seconds:.1f}s"
                )
    text = tables(scores, contenders, streams, seeds, epochs)
    if not args.peers_only:
        text += "\n" + obd_section()
    print(text)
    if not args.quick:
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(text)
        print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
