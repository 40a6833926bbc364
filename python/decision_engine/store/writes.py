"""The Lua scripts of the Redis store and the arguments they take.

Every write is one script call, so it is atomic: a commit appends a request's contacts,
takes its budget units and records its pending decisions; an outcome marks the offer
reported, adds the cooldown event and forwards the outcome to the server that decided; a
release gives contacts and budget units back. A write is a `Write` (script, keys, args) so
that one made while Redis is away can wait in the replay buffer and run later (`replayed`).

The argument lists below mirror the ARGV comments at the top of each script: this module is
the one place that knows their order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Literal

import redis
from redis.exceptions import ClusterDownError, OutOfMemoryError, ReadOnlyError, TryAgainError

from decision_engine._core import Decision
from decision_engine.store.catalog_view import CatalogView
from decision_engine.store.history import shown_member
from decision_engine.store.keys import Keys

__all__ = [
    "Scripts",
    "StoreCommandError",
    "Write",
    "commit_write",
    "outcome_write",
    "refused",
    "release_write",
    "replayed",
]

ScriptName = Literal["commit", "outcome", "release"]

# Errors Redis answers while it cannot serve for a while (a failover, memory full, a long
# script, loading): an outage like a lost connection, not a refusal of the command.
_UNAVAILABLE = (ReadOnlyError, OutOfMemoryError, TryAgainError, ClusterDownError)
_UNAVAILABLE_PREFIXES = ("BUSY", "LOADING", "MASTERDOWN")


class StoreCommandError(RuntimeError):
    """Redis refused one of the store's commands (a script error, a key of the wrong type
    under the key prefix). Not an outage: the store stays healthy and the write is not
    buffered, since running it again would fail the same way."""


def refused(exc: BaseException) -> bool:
    """Whether Redis answered `exc` to refuse a command, rather than being unavailable."""
    if not isinstance(exc, redis.ResponseError) or isinstance(exc, _UNAVAILABLE):
        return False
    return not str(exc).startswith(_UNAVAILABLE_PREFIXES)


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
        """The script's reply; raises `StoreCommandError` when Redis refuses the script, and
        redis' own errors (ConnectionError, TimeoutError, ...) when it is unavailable."""
        try:
            result = self.by_name[write.script](keys=write.keys, args=write.args, client=client)
        except redis.ResponseError as exc:
            if refused(exc):
                raise StoreCommandError(
                    f"Redis refused the {write.script} script ({write.what}): {exc}"
                ) from exc
            raise
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
            allowances.append(str(view.allowed(offer, now)))
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


def outcome_write(
    decision_id: int,
    reward: float,
    offer_id: str | None,
    *,
    dismissed: bool,
    server: int,
    owner: int,
    view: CatalogView,
    keys: Keys,
) -> Write:
    """An outcome of decision `decision_id` (made by server `owner`), reported on `server`."""
    args: list[str | int | float] = [
        keys.prefix,
        offer_id or "",
        repr(float(reward)),
        "1" if dismissed else "0",
        str(server),
        int(view.horizon) + 60,  # history_ttl
        repr(view.horizon),  # trim_below offset
        "0",  # forward_unknown: see `replayed`
        str(owner),
        str(decision_id),
    ]
    return Write("outcome", [keys.pending(decision_id)], args, f"outcome of {decision_id}")


def release_write(decision_id: int, *, server: int, owner: int, view: CatalogView, keys: Keys) -> Write:
    """A release of decision `decision_id` (made by server `owner`), received on `server`."""
    args: list[str | int | float] = [
        keys.prefix,
        str(server),
        "0",  # forward_unknown: see `replayed`
        str(owner),
        str(decision_id),
        int(view.horizon) + 60,  # history_ttl
    ]
    return Write("release", [keys.pending(decision_id)], args, f"release of {decision_id}")


# Position in `Write.args` of the forward_unknown flag (ARGV index - 1), as built above.
_FORWARD_UNKNOWN = {"outcome": 7, "release": 2}


def replayed(write: Write) -> Write:
    """The same write, to run once Redis is back after an outage.

    A commit is forced: nothing is checked (the decision was already answered) and it is
    not counted twice if it did run. An outcome or release that finds its decision gone
    (Redis restarted empty, say) is passed on to the deciding server's inbox anyway, since
    that server's engine still knows the decision.
    """
    args = list(write.args)
    if write.script == "commit":
        args[0] = "force"
    else:
        args[_FORWARD_UNKNOWN[write.script]] = "1"
    return Write(write.script, write.keys, args, write.what)
