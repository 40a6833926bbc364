"""What the shared store needs to know of a catalog: how far back history matters, each
offer's group and budget, each placement's channel and offers, and which caps fail closed.

These mirror the Rust core's contact policy (rust/core/src/contact/): a cap governs offers
by scope (offer: every offer; group: the group's offers; channel: the offers of placements
on that channel; all: everything), and even pacing lets a budget run 2% ahead of the clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from decision_engine.catalog.schema import Budget, Catalog

__all__ = ["CatalogView"]

PACING_BURST = 0.02  # rust/core/src/contact/budget.rs


def allowed(budget: Budget, now: float) -> int:
    """Units an offer's budget may have used by `now` in its window (budget.rs `allowed`)."""
    if budget.pacing == "none":
        return budget.max
    elapsed = now / budget.window - math.floor(now / budget.window)
    share = min(elapsed + PACING_BURST, 1.0)
    return min(max(math.ceil(budget.max * share), 1), budget.max)


@dataclass(frozen=True)
class CatalogView:
    horizon: float
    channel_of: dict[str, str]  # placement -> channel
    offers_of: dict[str, tuple[str, ...]]  # placement -> offer ids
    group_of: dict[str, str | None]  # offer -> exclusion group
    budgets: dict[str, Budget]  # offer -> its volume budget
    # fail-closed caps: ("offer" | "all", None), ("group", g) or ("channel", c)
    closed: tuple[tuple[str, str | None], ...]

    @classmethod
    def of(cls, catalog: Catalog) -> CatalogView:
        policy = catalog.contact_policy
        windows = [0.0]
        closed: list[tuple[str, str | None]] = []
        if policy is not None:
            windows += [float(cap.window) for cap in policy.caps]
            windows += [
                float(d) for d in (policy.cooldown_after_conversion, policy.cooldown_after_dismissal) if d
            ]
            for cap in policy.caps:
                if cap.when_store_unavailable == "closed":
                    closed.append((cap.scope, cap.group if cap.scope == "group" else cap.channel))
        offers_of: dict[str, list[str]] = {p.id: [] for p in catalog.placements}
        for offer in catalog.offers:
            for placement in offer.placements:
                offers_of[placement].append(offer.id)
        return cls(
            horizon=max(windows),
            channel_of={p.id: p.channel for p in catalog.placements},
            offers_of={p: tuple(ids) for p, ids in offers_of.items()},
            group_of={o.id: o.group for o in catalog.offers},
            budgets={o.id: o.budget for o in catalog.offers if o.budget is not None},
            closed=tuple(closed),
        )

    def budgeted(self, placements: list[str]) -> list[str]:
        """Offers of these placements that have a volume budget, in catalog order, once."""
        seen = dict.fromkeys(o for p in placements for o in self.offers_of[p] if o in self.budgets)
        return list(seen)

    def closed_offers(self, placements: list[str]) -> set[str]:
        """Offers that fail-closed caps keep out while the shared store is unavailable."""
        out: set[str] = set()
        for placement in placements:
            offers = self.offers_of[placement]
            for scope, name in self.closed:
                if scope in ("offer", "all") or (scope == "channel" and self.channel_of[placement] == name):
                    out.update(offers)
                elif scope == "group":
                    out.update(o for o in offers if self.group_of[o] == name)
        return out
