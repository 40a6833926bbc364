"""`decision-engine evaluate`: off-policy estimates of policies' value on logged decisions.

Each policy (a catalog placement's ``policy:`` or one given with ``--policy``) runs as a
`decision_engine.Bandit` over the log in time order, scored on each chunk before it learns
from it (`decision_engine.evaluation.progressive`), next to the logging policy's own value.
``--train-fraction`` trains it on the first part of the log first and evaluates on the rest;
``--bootstrap N`` gives percentile bootstrap intervals, ``--clip W`` clips importance weights.
Without ``--catalog`` the ``--policy`` specs alone are evaluated. Every estimate's warnings
(tiny effective sample size, an interval outside the possible values or of zero width) are
printed under the table and kept in the JSON; a policy naming features the log does not have
is an error.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from decision_engine.catalog import LoadedCatalog, load_catalog
from decision_engine.decision_log.reader import load_decision_log
from decision_engine.errors import CatalogError, InvalidInputError
from decision_engine.evaluation import (
    ESTIMATORS,
    BanditLike,
    LoggedBandit,
    Options,
    PolicyValueEstimate,
    evaluate_policy,
    evaluate_trained,
    on_policy,
    progressive,
)
from decision_engine.evaluation.obd import load_obd

console = Console()
errors = Console(stderr=True)


@dataclass(frozen=True)
class PolicyResult:
    source: str  # "catalog" or "--policy"
    policy: dict[str, Any]
    estimates: dict[str, PolicyValueEstimate]


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


def _logs(catalog: LoadedCatalog | None, log: Path, placement: str | None) -> dict[str, LoggedBandit]:
    """The logged data of each placement to evaluate (one entry, "obd", for an OBD CSV)."""
    if log.is_file():
        return {placement or "obd": load_obd(log)}
    decisions, outcomes = log / "decisions.parquet", log / "outcomes.parquet"
    if not (decisions.exists() and outcomes.exists()):
        raise InvalidInputError(f"{log}: expected decisions.parquet and outcomes.parquet, or an OBD CSV file")
    from decision_engine.decision_log.reader import placements

    logged = placements(decisions)
    if catalog is None:
        return {
            p: load_decision_log(decisions, outcomes, placement=p)
            for p in ([placement] if placement else logged)
        }
    wanted = [placement] if placement else [p.id for p in catalog.model.placements if p.id in logged]
    if not wanted:
        raise InvalidInputError(f"{log}: no placement of the catalog in the log (logged: {logged})")
    offers = {
        p.id: [o.id for o in catalog.model.offers if p.id in o.placements] for p in catalog.model.placements
    }
    names = tuple(f.name for f in catalog.model.features)
    found = {}
    for p in wanted:
        data = load_decision_log(decisions, outcomes, placement=p, offers=offers.get(p))
        if data.X is not None and data.X.shape[1] == len(names):
            data = replace(data, feature_names=names)  # the engine logs the catalog's vector
        found[p] = data
    return found


def _for_bandit(policy: Mapping[str, Any], data: LoggedBandit) -> tuple[dict[str, Any], LoggedBandit]:
    """The policy without ``features`` and the log restricted to those features' columns;
    `InvalidInputError` when the log does not have them (`LoggedBandit.select_features`)."""
    policy = dict(policy)
    names = policy.pop("features", None)
    if not names:
        return policy, data
    try:
        return policy, data.select_features(names)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{policy['type']} policy: {exc}") from exc


@dataclass(frozen=True)
class Settings:
    seed: int
    chunk_size: int
    train_fraction: float | None
    options: Options


def _evaluate(source: str, policy: dict[str, Any], data: LoggedBandit, settings: Settings) -> PolicyResult:
    """``seed`` seeds the bandit, the replay estimator's sampling and DR's cross-fitting folds."""
    bandit_policy, data = _for_bandit(policy, data)
    n_features = 0 if data.X is None else data.X.shape[1]

    def factory() -> BanditLike:
        return progressive.engine_bandit(bandit_policy, data.n_actions, n_features, settings.seed)

    if settings.train_fraction is None:
        estimates = evaluate_policy(
            factory, data, ESTIMATORS, chunk_size=settings.chunk_size, options=settings.options
        )
    else:
        estimates = evaluate_trained(
            factory,
            data,
            settings.train_fraction,
            ESTIMATORS,
            chunk_size=settings.chunk_size,
            options=settings.options,
        )
    return PolicyResult(source, policy, estimates)


def _test_part(data: LoggedBandit, train_fraction: float | None) -> LoggedBandit:
    """The rows the policies are evaluated on: all, or those after the training part."""
    if train_fraction is None:
        return data
    return data.split_in_time(train_fraction)[1]


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


def _print(results: dict[str, tuple[PolicyValueEstimate, list[PolicyResult]]], level: float) -> None:
    for placement, (logged, policies) in results.items():
        notes = [f"warning: logging policy: {w}" for w in logged.warnings]
        for result in policies:
            for name, e in result.estimates.items():
                notes += [
                    f"warning: {result.source}: {_describe(result.policy)} {name}: {w}" for w in e.warnings
                ]
        table = Table(
            title=f"{placement}: {logged.n:,} logged rows, logging policy {logged.value:.4f} "
            f"{_interval(logged)}",
        )
        for column in ("policy", "estimator", "value", f"{level:.0%} interval", "n", "ESS"):
            table.add_column(column, justify="left" if column in ("policy", "estimator") else "right")
        table.add_row(
            "logging policy", "on-policy", f"{logged.value:.4f}", _interval(logged), f"{logged.n:,}", ""
        )
        for result in policies:
            label = f"{result.source}: {_describe(result.policy)}"
            for name, e in result.estimates.items():
                ess = "" if e.ess is None else f"{e.ess:,.0f}"
                flag = " !" if e.warnings else ""
                table.add_row(label, name + flag, f"{e.value:.4f}", _interval(e), f"{e.n:,}", ess)
                label = ""
        console.print(table)
        if notes:
            console.print("\n".join(notes), style="yellow", markup=False, highlight=False, soft_wrap=True)


@click.command("evaluate")
@click.option(
    "--catalog",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Evaluate its placements' policies too, and name the logged feature columns by its features.",
)
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
@click.option(
    "--train-fraction",
    type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
    default=None,
    help="Train each policy on this first share of the log (in time order), evaluate on the rest.",
)
@click.option(
    "--bootstrap",
    "n_bootstrap",
    type=click.IntRange(min=10),
    default=None,
    help="Percentile bootstrap intervals from N resamples (default: normal / delta-method intervals).",
)
@click.option(
    "--clip",
    "max_weight",
    type=click.FloatRange(0.0, min_open=True),
    default=None,
    help="Clip importance weights at W (less variance, some bias).",
)
@click.option("--format", "output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--chunk-size", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--seed", default=0, show_default=True)
def evaluate(
    catalog: Path | None,
    log: Path,
    placement: str | None,
    policies: tuple[str, ...],
    train_fraction: float | None,
    n_bootstrap: int | None,
    max_weight: float | None,
    output: str,
    chunk_size: int,
    seed: int,
) -> None:
    """Estimate policies' value on a decision log (replay, IPS, SNIPS, DR): each catalog
    placement's policy and every --policy, next to the logging policy's own value."""
    extra = _parse_policies(policies)
    if catalog is None and not extra:
        raise click.UsageError("give --catalog, or at least one --policy to evaluate")
    options = Options(seed=seed, max_weight=max_weight)
    if n_bootstrap is not None:
        options = replace(options, interval="bootstrap", n_bootstrap=n_bootstrap)
    settings = Settings(seed, chunk_size, train_fraction, options)
    try:
        loaded = load_catalog(catalog) if catalog is not None else None
        results: dict[str, tuple[PolicyValueEstimate, list[PolicyResult]]] = {}
        for pid, data in _logs(loaded, log, placement).items():
            own = _own_policies(loaded, pid) if loaded is not None else []
            candidates = [("catalog", p) for p in own] + [("--policy", p) for p in extra]
            evaluated = [_evaluate(s, p, data, settings) for s, p in candidates]
            results[pid] = (on_policy(_test_part(data, train_fraction), options), evaluated)
    except (CatalogError, InvalidInputError, ValueError, ImportError) as exc:
        errors.print(f"error: {exc}", style="red", markup=False, highlight=False, soft_wrap=True)
        sys.exit(1)
    if output == "json":
        document = {
            "format": "decision-engine-ope/1",
            "settings": {
                "train_fraction": train_fraction,
                "interval": options.interval,
                "n_bootstrap": n_bootstrap,
                "max_weight": max_weight,
            },
            "placements": [
                {
                    "placement": pid,
                    "logging": logged.to_dict(),
                    "policies": [
                        {
                            "source": r.source,
                            "policy": r.policy,
                            "estimates": {k: e.to_dict() for k, e in r.estimates.items()},
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
    _print(results, options.level)
