"""The Lua scripts of the Redis store and the arguments they take.

Every write is one script call, so it is atomic: a commit appends a request's contacts,
takes its budget units and records its pending decisions; an outcome marks the offer
reported, adds the cooldown event and forwards the outcome to the server that decided; a
release gives contacts and budget units back. A write is a `Write` (script, keys, args) so
that one made while Redis is away can wait in the replay buffer and run unchanged later.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Literal

import redis

from decision_engine._core import Decision
from decision_engine.store.catalog_view import CatalogView, allowed
from decision_engine.store.history import shown_member
from decision_engine.store.keys import Keys

__all__ = ["Scripts", "Write", "commit_write"]

ScriptName = Literal["commit", "outcome", "release"]


def _compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


@dataclass(frozen=True)
class Write:
    script: ScriptName
    keys: list[str]
    args: list[str | int | float]
    what: str  # for logs: "decision 123", "outcome of 123"


class Scripts:
    """The scripts, registered once on a client (EVALSHA, loaded again after a restart)."""

    def __init__(self, client: redis.Redis) -> None:
        lua = resources.files("decision_engine.store") / "lua"
        self.by_name = {
            name: client.register_script((lua / f"{name}.lua").read_text(encoding="utf-8"))
            for name in ("commit", "outcome", "release")
        }

    def run(self, write: Write, client: redis.Redis | None = None) -> list[str]:
        result = self.by_name[write.script](keys=write.keys, args=write.args, client=client)
        return [str(item) for item in result]


def commit_write(
    decisions: list[tuple[int, Decision]],
    *,
    profile_id: str | None,
    version: str,
    now: float,
    server: int,
    view: CatalogView,
    keys: Keys,
    pending_ttl: int,
) -> tuple[Write, list[str]]:
    """The commit of a request's decisions (global id, decision), and the budgeted offer of
    each budget key in order (to name the one a refusal points at).

    `version` is the profile history's version the decisions were made from ("" when the
    profile has no shared history to check, "force" to replay without checks).
    """
    profile = profile_id or ""
    history_ttl = int(view.horizon) + 60
    budget_keys: list[str] = []
    budget_offers: list[str] = []
    allowances: list[str] = []
    budget_ttls: list[str] = []
    events: list[tuple[str, str]] = []
    pendings: list[str] = []
    pending_keys: list[str] = []
    for global_id, decision in decisions:
        if not decision.offers:
            continue
        channel = view.channel_of[decision.placement]
        members: list[str] = []
        taken: list[str] = []
        conversions: dict[str, str] = {}
        ttl = 0
        for chosen in decision.offers:
            offer = chosen.offer_id
            group = view.group_of.get(offer)
            if profile_id is not None and view.horizon > 0:
                member = shown_member(offer, channel, now, group, global_id)
                members.append(member)
                events.append((repr(now), member))
            budget = view.budgets.get(offer)
            if budget is None:
                continue
            key = keys.budget(offer, budget.window, now)
            ttl = max(ttl, 2 * budget.window)
            if budget.counts == "conversions":
                conversions[offer] = key
                continue
            taken.append(key)
            budget_keys.append(key)
            budget_offers.append(offer)
            allowances.append(str(allowed(budget, now)))
            budget_ttls.append(str(2 * budget.window))
        fields = {
            "id": str(global_id),
            "owner": str(server),
            "placement": decision.placement,
            "channel": channel,
            "profile": profile,
            "time": repr(now),
            "offers": _compact(decision.offer_ids),
            "groups": _compact({o: view.group_of.get(o) for o in decision.offer_ids}),
            "members": _compact(members),
            "budgets": _compact(taken),
            "conversion_budgets": _compact(conversions),
            "budget_ttl": str(ttl or 1),
        }
        pending_keys.append(keys.pending(global_id))
        pendings.append(_compact([x for pair in fields.items() for x in pair]))
    history_keys = [keys.version(profile), keys.history(profile)]
    args: list[str | int | float] = [
        version,
        repr(now - view.horizon),
        history_ttl,
        pending_ttl,
        len(budget_keys),
        len(pending_keys),
        *allowances,
        *budget_ttls,
        _compact(events),
        *pendings,
    ]
    what = "decision " + ", ".join(str(global_id) for global_id, _ in decisions)
    return Write("commit", history_keys + budget_keys + pending_keys, args, what), budget_offers


def forced(write: Write) -> Write:
    """The same commit, replayed after an outage: no checks, and not twice."""
    return Write(write.script, write.keys, ["force", *write.args[1:]], write.what)
