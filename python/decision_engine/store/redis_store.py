"""Contact history, caps, budgets, pending decisions and learning shared by many servers
through one Redis (a single primary; not Redis Cluster: scripts derive key names).

A decision with a profile id takes at most two round trips:

1. one MULTI/EXEC pipeline reads the profile's shared history (a sorted set of JSON events
   scored by time, trimmed to the contact policy's longest window), its version counter and
   the used units of the budgets the placements' offers have;
2. the engine decides locally with that history (`history=`) and the spent budgets left out
   (`exclude=`); one Lua script then commits, atomically, only if the profile's version is
   still the one read: it appends the contacts, takes budget units (refusing a budget that
   was spent meanwhile) and records the pending decisions. On a refusal the engine releases
   its decision and decides again from a fresh read (at most `MAX_ATTEMPTS` times), so
   caps and budgets hold exactly across servers.

The engine is called *with* the profile id, so experiment groups are assigned as without
Redis, and its own store keeps this server's reservations. That is why the shared events
handed to it leave out the `shown` contacts of this server's own decisions (see
`history.decode_shared`): each contact is counted once.

Outcomes and releases may arrive at any server: the pending decision (placement, shown
offers, profile, time; TTL the attribution window) lives in Redis. The receiving server
records the cooldown event and conversion budgets there, and forwards the outcome to the
deciding server's inbox, whose engine holds the context it learns from.

Learning is shared as additive sufficient statistics (see `sync.Syncer`): a server's
outcomes reach every other server's model within about two flush intervals (its own flush,
then the others' next refresh; `flush_interval` is 2 s by default). Policies that forget
(discount or window) are not additive and stay per server.

When Redis fails or answers slower than `timeout_ms`, the store is degraded: decisions
continue at once without Redis, caps with `when_store_unavailable: closed` leave out every
offer they govern, caps with `open` count the request's history and this server's own
reservations, and budgets count this server's own spend. Outcomes, releases and the
contacts of these decisions wait in a bounded buffer, replayed in order once a background
probe reaches Redis again; then the store reports healthy by itself. A command Redis
refuses (a script error, a key of the wrong type under the key prefix) is no outage: it
raises `StoreCommandError` and the store stays healthy.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy.typing as npt
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from typing_extensions import Unpack

from decision_engine._core import ChosenOffer, Decision
from decision_engine.catalog.store import RedisStoreConfig
from decision_engine.engine import Contact, DecideKeywords, Engine, ProfileValue, Timestamp, unix_seconds
from decision_engine.errors import InvalidInputError
from decision_engine.ids import DecisionIds
from decision_engine.store.catalog_view import CatalogView
from decision_engine.store.health import Health
from decision_engine.store.history import decode_shared
from decision_engine.store.keys import Keys
from decision_engine.store.outcomes import apply_forwarded, raise_refusal, thompson_only
from decision_engine.store.sync import ReplayBuffer, Syncer
from decision_engine.store.writes import (
    Scripts,
    StoreCommandError,
    Write,
    commit_write,
    outcome_write,
    refused,
    release_write,
    replayed,
)

__all__ = ["RedisStore", "SharedDecision"]

log = logging.getLogger("decision_engine.store")

MAX_ATTEMPTS = 8  # decisions per request when other servers keep changing the profile
SERVER_BITS = 24  # top bits of a decision id: the server that made it
MAX_BUFFERED = 100_000  # writes kept while Redis is away


@dataclass(frozen=True)
class SharedDecision:
    """A decision with an id that any server sharing the Redis store accepts outcomes for."""

    decision_id: int
    placement: str
    offers: list[ChosenOffer]
    reasons: dict[str, str]
    experiments: list[tuple[str, str]]

    @property
    def offer_ids(self) -> list[str]:
        return [o.offer_id for o in self.offers]


def _seconds(now: Timestamp) -> float:
    seconds = unix_seconds(now)
    return time.time() if seconds is None else float(seconds)


class RedisStore:
    """An `Engine` whose contact history, caps, budgets, pending decisions and learning are
    shared with every server on the same Redis. Thread-safe; `close()` when done."""

    def __init__(
        self,
        engine: Engine,
        settings: RedisStoreConfig,
        *,
        on_health: Callable[[bool], None] | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self._catalog = engine.catalog
        self.view = CatalogView.of(engine)
        self.keys = Keys(settings.key_prefix)
        timeout = settings.timeout_ms / 1000
        self.client = redis.Redis.from_url(
            settings.url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            decode_responses=True,
        )
        self.scripts = Scripts(self.client)
        self.buffer = ReplayBuffer(MAX_BUFFERED)
        self.health = Health(on_health)
        self.ids = DecisionIds(self._server_number(), worker_bits=SERVER_BITS)
        self.syncer = Syncer(
            self.client,
            engine,
            self.keys,
            self.ids,
            self.scripts,
            self.buffer,
            float(settings.flush_interval),
            self.health,
            functools.partial(apply_forwarded, engine, self.ids),
        )
        self.syncer.start()

    # --- health ---

    @property
    def healthy(self) -> bool:
        """False while Redis is unavailable (decisions go on degraded, writes are buffered)."""
        return self.health.healthy

    def watch_health(self, listener: Callable[[bool], None]) -> None:
        """Calls `listener(healthy)` on every change of `healthy` (from any thread)."""
        self.health.watch(listener)

    @property
    def server(self) -> int:
        """This server's number: the top bits of the decision ids it hands out."""
        return self.ids.worker

    def _server_number(self) -> int:
        """From a counter in Redis; while Redis is away, a random one from the upper half."""
        top = 1 << (SERVER_BITS - 1)  # ids stay below 2**63
        try:
            return int(self.client.incr(self.keys.servers)) % (top // 2 - 1) + 1
        except redis.RedisError as exc:
            self.health.degrade(exc)
            return top // 2 + int.from_bytes(os.urandom(4)) % (top // 2)

    def close(self) -> None:
        """Stops the background thread after a last flush of what this server learned."""
        self.syncer.stop()
        self.client.close()

    # --- decisions ---

    def decide(
        self,
        placement: str,
        profile: npt.ArrayLike | dict[str, ProfileValue],
        **options: Unpack[DecideKeywords],
    ) -> SharedDecision:
        """`Engine.decide` with shared caps and budgets (same keyword arguments)."""
        return self.decide_page([placement], profile, **options)[0]

    def decide_page(
        self,
        placements: Sequence[str],
        profile: npt.ArrayLike | dict[str, ProfileValue],
        **options: Unpack[DecideKeywords],
    ) -> list[SharedDecision]:
        """`Engine.decide_page` with shared caps and budgets: see the module docstring."""
        placements = list(placements)
        at = _seconds(options.get("now"))
        profile_id = options.get("profile_id")
        given = list(options.get("history", ()))
        if self.engine.catalog is not self._catalog:  # reloaded: offers, caps, budgets changed
            self._catalog, self.view = self.engine.catalog, CatalogView.of(self.engine)

        def decide(shared: list[Contact], excluded: set[str]) -> list[Decision]:
            history = [*given, *shared]
            request: DecideKeywords = {**options, "now": at, "history": history, "exclude": excluded}
            return self.engine.decide_page(placements, profile, **request)

        excluded = set(options.get("exclude", ()))
        if self.health.healthy:
            try:
                return self._decide_shared(placements, at, profile_id, excluded, decide)
            except redis.RedisError as exc:
                if refused(exc):  # the read: a key of the wrong type under the key prefix, say
                    raise StoreCommandError(f"Redis refused the store's read: {exc}") from exc
                self.health.degrade(exc)
        decisions = decide([], excluded | self.view.closed_offers(placements))
        return self._commit_later(decisions, profile_id, at)

    def _decide_shared(
        self,
        placements: list[str],
        at: float,
        profile_id: str | None,
        excluded: set[str],
        decide: Callable[[list[Contact], set[str]], list[Decision]],
    ) -> list[SharedDecision]:
        budgeted = self.view.budgeted(placements)
        refused: set[str] = set()
        for attempt in range(MAX_ATTEMPTS):
            version, shared, spent = self._read(profile_id, budgeted, at)
            decisions = decide(shared, excluded | spent | refused)
            tagged = [(self.ids.to_wire(d.decision_id), d) for d in decisions]
            if not any(d.offers for d in decisions):
                return [self._shared(i, d) for i, d in tagged]
            write, budget_offers = self._commit_write(tagged, profile_id, version, at)
            try:
                result = self.scripts.run(write)
            except StoreCommandError:
                for d in decisions:
                    self.engine.release(d.decision_id)
                raise
            except redis.RedisError as exc:
                # The commit may or may not have run: replay it later, without checks, once.
                self.buffer.add(replayed(write))
                self.health.degrade(exc)
                return [self._shared(i, d) for i, d in tagged]
            if result[0] == "ok":
                return [self._shared(i, d) for i, d in tagged]
            for d in decisions:
                self.engine.release(d.decision_id)
            if result[0] == "budget":
                refused.add(budget_offers[int(result[1]) - 1])
            elif attempt:
                time.sleep(random.uniform(0, 0.001 * attempt))
        log.info("profile kept changing; deciding nothing", extra={"attempts": MAX_ATTEMPTS})
        everything = {o for p in placements for o in self.view.offers_of[p]}
        return [self._shared(self.ids.to_wire(d.decision_id), d) for d in decide([], everything)]

    def _read(
        self, profile_id: str | None, budgeted: list[str], at: float
    ) -> tuple[str, list[Contact], set[str]]:
        """Round trip 1: (history version, shared contacts, offers whose budget is spent)."""
        with_history = profile_id is not None and self.view.horizon > 0
        if not with_history and not budgeted:
            return "", [], set()
        pipe = self.client.pipeline(transaction=True)
        if with_history:
            assert profile_id is not None
            pipe.get(self.keys.version(profile_id))
            pipe.zrangebyscore(self.keys.history(profile_id), f"({at - self.view.horizon!r}", "+inf")
        budgets = [self.view.budgets[o] for o in budgeted]
        if budgeted:
            pipe.mget([self.keys.budget(o, b.window, at) for o, b in zip(budgeted, budgets, strict=True)])
        replies: list[Any] = pipe.execute()
        version, shared = "", []
        if with_history:
            version = replies[0] or "0"
            shared = decode_shared(replies[1], self.ids)
        spent = set()
        if budgeted:
            for offer, used in zip(budgeted, replies[-1], strict=True):
                if int(used or 0) >= self.view.allowed(offer, at):
                    spent.add(offer)
        return version, shared, spent

    def _commit_write(
        self, tagged: list[tuple[int, Decision]], profile_id: str | None, version: str, at: float
    ) -> tuple[Write, list[str]]:
        return commit_write(
            tagged,
            profile_id=profile_id,
            version=version,
            now=at,
            server=self.server,
            view=self.view,
            keys=self.keys,
            pending_ttl=int(self.settings.attribution_window),
        )

    def _commit_later(
        self, decisions: list[Decision], profile_id: str | None, at: float
    ) -> list[SharedDecision]:
        tagged = [(self.ids.to_wire(d.decision_id), d) for d in decisions]
        if any(d.offers for d in decisions):
            self.buffer.add(replayed(self._commit_write(tagged, profile_id, "force", at)[0]))
        return [self._shared(i, d) for i, d in tagged]

    @staticmethod
    def _shared(decision_id: int, d: Decision) -> SharedDecision:
        return SharedDecision(decision_id, d.placement, d.offers, d.reasons, d.experiments)

    # --- outcomes and releases ---

    def report_outcome(
        self, decision_id: int, reward: float, offer_id: str | None = None, *, dismissed: bool = False
    ) -> None:
        """Reports an outcome for a decision any server sharing this Redis made.

        Redis settles it exactly once (a second report raises on every server) and records
        the cooldown; this server's own decisions are then learned from at once, other
        servers' are forwarded to them. While Redis is away, this server's decisions are
        checked and learned from by its engine, and the shared part, like every outcome of
        another server's decision, is buffered and replayed: acknowledged, not lost.
        """
        if not math.isfinite(reward):
            raise InvalidInputError(f"reward must be a finite number, got {reward}")
        # Beta-Bernoulli thompson learns rewards in [0, 1] only. The placement is known once
        # Redis settles the outcome, so a catalog of thompson policies alone is checked here;
        # with other policies the deciding engine checks (and logs a refusal).
        if thompson_only(self.engine) and not 0.0 <= reward <= 1.0:
            raise InvalidInputError(f"reward must be a number in [0, 1] (thompson policies), got {reward}")
        owner = self.ids.worker_of(decision_id)
        own, local = owner == self.server, self.ids.engine_id(decision_id)
        write = outcome_write(
            decision_id,
            reward,
            offer_id,
            dismissed=dismissed,
            server=self.server,
            owner=owner,
            view=self.view,
            keys=self.keys,
        )
        result = self._run(write)
        if result is None:
            if own:
                self.engine.report_outcome(local, reward, offer_id, dismissed=dismissed)
            self.buffer.add(replayed(write))
        elif own and result[0] == "unknown":  # a DecideBatch decision, or one Redis lost
            self.engine.report_outcome(local, reward, offer_id, dismissed=dismissed)
        else:
            raise_refusal(result, decision_id, self.engine.offer_ids)
            if own:
                self.engine.report_outcome(local, reward, result[2], dismissed=dismissed)

    def release(self, decision_id: int) -> None:
        """Withdraws a decision that was not shown: contacts and budget units go back."""
        owner = self.ids.worker_of(decision_id)
        own, local = owner == self.server, self.ids.engine_id(decision_id)
        write = release_write(decision_id, server=self.server, owner=owner, view=self.view, keys=self.keys)
        result = self._run(write)
        if result is None:
            if own:
                self.engine.release(local)
            self.buffer.add(replayed(write))
        elif own and result[0] == "unknown":
            self.engine.release(local)
        else:
            if result[0] == "reported":
                raise InvalidInputError(f"decision {decision_id} already has an outcome; it was shown")
            raise_refusal(result, decision_id, self.engine.offer_ids)
            if own:
                self.engine.release(local)

    def _run(self, write: Write) -> list[str] | None:
        """The script's reply; None when Redis is unavailable (`StoreCommandError` when it
        refuses the script: neither degraded nor buffered, it would fail again)."""
        if not self.health.healthy:
            return None
        try:
            return self.scripts.run(write)
        except redis.RedisError as exc:
            self.health.degrade(exc)
            return None
