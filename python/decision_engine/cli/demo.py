"""`decision-engine demo`: customers arrive at placements, the engine decides, a known response
model clicks or not, outcomes flow back, and the learned policy is compared with baselines."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click
import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from decision_engine.catalog import LoadedCatalog, load_catalog, parse_catalog
from decision_engine.engine import Engine
from decision_engine.experiments.assignment import Experiment

if TYPE_CHECKING:
    from decision_engine.decision_log import DecisionLog

F64 = npt.NDArray[np.float64]

# Share of customers who consented to each channel; web and app need none in the demo catalog.
CONSENT_RATES = {"web": 1.0, "app": 1.0, "email": 0.6, "push": 0.4}
# With a holdout the simulated arrivals spread over this many days, so contact caps see time pass.
SIMULATED_DAYS = 28
HOLDOUT_ID = "universal_holdout"

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
    name: str
    click_rate: float
    value_per_decision: float


@dataclass(frozen=True)
class DemoResult:
    decisions: int
    results: list[SimulatedPolicyResult]
    decide_seconds: float
    batch_decisions_per_second: float


@dataclass
class Simulation:
    """Everything the response model knows: profiles, consents, true click probabilities."""

    engine: Engine
    profiles: npt.NDArray[np.float32]
    consents: npt.NDArray[np.bool_]
    click_p: F64
    eligible: npt.NDArray[np.bool_]
    values: F64

    @classmethod
    def build(cls, engine: Engine, catalog: Path, customers: int, seed: int) -> Simulation:
        from seeds.generator import ResponseModel, generate_profiles

        profiles = generate_profiles(customers, seed=seed, catalog_path=catalog)
        rng = np.random.default_rng(seed)
        consents = np.column_stack(
            [rng.random(customers) < CONSENT_RATES.get(c, 1.0) for c in engine.channels]
        )
        click_p = ResponseModel(catalog, seed=seed).click_probabilities(profiles)
        offers = engine.catalog.model.offers
        now = time.time()
        active = np.array([_active(o.active_from, o.active_to, now) for o in offers])
        needs = [engine.channels.index(o.consent) if o.consent else -1 for o in offers]
        consented = np.column_stack([consents[:, c] if c >= 0 else np.ones(customers, bool) for c in needs])
        eligible = engine.evaluate_rules(profiles) & active & consented
        values = np.array([o.value * o.weight for o in offers])
        return cls(engine, profiles, consents, click_p, eligible, values)


def _active(start: datetime | None, end: datetime | None, now: float) -> bool:
    return (start is None or start.timestamp() <= now) and (end is None or now < end.timestamp())


def run_demo(
    catalog: Path,
    decisions: int,
    seed: int,
    customers: int = 20_000,
    progress: Callable[[int, float], None] | None = None,
    log: DecisionLog | None = None,
    holdout: float = 0.0,
) -> DemoResult:
    """Simulates `decisions` arrivals; returns click rate and value per decision by policy.

    With a `holdout` share, customers are identified (so the contact policy applies over
    simulated weeks), a universal holdout gets the non-personalized default, and `log`
    receives every decision and outcome for the experiment report.
    """
    engine = Engine(with_holdout(catalog, holdout)[0] if holdout > 0 else catalog, seed=seed, clock="simulated")
    sim = Simulation.build(engine, catalog, customers, seed)
    rng = np.random.default_rng(seed + 1)
    placements = engine.placements
    placement_ids = list(placements)
    offer_index = {o: i for i, o in enumerate(engine.offer_ids)}
    channels = np.array(engine.channels)

    who = rng.integers(0, customers, decisions)
    where = rng.integers(0, len(placement_ids), decisions)
    learned_clicks = learned_value = shown = 0.0
    engine_seconds = 0.0
    start_time, step = time.time(), SIMULATED_DAYS * 86_400 / max(decisions, 1)
    for t in range(decisions):
        customer, placement = int(who[t]), placement_ids[where[t]]
        profile_id = f"c{customer}" if holdout > 0 else None
        now = start_time + t * step if holdout > 0 else None
        consents = channels[sim.consents[customer]].tolist()
        started = time.perf_counter()
        decision = engine.decide(
            placement, sim.profiles[customer], consents=consents, profile_id=profile_id, now=now
        )
        engine_seconds += time.perf_counter() - started
        if log is not None and profile_id is not None and now is not None:
            log.decision(decision, profile_id, now, features=sim.profiles[customer])
        for chosen in decision.offers:
            o = offer_index[chosen.offer_id]
            clicked = rng.random() < sim.click_p[customer, o]
            learned_clicks += clicked
            learned_value += clicked * sim.values[o]
            shown += 1
            started = time.perf_counter()
            engine.report_outcome(decision.decision_id, float(clicked), chosen.offer_id)
            engine_seconds += time.perf_counter() - started
            if clicked and log is not None and now is not None:
                log.outcome(decision.decision_id, chosen.offer_id, now + 3600.0, float(sim.values[o]))
        if progress is not None and (t + 1) % 1000 == 0:
            progress(1000, learned_clicks / max(shown, 1))

    baselines = _baselines(sim, placements, placement_ids, who, where, rng)
    name = "learned (Thompson)" if holdout == 0 else f"engine ({holdout:.0%} holdout)"
    learned = SimulatedPolicyResult(name, learned_clicks / max(shown, 1), learned_value / decisions)
    started = time.perf_counter()
    engine.decide_batch(placement_ids[0], sim.profiles, consents=sim.consents)
    batch_rate = customers / (time.perf_counter() - started)
    return DemoResult(decisions, [learned, *baselines], engine_seconds, batch_rate)


def _baselines(
    sim: Simulation,
    placements: dict[str, tuple[str, int, list[str]]],
    placement_ids: list[str],
    who: npt.NDArray[np.int64],
    where: npt.NDArray[np.int64],
    rng: np.random.Generator,
) -> list[SimulatedPolicyResult]:
    """Uniform random among eligible offers, and the best fixed ranking per placement (by true
    mean value per impression, the objective the engine's arbitration optimises)."""
    offer_index = {o: i for i, o in enumerate(sim.engine.offer_ids)}
    mean_value = (sim.click_p * sim.values).mean(axis=0)
    totals = {"uniform random": [0.0, 0.0, 0], "best fixed offer": [0.0, 0.0, 0]}
    for p, pid in enumerate(placement_ids):
        _, slots, offer_ids = placements[pid]
        members = np.array([offer_index[o] for o in offer_ids])
        customers = who[where == p]
        elig = sim.eligible[np.ix_(customers, members)]
        p_click = sim.click_p[np.ix_(customers, members)]
        # Uniform: `slots` distinct eligible offers at random (random keys, ineligible last).
        keys = np.where(elig, rng.random(elig.shape), -1.0)
        fixed_keys = np.where(elig, mean_value[members], -1.0)
        for name, k in (("uniform random", keys), ("best fixed offer", fixed_keys)):
            top = np.argsort(-k, axis=1)[:, :slots]
            picked = np.take_along_axis(elig, top, 1)
            probs = np.take_along_axis(p_click, top, 1) * picked
            totals[name][0] += probs.sum()
            totals[name][1] += (probs * sim.values[members][top]).sum()
            totals[name][2] += picked.sum()
    decisions = len(who)
    return [SimulatedPolicyResult(n, c / max(s, 1), v / decisions) for n, (c, v, s) in totals.items()]


def _demo_catalog() -> Path:
    from seeds.generator import DEMO_CATALOG

    return DEMO_CATALOG


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
    holdout: float,
    log_dir: Path,
    html_path: Path | None,
) -> None:
    """Simulate customers with a known response model; compare the learned policy with baselines."""
    from contextlib import nullcontext

    catalog = catalog or _demo_catalog()
    console.print(f"catalog {catalog}, {decisions:,} decisions over {customers:,} customers, seed {seed}")
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    log_context = nullcontext(None)
    if holdout > 0:
        from decision_engine.decision_log import DecisionLog

        log_context = DecisionLog(log_dir, [with_holdout(catalog, holdout)[1]])  # type: ignore[assignment]
    with Progress(*columns, console=console) as bar, log_context as log:
        task = bar.add_task("deciding", total=decisions)

        def advance(steps: int, click_rate: float) -> None:
            bar.update(task, advance=steps, description=f"deciding (click rate {click_rate:.2%})")

        result = run_demo(catalog, decisions, seed, customers, progress=advance, log=log, holdout=holdout)

    table = Table(title="Policies on the same simulated customers")
    table.add_column("policy")
    table.add_column("click rate", justify="right")
    table.add_column("value / decision", justify="right")
    table.add_column("vs random (value)", justify="right")
    random_value = next(r.value_per_decision for r in result.results if r.name == "uniform random")
    for r in result.results:
        table.add_row(
            r.name,
            f"{r.click_rate:.2%}",
            f"{r.value_per_decision:.3f}",
            f"{r.value_per_decision / random_value:.2f}x",
        )
    console.print(table)
    per_second = result.decisions / result.decide_seconds
    console.print(
        f"engine time {result.decide_seconds:.2f} s for {result.decisions:,} decisions with outcomes "
        f"({per_second:,.0f} decide+report/s from Python, one thread); "
        f"decide_batch: {result.batch_decisions_per_second:,.0f} decisions/s"
    )
    if holdout > 0:
        _holdout_report(log_dir, HOLDOUT_ID, html_path)


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
