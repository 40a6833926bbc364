"""The demo's simulated customers and the policies the learned one is compared with.

`Simulation` holds what only the simulation knows: every customer's profile, consents and true
click probability of every offer (`seeds.generator.ResponseModel`), and which offers each
customer may see. `fill` is the slate every comparison policy shows: the eligible offers in the
policy's order, at most one per exclusion group (the catalog's ``max_per_group: 1``), as many
as the placement has slots, none on an outbound channel the customer has not consented to.
The policies differ only in their order:

- **oracle**: the customer's own true expected value of each offer, ``P(click) x value x
  weight``, the quantity the engine's arbitration maximises (the most any policy can earn);
- **best fixed ranking**: one order of the placement's offers for everybody, built greedily
  with the true response: each next offer is the one that adds the most expected value over
  the customers arriving there, given the offers ranked before it;
- **uniform random**: a fresh random order for every decision.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from decision_engine.cli.seeds import seeds_module
from decision_engine.engine import Engine

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

# Share of customers who consented to each channel; web and app need none in the demo catalog.
CONSENT_RATES = {"web": 1.0, "app": 1.0, "email": 0.6, "push": 0.4}


@dataclass
class Simulation:
    """Everything the response model knows: profiles, consents, true click probabilities."""

    engine: Engine
    profiles: npt.NDArray[np.float32]
    consents: Bools
    click_p: F64  # (customers, offers)
    eligible: Bools  # (customers, offers): rules, active window, the offer's consent
    values: F64  # (offers,) value x weight
    groups: I64  # (offers,) exclusion group code; offers without a group get one of their own

    @classmethod
    def build(
        cls, engine: Engine, catalog: Path, customers: int, seed: int, response_model: str
    ) -> Simulation:
        generator = seeds_module("generator")
        ResponseModel, generate_profiles = generator.ResponseModel, generator.generate_profiles
        profiles = generate_profiles(customers, seed=seed, catalog_path=catalog)
        rng = np.random.default_rng(seed)
        consents = np.column_stack(
            [rng.random(customers) < CONSENT_RATES.get(c, 1.0) for c in engine.channels]
        )
        model = ResponseModel(catalog, seed=seed, kind=response_model)
        click_p = model.click_probabilities(profiles)
        offers = engine.catalog.model.offers
        now = time.time()
        active = np.array([_active(o.active_from, o.active_to, now) for o in offers])
        needs = [engine.channels.index(o.consent) if o.consent else -1 for o in offers]
        consented = np.column_stack([consents[:, c] if c >= 0 else np.ones(customers, bool) for c in needs])
        eligible = engine.evaluate_rules(profiles) & active & consented
        values = np.array([o.value * o.weight for o in offers])
        names = [o.group or f"\0{o.id}" for o in offers]
        groups = np.array([sorted(set(names)).index(g) for g in names], dtype=np.int64)
        return cls(engine, profiles, consents, click_p, eligible, values, groups)

    def members(self, placement: str) -> I64:
        """Indices of the placement's offers (catalog order)."""
        index = {o: i for i, o in enumerate(self.engine.offer_ids)}
        return np.array([index[o] for o in self.engine.placements[placement][2]], dtype=np.int64)

    def allowed(self, placement: str, customers: I64) -> Bools:
        """(len(customers), placement offers): what each arriving customer may be shown there."""
        channel = self.engine.placements[placement][0]
        allowed = self.eligible[np.ix_(customers, self.members(placement))]
        if channel in self.engine.consent_channels:
            allowed = allowed & self.consents[customers, self.engine.channels.index(channel)][:, None]
        return allowed


def _active(start: datetime | None, end: datetime | None, now: float) -> bool:
    return (start is None or start.timestamp() <= now) and (end is None or now < end.timestamp())


def fill(keys: F64, allowed: Bools, groups: I64, slots: int) -> Bools:
    """Which offers each row shows: the allowed ones by decreasing key, one per group, at most
    ``slots``. ``keys`` and ``allowed`` are (rows, offers); ``groups`` (offers,)."""
    rows = np.arange(keys.shape[0])
    order = np.argsort(-np.where(allowed, keys, -np.inf), axis=1, kind="stable")
    shown = np.zeros_like(allowed)
    used = np.zeros((keys.shape[0], int(groups.max(initial=0)) + 1), dtype=bool)
    count = np.zeros(keys.shape[0], dtype=np.int64)
    for j in range(keys.shape[1]):
        offer = order[:, j]
        group = groups[offer]
        take = allowed[rows, offer] & ~used[rows, group] & (count < slots)
        shown[rows[take], offer[take]] = True
        used[rows[take], group[take]] = True
        count += take
    return shown


def best_fixed_keys(expected: F64, allowed: Bools, groups: I64, slots: int) -> F64:
    """Keys of the greedy best fixed ranking (module docstring) over these rows' expected
    values (rows, offers): the first-ranked offer gets the highest key."""
    n_offers = expected.shape[1]
    keys = np.zeros(n_offers)
    ranked = np.zeros(n_offers, dtype=bool)
    for position in range(n_offers):
        best, best_total = -1, -1.0
        for candidate in np.flatnonzero(~ranked):
            trial, members = keys.copy(), ranked.copy()
            trial[candidate], members[candidate] = n_offers - position, True
            shown = fill(np.broadcast_to(trial, expected.shape), allowed & members, groups, slots)
            total = float((shown * expected).sum())
            if total > best_total:
                best, best_total = int(candidate), total
        keys[best], ranked[best] = n_offers - position, True
    return keys
