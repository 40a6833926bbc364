"""What the shared store needs to know of a catalog: each placement's offers, each offer's
budget, and the core's rules over them (how far back history matters, how much of a budget
pacing allows by now, which offers fail-closed caps keep out while Redis is unreachable).

The rules are the core's (rust/core/src/contact/): this view only asks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from decision_engine.catalog.schema import Budget

if TYPE_CHECKING:
    from decision_engine import _core
    from decision_engine.engine import Engine

__all__ = ["CatalogView"]


@dataclass(frozen=True)
class CatalogView:
    core: _core.Engine
    horizon: float  # seconds of contact history that caps and cooldowns read
    channel_of: dict[str, str]  # placement -> channel
    offers_of: dict[str, tuple[str, ...]]  # placement -> offer ids
    group_of: dict[str, str | None]  # offer -> exclusion group
    budgets: dict[str, Budget]  # offer -> its volume budget

    @classmethod
    def of(cls, engine: Engine) -> CatalogView:
        catalog = engine.catalog.model
        return cls(
            core=engine._core,
            horizon=engine._core.history_horizon,
            channel_of={pid: channel for pid, (channel, _, _) in engine.placements.items()},
            offers_of={pid: tuple(offers) for pid, (_, _, offers) in engine.placements.items()},
            group_of={o.id: o.group for o in catalog.offers},
            budgets={o.id: o.budget for o in catalog.offers if o.budget is not None},
        )

    def budgeted(self, placements: list[str]) -> list[str]:
        """Offers of these placements that have a volume budget, in catalog order, once."""
        seen = dict.fromkeys(o for p in placements for o in self.offers_of[p] if o in self.budgets)
        return list(seen)

    def allowed(self, offer: str, now: float) -> int:
        """Units the offer's budget may have used by `now` in its window (pacing included)."""
        usage = self.core.budget_usage(offer, now)
        assert usage is not None, f"offer '{offer}' has a budget"
        return usage[1]

    def closed_offers(self, placements: list[str]) -> set[str]:
        """Offers that fail-closed caps keep out while the shared store is unavailable."""
        return set(self.core.closed_without_store(placements))
