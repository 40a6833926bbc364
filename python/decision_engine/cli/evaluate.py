"""`decision-engine evaluate`: off-policy estimates of policies' value on logged decisions.

Each policy (a catalog placement's ``policy:`` or one given with ``--policy``) runs as a
`decision_engine.Bandit` over the log in time order, scored on each chunk before it learns
from it (`decision_engine.evaluation.progressive`), next to the logging policy's own value.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from decision_engine.catalog import LoadedCatalog, load_catalog
from decision_engine.decision_log.reader import load_decision_log
from decision_engine.errors import CatalogError, InvalidInputError
from decision_engine.evaluation import (
    ESTIMATORS,
    LoggedBandit,
    Options,
    PolicyValueEstimate,
    evaluate_policy,
    on_policy,
    progressive,
)
from decision_engine.evaluation.obd import load_obd

console = Console()
errors = Console(stderr=True)
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PolicyResult:
    source: str  # "catalog" or "--policy"
    policy: dict[str, Any]
    estimates: dict[str, PolicyValueEstimate]
    note: str | None = None  # how the evaluated policy differs from the one given


def _parse_policies(texts: Sequence[str]) -> list[dict[str, Any]]:
    policies = []
    for text in texts:
        try:
            policy = json.loads(text)
        except json.JSONDecodeError as exc:
            raise click.BadParameter(f"not JSON: {exc}", param_hint="--policy") from exc
        if not isinstance(policy, dict) or not isinstance(policy.get("type"), str):
            raise click.BadParameter(
                'expected an object with a "type", e.g. {"type": "lin_ucb"}', param_hint="--policy"
            )
        policies.append(policy)
    return policies


def _logs(catalog: LoadedCatalog, log: Path, placement: str | None) -> dict[str, LoggedBandit]:
    """The logged data of each placement to evaluate (one entry, "obd", for an OBD CSV)."""
    if log.is_file():
        return {placement or "obd": load_obd(log)}
    decisions, outcomes = log / "decisions.parquet", log / "outcomes.parquet"
    if not (decisions.exists() and outcomes.exists()):
        raise InvalidInputError(f"{log}: expected decisions.parquet and outcomes.parquet, or an OBD CSV file")
    from decision_engine.decision_log.reader import placements

    logged = placements(decisions)
    wanted = [placement] if placement else [p.id for p in catalog.model.placements if p.id in logged]
    if not wanted:
        raise InvalidInputError(f"{log}: no placement of the catalog in the log (logged: {logged})")
    offers = {
        p.id: [o.id for o in catalog.model.offers if p.id in o.placements] for p in catalog.model.placements
    }
    return {p: load_decision_log(decisions, outcomes, placement=p, offers=offers.get(p)) for p in wanted}


def _for_bandit(
    policy: Mapping[str, Any], catalog: LoadedCatalog, data: LoggedBandit
) -> tuple[dict[str, Any], LoggedBandit, str | None]:
    """The policy without ``features``, the log restricted to those feature columns, and a note
    when it cannot be: the logged vectors are not one column per catalog feature (e.g. OBD), so
    the policy reads every logged column instead."""
    policy = dict(policy)
    names = policy.pop("features", None)
    if not names:
        return policy, data, None
    names_in_order = [f.name for f in catalog.model.features]
    if data.X is None or data.X.shape[1] != len(names_in_order):
        if data.X is None:
            reason, reads = "the log has no feature vectors", "no features"
        else:
            width, n = data.X.shape[1], len(names_in_order)
            reason = f"the logged vectors have {width} columns, not one per catalog feature ({n})"
            reads = f"all {width} logged columns instead"
        note = f"{policy['type']}: features {names} ignored: {reason}; the policy reads {reads}"
        _log.warning("%s", note)
        return policy, data, note
    columns = [names_in_order.index(n) for n in names]
    return policy, replace(data, X=data.X[:, columns]), None


def _evaluate(
    source: str,
    policy: dict[str, Any],
    catalog: LoadedCatalog,
    data: LoggedBandit,
    seed: int,
    chunk_size: int,
) -> PolicyResult:
    """``seed`` seeds the bandit, the replay estimator's sampling and DR's cross-fitting folds."""
    bandit_policy, data, note = _for_bandit(policy, catalog, data)
    n_features = 0 if data.X is None else data.X.shape[1]
    estimates = evaluate_policy(
        lambda: progressive.engine_bandit(bandit_policy, data.n_actions, n_features, seed),
        data,
        ESTIMATORS,
        chunk_size=chunk_size,
        options=Options(seed=seed),
    )
    return PolicyResult(source, policy, estimates, note)


def _own_policies(catalog: LoadedCatalog, placement: str) -> list[dict[str, Any]]:
    """The placement's policy; for a log of no catalog placement (OBD) every distinct one."""
    ids = [p.id for p in catalog.model.placements]
    chosen = [p for p in catalog.model.placements if p.id == placement or placement not in ids]
    policies: list[dict[str, Any]] = []
    for p in chosen:
        if (policy := p.policy.model_dump(exclude_none=True)) not in policies:
            policies.append(policy)
    return policies


def _describe(policy: Mapping[str, Any]) -> str:
    """`lin_ucb(alpha=0.5, ridge=1)`: the type and its parameters, defaults of 1 for
    discount left out."""
    shown = {k: v for k, v in policy.items() if k != "type" and not (k == "discount" and v == 1.0)}
    parameters = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items())
    return f"{policy['type']}({parameters})"


def _interval(e: PolicyValueEstimate) -> str:
    return f"[{e.lower:.4f}, {e.upper:.4f}]"


def _print(results: dict[str, tuple[PolicyValueEstimate, list[PolicyResult]]]) -> None:
    for placement, (logged, policies) in results.items():
        notes = [f"note: {result.note}" for result in policies if result.note]
        table = Table(
            title=f"{placement}: {logged.n:,} logged rows, logging policy {logged.value:.4f} "
            f"{_interval(logged)}",
            caption=Text("\n".join(notes), style="yellow") if notes else None,
        )
        for column in ("policy", "estimator", "value", "95% interval", "n", "ESS"):
            table.add_column(column, justify="left" if column in ("policy", "estimator") else "right")
        table.add_row(
            "logging policy", "on-policy", f"{logged.value:.4f}", _interval(logged), f"{logged.n:,}", ""
        )
        for result in policies:
            label = f"{result.source}: {_describe(result.policy)}"
            for name, e in result.estimates.items():
                ess = "" if e.ess is None else f"{e.ess:,.0f}"
                table.add_row(label, name, f"{e.value:.4f}", _interval(e), f"{e.n:,}", ess)
                label = ""
        console.print(table)


@click.command("evaluate")
@click.option("--catalog", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True)
@click.option(
    "--log",
    type=click.Path(exists=True, path_type=Path),
    required=True,
    help="Folder with decisions.parquet and outcomes.parquet, or an Open Bandit Dataset CSV.",
)
@click.option("--placement", default=None, help="Only this placement (default: every one in the log).")
@click.option(
    "--policy", "policies", multiple=True, help='Another policy as JSON, e.g. \'{"type": "lin_ucb"}\'.'
)
@click.option("--format", "output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--chunk-size", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--seed", default=0, show_default=True)
def evaluate(
    catalog: Path,
    log: Path,
    placement: str | None,
    policies: tuple[str, ...],
    output: str,
    chunk_size: int,
    seed: int,
) -> None:
    """Estimate each placement policy's value on a decision log (replay, IPS, SNIPS, DR)."""
    extra = _parse_policies(policies)
    try:
        loaded = load_catalog(catalog)
        results: dict[str, tuple[PolicyValueEstimate, list[PolicyResult]]] = {}
        for pid, data in _logs(loaded, log, placement).items():
            own = _own_policies(loaded, pid)
            candidates = [("catalog", p) for p in own] + [("--policy", p) for p in extra]
            evaluated = [_evaluate(s, p, loaded, data, seed, chunk_size) for s, p in candidates]
            results[pid] = (on_policy(data), evaluated)
    except (CatalogError, InvalidInputError, ValueError, ImportError) as exc:
        errors.print(f"error: {exc}", style="red", markup=False, highlight=False, soft_wrap=True)
        sys.exit(1)
    if output == "json":
        document = {
            "format": "decision-engine-ope/1",
            "placements": [
                {
                    "placement": pid,
                    "logging": logged.to_dict(),
                    "policies": [
                        {
                            "source": r.source,
                            "policy": r.policy,
                            "estimates": {k: e.to_dict() for k, e in r.estimates.items()},
                            "note": r.note,
                        }
                        for r in evaluated
                    ],
                }
                for pid, (logged, evaluated) in results.items()
            ],
        }
        click.echo(json.dumps(document, indent=2))
        return
    if not console.is_terminal:
        console.width = max(console.width, 150)
    _print(results)
