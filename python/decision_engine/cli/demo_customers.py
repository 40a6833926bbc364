"""The demo's customer plane: the simulated customers are loaded into the engine's profile store
once, the way a customer data platform's nightly load would be (`Engine.upsert_profiles`,
columnar), their consents and the visits of the week before arrive as events, and every web
or app arrival is a ``visit`` event tracked as simulated time passes. The channels then decide
by id: the engine reads the stored profile and computes ``visits_7d`` and ``days_since_visit``
from the events at decision time.

The population's own ``visits_7d`` and ``days_since_visit`` columns (`seeds.population`) are
replayed as past visits (one at ``days_since_visit`` days ago, the rest between then and the
week's start), so the computed attributes begin where the population says they are.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np

from decision_engine._core import WriteReport
from decision_engine.catalog import LoadedCatalog
from decision_engine.cli.demo_baselines import Simulation
from decision_engine.engine import Engine

DAY = 86_400.0
VISIT = "visit"  # the event type of a web or app visit
VISIT_CHANNELS = frozenset({"web", "app"})  # arrivals there are visits; email and push are sends
# the population's columns replayed as past visits (absent from a catalog without them)
WEEK_VISITS, DAYS_SINCE_VISIT = "visits_7d", "days_since_visit"


def customer_id(customer: int) -> str:
    return f"c{customer}"


def without_caps(catalog: LoadedCatalog) -> LoadedCatalog:
    """The catalog without contact caps and cooldowns (exclusion groups and purchase
    suppression stay). Deciding by id applies the contact policy over the simulated weeks,
    and the policies the learned one is compared with meet no caps; the holdout run keeps
    them (its caption says so)."""
    policy = catalog.model.contact_policy
    if policy is None:
        return catalog
    relaxed = policy.model_copy(
        update={"caps": (), "cooldown_after_conversion": None, "cooldown_after_dismissal": None}
    )
    model = catalog.model.model_copy(update={"contact_policy": relaxed})
    return dataclasses.replace(catalog, model=model)


@dataclass
class CustomerPlane:
    """What the demo wrote to the engine's profile store, and what it decided by id."""

    engine: Engine
    tracks_visits: bool  # some computed feature reads visit events
    profiles: int = 0  # profiles loaded
    events: int = 0  # events applied: consents, past visits, visits as customers arrived
    decided_by_id: int = 0
    load_seconds: float = 0.0  # the columnar upsert of every profile
    track_seconds: float = 0.0  # tracking events, the load's and the arrivals'

    @classmethod
    def load(cls, engine: Engine, sim: Simulation, start: float, seed: int) -> CustomerPlane:
        """Upserts every simulated customer's stored features at `start`, then tracks their
        consents and past visits."""
        features = engine.catalog.model.features
        plane = cls(engine, any(f.computed is not None and f.computed.event == VISIT for f in features))
        ids = [customer_id(c) for c in range(len(sim.profiles))]
        columns = [engine.feature_names.index(name) for name in engine.stored_features]
        rows = np.ascontiguousarray(sim.profiles[:, columns], dtype=np.float64)
        started = time.perf_counter()
        loaded = _written(engine.upsert_profiles(ids=ids, features=rows, now=start), "profile")
        plane.load_seconds = time.perf_counter() - started
        plane.profiles = loaded
        consents, bare = _consent_events(engine, sim, start)
        if bare:  # channels no event of the catalog grants: consents written with the profile
            _written(engine.upsert_profiles(bare, now=start), "consent")
        past = (
            _past_visits(engine, sim, start, np.random.default_rng([seed, 0x7151]))
            if plane.tracks_visits
            else []
        )
        plane._track(consents + past)
        return plane

    def visit(self, customer: int, channel: str, now: float, arrival: int) -> None:
        """An arrival at a web or app placement is a visit: tracked before the decision."""
        if self.tracks_visits and channel in VISIT_CHANNELS:
            event = {
                "id": f"arrival-{arrival}",
                "profile_id": customer_id(customer),
                "type": VISIT,
                "time": now,
            }
            self._track([event])

    def _track(self, events: list[dict[str, object]]) -> None:
        if events:
            started = time.perf_counter()
            self.events += _written(self.engine.track(events), "event")
            self.track_seconds += time.perf_counter() - started

    def summary(self) -> str:
        return (
            f"profiles loaded {self.profiles:,} (one columnar upsert, {self.load_seconds * 1e3:,.0f} ms) | "
            f"events applied {self.events:,} (consents, past visits, visits as customers arrived; "
            f"{self.track_seconds:.2f} s) | decided by id {self.decided_by_id:,}"
        )


def _written(report: WriteReport, what: str) -> int:
    """The rows accepted; the demo writes only good rows, so any rejection is a bug here."""
    if report.refused or report.rejected:
        index, row_id, message = report.rejected[0]
        raise RuntimeError(
            f"{report.refused} {what} rows rejected, the first ({index}, {row_id!r}): {message}"
        )
    return report.accepted


def _consent_events(
    engine: Engine, sim: Simulation, start: float
) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """Every customer's consents: events of the catalog's grant types, a day before `start`;
    channels no event grants go in upsert rows instead."""
    grants = {e.grant: e.type for e in engine.catalog.model.events or () if e.grant is not None}
    events: list[dict[str, object]] = []
    bare: dict[int, list[str]] = {}
    for channel in engine.consent_channels:
        given = np.flatnonzero(sim.consents[:, engine.channels.index(channel)])
        if channel in grants:
            kind = grants[channel]
            events += [
                {"id": f"{kind}-{c}", "profile_id": customer_id(c), "type": kind, "time": start - DAY}
                for c in given.tolist()
            ]
        else:
            for c in given.tolist():
                bare.setdefault(c, []).append(channel)
    rows: list[dict[str, object]] = [{"id": customer_id(c), "consents": chs} for c, chs in bare.items()]
    return events, rows


def _past_visits(
    engine: Engine, sim: Simulation, start: float, rng: np.random.Generator
) -> list[dict[str, object]]:
    """The visits behind the population's `visits_7d` and `days_since_visit` columns."""
    names = engine.feature_names
    if WEEK_VISITS not in names or DAYS_SINCE_VISIT not in names:
        return []
    week = sim.profiles[:, names.index(WEEK_VISITS)].astype(np.int64)
    latest = sim.profiles[:, names.index(DAYS_SINCE_VISIT)].astype(np.float64)
    default = next(f.default for f in engine.catalog.model.features if f.name == DAYS_SINCE_VISIT)
    events: list[dict[str, object]] = []
    for c in np.flatnonzero(latest < (np.inf if default is None else float(default))).tolist():
        days = [float(latest[c])]
        if week[c] > 1:  # the others of the week, between the latest and 7 days ago
            days += rng.uniform(latest[c], 7.0, int(week[c]) - 1).tolist()
        events += [
            {"id": f"past-{c}-{i}", "profile_id": customer_id(c), "type": VISIT, "time": start - d * DAY}
            for i, d in enumerate(days)
        ]
    return events
