"""Catalog operations behind the server: reload from file, validate, apply or dry-run text.

Replacements are serialised by one lock and go through `Engine.apply_catalog`, which swaps
the compiled catalog atomically and raises (changing nothing) on an invalid one.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from decision_engine.catalog import CatalogIssue, LoadedCatalog, load_catalog, parse_catalog
from decision_engine.engine import Engine
from decision_engine.errors import CatalogError, InvalidInputError

__all__ = ["ApplyReport", "CatalogManager", "issues_of"]

log = logging.getLogger("decision_engine.server")


def issues_of(exc: CatalogError) -> list[CatalogIssue]:
    issues: list[CatalogIssue] | None = getattr(exc, "issues", None)
    return list(issues) if issues else [CatalogIssue("<catalog>", None, None, "catalog", str(exc))]


@dataclass(frozen=True)
class ApplyReport:
    applied: bool
    catalog: LoadedCatalog
    sample_rows: int
    # (offer id, profiles eligible before, after); None where the offer is not in that catalog
    eligibility: list[tuple[str, int | None, int | None]]
    added: list[str]
    removed: list[str]


class CatalogManager:
    """Replaces the catalog of one engine; `on_reload(ok)` is told of every attempt."""

    def __init__(self, engine: Engine, on_reload: Callable[[bool], None] = lambda ok: None) -> None:
        self.engine = engine
        self._on_reload = on_reload
        self._lock = threading.Lock()
        self.placement_ids = frozenset(engine.placements)

    def _swap(self, loaded: LoadedCatalog) -> None:
        self.engine.apply_catalog(loaded)
        self.placement_ids = frozenset(self.engine.placements)

    def reload(self, path: str | os.PathLike[str]) -> bool:
        """Reloads the catalog file; an invalid one is logged and the old catalog stays."""
        with self._lock:
            try:
                self._swap(load_catalog(path))
            except CatalogError as exc:
                self._on_reload(False)
                log.error(
                    "catalog reload refused, keeping the catalog in force: %s",
                    exc,
                    extra={"path": os.fspath(path), "issues": [str(i) for i in issues_of(exc)]},
                )
                return False
        self._on_reload(True)
        log.info("catalog reloaded", extra={"path": os.fspath(path), "offers": len(self.engine.offer_ids)})
        return True

    def validate(self, text: str, name: str) -> tuple[list[CatalogIssue], LoadedCatalog | None]:
        """Issues of catalog `text` (parsed and compiled, not applied); the catalog when valid."""
        try:
            loaded = parse_catalog(text, name)
            Engine(loaded)  # rules are type-checked and compiled by the core
        except CatalogError as exc:
            return issues_of(exc), None
        return [], loaded

    def apply(
        self, text: str, name: str, *, dry_run: bool, sample: npt.NDArray[np.float32] | None
    ) -> ApplyReport:
        """Applies catalog `text` (unless `dry_run`); with a `sample` of profiles laid out for the
        catalog in force, counts how many each offer's rule admits before and after."""
        try:
            loaded = parse_catalog(text, name)
            candidate = Engine(loaded)
        except CatalogError:
            if not dry_run:
                self._on_reload(False)
            raise
        with self._lock:
            old_ids = list(self.engine.offer_ids)
            eligibility = [] if sample is None else self._eligibility(candidate, sample)
            if not dry_run:
                self._swap(loaded)
        if not dry_run:
            self._on_reload(True)
            log.info("catalog applied", extra={"source": name, "offers": len(candidate.offer_ids)})
        new_ids, old_set = candidate.offer_ids, set(old_ids)
        new_set = set(new_ids)
        return ApplyReport(
            applied=not dry_run,
            catalog=loaded,
            sample_rows=0 if sample is None else len(sample),
            eligibility=eligibility,
            added=[o for o in new_ids if o not in old_set],
            removed=[o for o in old_ids if o not in new_set],
        )

    def _eligibility(
        self, candidate: Engine, sample: npt.NDArray[np.float32]
    ) -> list[tuple[str, int | None, int | None]]:
        old_index = {name: i for i, name in enumerate(self.engine.feature_names)}
        missing = [name for name in candidate.feature_names if name not in old_index]
        if missing:
            raise InvalidInputError(
                "the sample is laid out for the catalog in force, which lacks the new catalog's "
                f"features {', '.join(missing)}; dry-run it without a sample"
            )
        columns = [old_index[name] for name in candidate.feature_names]
        before = self.engine.evaluate_rules(sample).sum(axis=0)
        after = candidate.evaluate_rules(sample[:, columns]).sum(axis=0)
        old = dict(zip(self.engine.offer_ids, before.tolist(), strict=True))
        new = dict(zip(candidate.offer_ids, after.tolist(), strict=True))
        ids = [*new, *(o for o in old if o not in new)]
        return [(o, old.get(o), new.get(o)) for o in ids]
