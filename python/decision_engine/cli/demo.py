"""`decision-engine demo`: the customers' profiles are loaded into the engine once, they arrive at
placements as simulated weeks pass (a web or app arrival is a visit event), the channels decide
by id (`decision_engine.cli.demo_customers`), a known response model clicks or not, outcomes
flow back, and the learned policy is compared, on the same customers, with the per-customer
oracle, the best fixed ranking and uniform random (`decision_engine.cli.demo_baselines`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import click
import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from decision_engine.catalog import LoadedCatalog, load_catalog, parse_catalog
from decision_engine.cli.demo_baselines import Simulation, best_fixed_keys, fill
from decision_engine.cli.demo_customers import CustomerPlane, customer_id, without_caps
from decision_engine.cli.demo_triggers import TriggeredCampaign
from decision_engine.cli.seeds import seeds_module
from decision_engine.engine import Engine
from decision_engine.experiments.assignment import Experiment

if TYPE_CHECKING:
    from decision_engine.decision_log import DecisionLog

F64 = npt.NDArray[np.float64]

# The simulated arrivals spread over this many days: visits age out of `visits_7d` and, with a
# holdout, contact caps see time pass.
SIMULATED_DAYS = 28
HOLDOUT_ID = "universal_holdout"
ORACLE, FIXED, RANDOM = "oracle (true response)", "best fixed ranking", "uniform random"

console = Console()


def with_holdout(catalog: Path, share: float) -> tuple[LoadedCatalog, Experiment]:
    """The catalog plus a universal holdout: `share` of customers get the non-personalized default."""
    loaded = load_catalog(catalog)
    if loaded.model.experiments:
        raise ValueError(f"{catalog} already defines experiments; run the demo without --holdout")
    points = round(share * 10_000)
    text = catalog.read_text(encoding="utf-8") + (
        f"\nexperiments:\n  - id: {HOLDOUT_ID}\n    layer: global\n    groups:\n"
        f"      - {{name: holdout, share: {points / 10_000}, treatment: default}}\n"
        f"      - {{name: personalized, share: {(10_000 - points) / 10_000}}}\n"
    )
    experiment = Experiment.create(
        HOLDOUT_ID, {"holdout": points, "personalized": 10_000 - points}, layer="global"
    )
    return parse_catalog(text, str(catalog)), experiment


@dataclass(frozen=True)
class SimulatedPolicyResult:
    """A policy's expected clicks per offer shown and expected value per decision under the
    true response model, over the run; ``per_decision`` is the expected value of each decision."""

    name: str
    click_rate: float
    value_per_decision: float
    per_decision: F64 = field(repr=False, compare=False)


@dataclass(frozen=True)
class DemoResult:
    decisions: int
    results: list[SimulatedPolicyResult]  # learned first, then oracle, best fixed, random
    decide_seconds: float
    batch_decisions_per_second: float
    response_model: str
    by_placement: dict[str, dict[str, float]]  # placement -> policy name -> value per decision
    customers: CustomerPlane  # what went into the profile store, and what was decided by id
    campaign: TriggeredCampaign | None = None  # the catalog's triggered campaign, if any

    def result(self, name: str) -> SimulatedPolicyResult:
        return next(r for r in self.results if r.name == name)

    def gap_captured(self, upto: int | None = None, window: int | None = None) -> float:
        """Share of the oracle-over-best-fixed gap the learned policy captures, over all
        decisions or over the ``window`` decisions before decision ``upto``."""
        end = self.decisions if upto is None else min(upto, self.decisions)
        start = 0 if window is None else max(end - window, 0)
        learned, oracle, fixed = (
            float(self.result(n).per_decision[start:end].mean())
            for n in (self.results[0].name, ORACLE, FIXED)
        )
        return (learned - fixed) / (oracle - fixed) if oracle > fixed else float("nan")


def policy_label(catalog: LoadedCatalog) -> str:
    """ "learned (thompson)" or "learned (thompson / lin_ucb by placement)": the catalog's
    real policy types, in placement order."""
    kinds: list[str] = []
    for placement in catalog.model.placements:
        if placement.policy.type not in kinds:
            kinds.append(placement.policy.type)
    return f"learned ({' / '.join(kinds)}{' by placement' if len(kinds) > 1 else ''})"


def run_demo(
    catalog: Path,
    decisions: int,
    seed: int,
    customers: int = 20_000,
    progress: Callable[[int, float], None] | None = None,
    log: DecisionLog | None = None,
    holdout: float = 0.0,
    response_model: str = "rich",
) -> DemoResult:
    """Simulates `decisions` arrivals; returns click rate and value per decision by policy.

    The customers' profiles, consents and recent visits are loaded once; arrivals spread over
    `SIMULATED_DAYS` of simulated time, every web or app arrival is tracked as a visit, and
    every decision is made by id on the stored profile. The engine learns from clicks drawn
    from the true response model; every policy, the learned one included, is scored by the
    expected value of what it showed (the true click probability x value x weight), which has
    the same mean as the drawn clicks and less noise. Without a holdout the catalog's contact
    caps and cooldowns are left out (`without_caps`: the policies compared meet none); with a
    `holdout` share they apply over the simulated weeks, a universal holdout gets the
    non-personalized default, and `log` receives every decision and outcome for the
    experiment report.
    """
    loaded = with_holdout(catalog, holdout)[0] if holdout > 0 else without_caps(load_catalog(catalog))
    engine = Engine(loaded, seed=seed, clock="simulated")
    sim = Simulation.build(engine, catalog, customers, seed, response_model)
    rng = np.random.default_rng(seed + 1)
    placements = engine.placements
    placement_ids = list(placements)
    offer_index = {o: i for i, o in enumerate(engine.offer_ids)}

    who = rng.integers(0, customers, decisions)
    where = rng.integers(0, len(placement_ids), decisions)
    value = np.zeros(decisions)
    clicks = shown = drawn = 0.0
    engine_seconds = 0.0
    start_time, step = time.time(), SIMULATED_DAYS * 86_400 / max(decisions, 1)
    plane = CustomerPlane.load(engine, sim, start_time, seed)
    campaign = TriggeredCampaign.for_engine(engine, start_time, seed)
    for t in range(decisions):
        customer, placement = int(who[t]), placement_ids[where[t]]
        profile_id, now = customer_id(customer), start_time + t * step
        plane.visit(customer, placements[placement][0], now, t)
        if campaign is not None:
            campaign.arrive(customer, placements[placement][0], now, t)
        started = time.perf_counter()
        decision = engine.decide(placement, None, profile_id=profile_id, now=now)
        engine_seconds += time.perf_counter() - started
        if log is not None:
            log.decision(decision, profile_id, now, features=sim.profiles[customer])
        for chosen in decision.offers:
            o = offer_index[chosen.offer_id]
            p = sim.click_p[customer, o]
            clicked = rng.random() < p
            value[t] += p * sim.values[o]
            clicks += p
            drawn += clicked
            shown += 1
            started = time.perf_counter()
            engine.report_outcome(decision.decision_id, float(clicked), chosen.offer_id)
            engine_seconds += time.perf_counter() - started
            if clicked and log is not None:
                log.outcome(decision.decision_id, chosen.offer_id, now + 3600.0, float(sim.values[o]))
        if progress is not None and (t + 1) % 1000 == 0:
            progress(1000, drawn / max(shown, 1))
    plane.decided_by_id = decisions
    if campaign is not None:
        campaign.finish(start_time + decisions * step)

    name = policy_label(engine.catalog) if holdout == 0 else f"engine ({holdout:.0%} holdout)"
    learned = SimulatedPolicyResult(name, clicks / max(shown, 1), float(value.mean()), value)
    baselines = _baselines(sim, placement_ids, who, where, rng)
    by_placement = {
        pid: {r.name: float(r.per_decision[where == p].mean()) for r in (learned, *baselines)}
        for p, pid in enumerate(placement_ids)
        if (where == p).any()
    }
    started = time.perf_counter()
    engine.decide_batch(placement_ids[0], sim.profiles, consents=sim.consents)
    batch_rate = customers / (time.perf_counter() - started)
    return DemoResult(
        decisions,
        [learned, *baselines],
        engine_seconds,
        batch_rate,
        response_model,
        by_placement,
        plane,
        campaign,
    )


def _baselines(
    sim: Simulation,
    placement_ids: list[str],
    who: npt.NDArray[np.int64],
    where: npt.NDArray[np.int64],
    rng: np.random.Generator,
) -> list[SimulatedPolicyResult]:
    """The oracle, the best fixed ranking and uniform random on the same arrivals
    (`decision_engine.cli.demo_baselines`)."""
    names = (ORACLE, FIXED, RANDOM)
    value = {n: np.zeros(len(who)) for n in names}
    clicks = dict.fromkeys(names, 0.0)
    shown = dict.fromkeys(names, 0)
    for p, pid in enumerate(placement_ids):
        slots = sim.engine.placements[pid][1]
        rows = np.flatnonzero(where == p)
        members = sim.members(pid)
        allowed = sim.allowed(pid, who[rows])
        p_click = sim.click_p[np.ix_(who[rows], members)]
        expected = p_click * sim.values[members]
        groups = sim.groups[members]
        keys = {
            ORACLE: expected,
            FIXED: np.broadcast_to(best_fixed_keys(expected, allowed, groups, slots), expected.shape),
            RANDOM: rng.random(expected.shape),
        }
        for n in names:
            picked = fill(keys[n], allowed, groups, slots)
            value[n][rows] = (picked * expected).sum(axis=1)
            clicks[n] += float((picked * p_click).sum())
            shown[n] += int(picked.sum())
    return [
        SimulatedPolicyResult(n, clicks[n] / max(shown[n], 1), float(value[n].mean()), value[n])
        for n in names
    ]


def _demo_catalog() -> Path:
    catalog: Path = seeds_module("generator").DEMO_CATALOG
    return catalog


@click.command("demo")
@click.option("--decisions", default=200_000, show_default=True, help="Customer arrivals to simulate.")
@click.option("--customers", default=20_000, show_default=True, help="Distinct simulated customers.")
@click.option("--seed", default=7, show_default=True)
@click.option(
    "--catalog",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Catalog to use (default: the demo catalog in seeds/).",
)
@click.option(
    "--response-model",
    type=click.Choice(["basic", "rich"]),
    default="rich",
    show_default=True,
    help="The customers' true response: 'rich' with preferences by segment, life stage and "
    "behaviour (seeds/preferences.py), 'basic' with random tastes.",
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the learning curve (rolling value per decision) to this image file.",
)
@click.option("--by-placement", is_flag=True, help="Also print value per decision by placement.")
@click.option(
    "--holdout",
    type=click.FloatRange(0.0, 0.5),
    default=0.0,
    show_default=True,
    help="Share of customers in a universal holdout (non-personalized default); with it the "
    "demo logs every decision and ends with the experiment report.",
)
@click.option(
    "--log-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo-log"),
    show_default=True,
    help="Where the decision and outcome logs go (with --holdout).",
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the experiment report as HTML (with --holdout).",
)
def demo(
    decisions: int,
    customers: int,
    seed: int,
    catalog: Path | None,
    response_model: str,
    plot: Path | None,
    by_placement: bool,
    holdout: float,
    log_dir: Path,
    html_path: Path | None,
) -> None:
    """Simulate customers with a known response model; compare the learned policy with the
    oracle, the best fixed ranking and uniform random."""
    from contextlib import nullcontext

    catalog = catalog or _demo_catalog()
    console.print(
        f"catalog {catalog}, {decisions:,} decisions over {customers:,} customers, seed {seed}, "
        f"{response_model} response model"
    )
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    log_context = nullcontext(None)
    if holdout > 0:
        from decision_engine.decision_log import DecisionLog

        log_context = DecisionLog(log_dir, [with_holdout(catalog, holdout)[1]])  # type: ignore[assignment]
    with Progress(*columns, console=console) as bar, log_context as log:
        task = bar.add_task("deciding", total=decisions)

        def advance(steps: int, click_rate: float) -> None:
            bar.update(task, advance=steps, description=f"deciding (click rate {click_rate:.2%})")

        result = run_demo(
            catalog,
            decisions,
            seed,
            customers,
            progress=advance,
            log=log,
            holdout=holdout,
            response_model=response_model,
        )
    print_results(result, holdout)
    if by_placement:
        print_by_placement(result)
    if plot is not None:
        plot_learning_curve(result, plot)
        console.print(f"wrote {plot}")
    if holdout > 0:
        _holdout_report(log_dir, HOLDOUT_ID, html_path)


def print_results(result: DemoResult, holdout: float = 0.0) -> None:
    """The policies table, the share of the oracle's gap captured and the engine's speed."""
    caption = (
        "click rate and value: expected under the true response model; every policy shows only "
        "eligible offers, with consent, one per group"
    )
    if holdout > 0:
        caption += "; only the engine also meets contact caps over time"
    table = Table(title="Policies on the same simulated customers", caption=caption)
    for column in ("policy", "click rate", "value / decision", "vs best fixed", "gap captured"):
        table.add_column(
            column, justify="left" if column == "policy" else "right", no_wrap=column == "policy"
        )
    oracle, fixed = (result.result(n).value_per_decision for n in (ORACLE, FIXED))
    for r in result.results:
        captured = (r.value_per_decision - fixed) / (oracle - fixed) if oracle > fixed else float("nan")
        table.add_row(
            r.name,
            f"{r.click_rate:.2%}",
            f"{r.value_per_decision:.3f}",
            f"{r.value_per_decision / fixed - 1:+.1%}",
            f"{captured:.0%}",
        )
    console.print(table)
    window = max(result.decisions // 20, 1)
    checkpoints = [c for c in (50_000, 200_000) if c <= result.decisions] or [result.decisions]
    for end in checkpoints:
        console.print(
            f"share of the oracle-over-best-fixed gap captured in decisions "
            f"{max(end - window, 0):,}-{end:,}: {result.gap_captured(end, window):.0%}"
        )
    per_second = result.decisions / result.decide_seconds
    console.print(
        f"engine time {result.decide_seconds:.2f} s for {result.decisions:,} decisions with outcomes "
        f"({per_second:,.0f} decide+report/s from Python, one thread); "
        f"decide_batch: {result.batch_decisions_per_second:,.0f} decisions/s"
    )
    console.print(result.customers.summary())
    if result.campaign is not None:
        console.print(result.campaign.summary())


def print_by_placement(result: DemoResult) -> None:
    table = Table(title="Value per decision by placement")
    names = [r.name for r in result.results]
    table.add_column("placement")
    for name in names:
        table.add_column(name.split(" (")[0], justify="right")
    for pid, values in result.by_placement.items():
        table.add_row(pid, *(f"{values[n]:.3f}" for n in names))
    console.print(table)


def plot_learning_curve(result: DemoResult, path: Path) -> None:
    """Rolling value per decision of the learned policy, the oracle and the best fixed ranking."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    window = max(min(10_000, result.decisions // 10), 1)
    x = np.arange(window, result.decisions + 1)
    figure, axes = plt.subplots(figsize=(8, 4.5))
    shown = [r for r in result.results if r.name != RANDOM]  # far below: it would flatten the rest
    for r, style in zip(shown, ("-", "--", ":"), strict=True):
        cumulative = np.concatenate([[0.0], np.cumsum(r.per_decision)])
        axes.plot(x, (cumulative[window:] - cumulative[:-window]) / window, style, label=r.name)
    axes.xaxis.set_major_formatter(lambda value, _: f"{value / 1000:,.0f}k")
    axes.set_xlabel("decisions")
    axes.set_ylabel(f"value per decision (rolling mean over {window:,})")
    axes.set_title(f"Learning curve on the {result.response_model} response model")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _holdout_report(log_dir: Path, experiment: str, html_path: Path | None) -> None:
    from datetime import timedelta

    from decision_engine.experiments.report import load_reports
    from decision_engine.experiments.report_terminal import print_report

    reports = load_reports(
        log_dir / "decisions.parquet",
        log_dir / "outcomes.parquet",
        experiment=experiment,
        window=timedelta(days=1),
        window_label="1d",
    )
    for report in reports:
        print_report(report, console)
    console.print(
        f"logs in {log_dir}/; `decision-engine report {log_dir}/decisions.parquet "
        f"{log_dir}/outcomes.parquet --html report.html` renders them again"
    )
    if html_path is not None:
        from decision_engine.experiments.report_html import render_html

        html_path.write_text(render_html(reports), encoding="utf-8")
        console.print(f"wrote {html_path}")
