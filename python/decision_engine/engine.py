"""The in-process engine: a catalog compiled into the Rust core, decisions and outcomes."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypedDict, cast

import numpy as np
import numpy.typing as npt
import xxhash
from typing_extensions import Unpack

from decision_engine import _core
from decision_engine.catalog import LoadedCatalog, load_catalog
from decision_engine.catalog.store import RedisStoreConfig, StoreConfig
from decision_engine.errors import InvalidInputError

if TYPE_CHECKING:
    import pyarrow as pa

    from decision_engine._core import BatchDecision, Decision, WriteReport

ProfileValue = float | int | bool | str
Timestamp = float | datetime | None


@dataclass(frozen=True)
class ArmState:
    """What one offer's arm has learned in one placement.

    ``alpha`` and ``beta`` are the Beta posterior of a ``thompson`` policy (NaN for other
    policies); ``pulls`` counts the rewards learned from (discounted when the policy
    forgets); ``uncertainty`` is the posterior sd, the UCB bonus, or a linear arm's width at
    the average context it saw.
    """

    offer_id: str
    alpha: float
    beta: float
    mean: float
    pulls: float
    uncertainty: float


@dataclass(frozen=True)
class BudgetPrice:
    """An impression budget's price for a campaign (`Engine.budget_prices`), and the volume
    it had room for when priced."""

    price: float
    room: int


@dataclass(frozen=True)
class Contact:
    """One contact of a profile with an offer: shown, converted or dismissed."""

    offer_id: str
    channel: str
    time: float
    kind: Literal["shown", "converted", "dismissed"] = "shown"
    group: str | None = None
    # The decision that made a `shown` contact: the contacts of one decision count as one
    # message against channel and all-channel caps (0: counted on its own).
    decision_id: int = 0

    def as_tuple(self) -> tuple[str, str, float, str, str | None, int]:
        return (self.offer_id, self.channel, self.time, self.kind, self.group, self.decision_id)


def unix_seconds(now: Timestamp) -> float | None:
    """`now` as unix seconds (naive datetimes are UTC); None stays None."""
    if isinstance(now, datetime):
        # Naive times are UTC, as in the catalog.
        return (now if now.tzinfo else now.replace(tzinfo=UTC)).timestamp()
    return now


_log = logging.getLogger(__name__)


class DecideKeywords(TypedDict, total=False):
    """What `Engine.decide` and `Engine.decide_page` take besides the placements and the
    profile (the core's `DecideOptions`, which owns the defaults: none of each, the server
    clock, no explanations)."""

    consents: Iterable[str]  # channels the profile consented to (a str for one)
    now: Timestamp
    explain: bool
    profile_id: str | None
    history: Iterable[Contact]  # contacts known elsewhere
    purchases: Iterable[str]  # products bought (for purchase suppression)
    exclude: Iterable[str]  # offer ids to leave out
    context: Mapping[str, ProfileValue] | None  # by-id decisions: features over the stored ones


def decide_options(options: DecideKeywords) -> _core.DecideOptions:
    """The core's options for the keywords given (the others keep the core's defaults; the
    core reads any iterable of names, and contacts as `Contact` or tuples)."""
    if not options:
        return _NO_OPTIONS
    given = cast("dict[str, Any]", options)
    if isinstance(now := given.get("now"), datetime):
        given = {**given, "now": unix_seconds(now)}
    return _core.DecideOptions(**given)


_NO_OPTIONS = _core.DecideOptions()


def shared_store_settings(configured: StoreConfig, url: str | None) -> RedisStoreConfig | None:
    """The Redis store an engine keeps its state in: the catalog's ``store:`` section with
    ``url`` over its URL (the defaults of ``RedisStoreConfig`` when the catalog's store is
    embedded); None for the embedded store."""
    if url is None:
        return configured if isinstance(configured, RedisStoreConfig) else None
    base = configured if isinstance(configured, RedisStoreConfig) else RedisStoreConfig(type="redis")
    return base.model_copy(update={"url": url})


class Engine:
    """Decides which offers a profile sees, learns from outcomes. Thread-safe.

    >>> engine = Engine("seeds/demo_catalog.yaml", seed=7)  # doctest: +SKIP
    >>> decision = engine.decide("web_home_hero", profile)  # doctest: +SKIP
    >>> engine.report_outcome(decision.decision_id, reward=1.0)  # doctest: +SKIP
    """

    def __init__(
        self,
        catalog: LoadedCatalog | str | os.PathLike[str],
        *,
        seed: int = 0,
        max_pending: int | None = None,
        state_dir: str | os.PathLike[str] | None = None,
        clock: Literal["wall", "simulated"] = "wall",
        max_clock_skew: float | None = None,
        profile_store: str | None = None,
        profile_prefix: str = "de",
        store_url: str | None = None,
    ) -> None:
        """``state_dir`` makes the state durable (the embedded store): every change is journaled
        there before it is acknowledged, and a restart recovers it (see ``recovery``). The
        catalog's ``store:`` section sets the fsync policy, snapshot interval and attribution
        window; ``decision-engine serve`` takes the directory from its ``path``.

        The engine keeps its whole state in Redis, ``redis://host:port/db``, or a Redis
        Cluster, ``redis+cluster://host:port,host:port,...``, when the catalog's ``store:`` says
        ``type: redis`` or ``store_url`` is given (it overrides the catalog's URL): profiles,
        contact history, caps, budgets, pending decisions and learning, shared with every
        engine on the same Redis and key prefix (see ``shared_store``, :meth:`store_health`,
        :meth:`close`). Such an engine has no ``state_dir``.

        ``clock="wall"`` (the default) runs on this machine's clock: a request's ``now`` may
        differ from it by at most ``max_clock_skew`` seconds (``LIMITS``), so no caller can
        expire decisions, reopen a budget window or erase contact history by dating a
        request. ``clock="simulated"`` lets requests say what time it is (tests, simulations,
        back-tests). ``max_pending`` bounds the decisions kept awaiting outcomes (about 400
        bytes each; the oldest go first).

        ``profile_store`` keeps only the customer plane (profiles, events' computed
        attributes, consents, purchases) in Redis or a Redis Cluster, under keys starting with
        ``profile_prefix``: every engine pointed at it shares the same customers, each keeping
        the rest of its state itself."""
        self.catalog = catalog if isinstance(catalog, LoadedCatalog) else load_catalog(catalog)
        store = self.catalog.model.store
        # The Redis store's settings (the URL given here over the catalog's), None when the
        # engine keeps its state itself.
        self.shared_store: RedisStoreConfig | None = shared_store_settings(store, store_url)
        durable: dict[str, object] = {"attribution_window": float(store.attribution_window)}
        durable.update(clock=clock, max_clock_skew=max_clock_skew)
        if self.shared_store is not None:
            if profile_store is not None:
                raise InvalidInputError(
                    "an engine sharing its state through Redis keeps its profiles there too: "
                    "give profile_store= only to an engine that keeps the rest of its state itself"
                )
            shared = self.shared_store
            durable.update(shared_store=shared.url, shared_prefix=shared.key_prefix)
            durable["shared_timeout_ms"] = shared.timeout_ms
        elif profile_store is not None:
            durable.update(profile_store=profile_store, profile_prefix=profile_prefix)
        if max_pending is not None:
            durable["max_pending"] = max_pending
        if store.type == "embedded":
            durable.update(fsync=store.fsync, fsync_interval_ms=store.fsync_interval_ms)
            durable.update(snapshot_every=store.snapshot_every)
        if state_dir is not None:  # the core refuses it beside a Redis store
            durable["state_dir"] = os.fspath(state_dir)
        try:
            self._core = _core.Engine(self.catalog.to_core_json(), seed, **durable)  # type: ignore[arg-type]
        except _core.CatalogError as exc:
            raise self.catalog.core_error(exc) from exc
        self._closed = False
        if self.recovery and self.recovery["warning"]:
            _log.warning("state recovery: %s", self.recovery["warning"])
        self._describe_catalog()

    @property
    def recovery(self) -> dict[str, object] | None:
        """What opening the state directory recovered (None without one): snapshot_loaded,
        generation, replayed, skipped, discarded_bytes (a torn journal tail) and warning."""
        return self._core.recovery

    def snapshot(self) -> None:
        """Writes a snapshot of the whole state now and starts a fresh journal."""
        self._core.snapshot()

    # --- the Redis store ---

    def store_health(self) -> dict[str, int | bool] | None:
        """How the Redis store is doing (None when the engine keeps its state itself):
        ``healthy`` (False while Redis is unreachable or slower than ``timeout_ms``: decisions
        go on without it, outcomes and releases raise StorageError), ``server`` (this
        server's number, the top bits of its decision ids), ``buffered`` (decisions made
        without Redis, waiting to be written there), ``dropped`` (of those, lost to the
        buffer's bound), ``learned`` (outcomes learned from the shared stream), ``snapshots``
        (policy snapshots written) and ``lost_cooldowns`` (cooldowns of settled outcomes
        Redis lost)."""
        return self._core.store_health()

    def sync_store(self) -> int:
        """Runs one round of the Redis store's background work now (a background thread runs
        it every 10 ms): learns what every server's outcomes taught since the last round and
        returns how many; replays what waited for Redis once it answers. 0 without a Redis
        store."""
        return self._core.sync_store()

    def close(self) -> None:
        """Stops the Redis store's background work after a last snapshot of what the
        policies learned (StorageError when Redis fails it: the outcomes stay in the stream);
        the engine keeps deciding and settling outcomes, but learns no more by itself.
        Idempotent, and nothing to do for an engine that keeps its state itself."""
        if not self._closed:
            self._closed = True
            self._core.close_store()

    def _describe_catalog(self) -> None:
        self.feature_names: list[str] = self._core.feature_names
        self.offer_ids: list[str] = self._core.offer_ids
        self.channels: list[str] = self._core.channels
        # placements on these decide nothing for a profile without the channel's consent
        self.consent_channels: list[str] = self._core.consent_channels
        # (experiment id, group names), in the order of a batch decision's `groups` columns
        self.experiments: list[tuple[str, list[str]]] = self._core.experiments
        # Names the catalog (and so the policies) decisions are made with, for decision logs.
        self.policy_version: str = xxhash.xxh3_64_hexdigest(self.catalog.to_core_json().encode("utf-8"))

    def apply_catalog(self, catalog: LoadedCatalog | str | os.PathLike[str]) -> None:
        """Validates and swaps in a new catalog atomically; learned state carries over for
        unchanged (placement, offer) ids. A bad catalog raises CatalogError and changes nothing.

        Swap the catalog while decisions are in flight only through the Rust engine; the
        Python-side descriptions (feature names, offer ids) follow right after.
        """
        loaded = catalog if isinstance(catalog, LoadedCatalog) else load_catalog(catalog)
        try:
            self._core.replace_catalog(loaded.to_core_json())
        except _core.CatalogError as exc:
            raise loaded.core_error(exc) from exc
        self.catalog = loaded
        self._describe_catalog()

    @property
    def placements(self) -> dict[str, tuple[str, int, list[str]]]:
        """placement id -> (channel, slots, offer ids)."""
        return {pid: (channel, slots, offers) for pid, channel, slots, offers in self._core.placements}

    def encode(self, profile: Mapping[str, ProfileValue]) -> npt.NDArray[np.float32]:
        """Lays out a profile given by feature name into the catalog's feature vector.

        Numbers, bools for bool features, value names for categories; every feature must be
        present (None counts as absent). The core checks and lays out each value.
        """
        return self._core.encode(dict(profile))

    def _vector(self, profile: npt.ArrayLike | Mapping[str, ProfileValue]) -> npt.NDArray[np.float32]:
        if type(profile) is np.ndarray and profile.dtype == np.float32 and profile.ndim == 1:
            return profile  # the common case, kept cheap: the core checks length and values
        if isinstance(profile, Mapping):
            return self.encode(profile)
        features = np.ascontiguousarray(profile, dtype=np.float32)
        if features.ndim != 1:
            raise InvalidInputError(f"a profile is one vector of {len(self.feature_names)} features")
        return features

    def decide(
        self,
        placement: str,
        profile: npt.ArrayLike | Mapping[str, ProfileValue] | None,
        **options: Unpack[DecideKeywords],
    ) -> Decision:
        """Chooses offers for one profile (a feature vector or a mapping by feature name).

        With ``profile_id`` the contact policy applies the profile's stored history and
        reserves this decision's contacts; ``history`` adds contacts known elsewhere,
        ``purchases`` the products bought (for purchase suppression) and ``exclude`` offer
        ids to leave out (their reason is "excluded by the caller").

        With ``profile`` None the engine decides by id on the stored profile ``profile_id``
        (its features, computed attributes, consents, purchases and contact history);
        ``context`` features by name override stored values for this decision only, and
        ``consents``, ``history`` and ``purchases`` add to the stored ones.
        """
        if profile is None:
            return self._core.decide_stored([placement], decide_options(options))[0]
        if not options:
            return self._core.decide(placement, self._vector(profile))  # the hot path: no extras
        return self._core.decide(placement, self._vector(profile), decide_options(options))

    def decide_page(
        self,
        placements: Sequence[str],
        profile: npt.ArrayLike | Mapping[str, ProfileValue] | None,
        **options: Unpack[DecideKeywords],
    ) -> list[Decision]:
        """Decides several placements of one page together: no offer appears twice, group
        limits and caps hold across the page. One decision per placement, in order. With
        ``profile`` None it decides by id, as :meth:`decide` does."""
        request = decide_options(options)
        if profile is None:
            return self._core.decide_stored(list(placements), request)
        return self._core.decide_page(list(placements), self._vector(profile), request)

    # --- the profile store ---

    def upsert_profiles(
        self,
        data: Sequence[Mapping[str, object]] | object = None,
        *,
        ids: Sequence[str] | None = None,
        features: npt.ArrayLike | None = None,
        now: Timestamp = None,
    ) -> WriteReport:
        """Writes profiles (partial updates: only the features given change) and returns the
        core's report: accepted rows, and each rejected row's index, id and reason (nothing of
        a rejected row is written).

        ``data`` is a list of dicts (``"id"``, feature names -> values, optionally
        ``"consents"``, ``"revoked_consents"`` and ``"purchases"``), or an Arrow table or
        record batch (pyarrow, polars, anything with ``__arrow_c_stream__``) with an ``id``
        column and feature columns by name (a null leaves the value unchanged). Or
        ``ids=`` with ``features=``, a (profiles x features) array whose columns are the
        stored features in schema order (``stored_features``: computed ones left out), or
        every feature (``feature_names``) with NaN in the computed columns; NaN leaves a
        value unchanged and category columns hold the value's index in the catalog's list.
        ``now`` is the write's time (the engine's clock when None).
        """
        from decision_engine.ingest import upsert

        return upsert(self, data, ids, features, unix_seconds(now))

    @property
    def stored_features(self) -> list[str]:
        """Features upserts write (the schema's, in order, without the computed ones)."""
        computed = {f.name for f in self.catalog.model.features if f.computed is not None}
        return [name for name in self.feature_names if name not in computed]

    def track(self, events: Iterable[Mapping[str, object]]) -> WriteReport:
        """Applies events to their profiles (computed attributes, consents, purchases). Each
        event: ``"id"`` (a repeated id is applied once, and counted in ``duplicates``),
        ``"profile_id"``, ``"type"``, ``"time"`` (a datetime, naive as UTC, or unix seconds)
        and optional ``"properties"`` by name."""
        rows: list[dict[str, object]] = []
        for event in events:
            row = dict(event)
            if isinstance(row.get("time"), datetime):
                row["time"] = unix_seconds(row["time"])  # type: ignore[arg-type]
            rows.append(row)
        return self._core.track(rows)

    def profile(self, profile_id: str, now: Timestamp = None) -> dict[str, Any] | None:
        """The stored profile: ``{"id", "features", "consents", "purchases"}`` with computed
        attributes evaluated at ``now`` (the engine's clock when None); None when not held."""
        return self._core.profile(profile_id, unix_seconds(now))

    def delete_profile(self, profile_id: str) -> bool:
        """Erases a profile: features, events, consents, purchases, contact history and pending
        decisions. True when the engine held anything of it."""
        return self._core.delete_profile(profile_id)

    @property
    def profile_count(self) -> int | None:
        """Profiles the embedded store holds (None when they live in Redis, shared)."""
        return self._core.profile_count()

    def upsert_profiles_wire(self, request: bytes) -> bytes:
        """Serialized ``UpsertProfilesRequest`` -> serialized ``WriteResponse``."""
        return self._core.upsert_profiles_wire(request)

    def track_events_wire(self, request: bytes) -> bytes:
        """Serialized ``TrackEventsRequest`` -> serialized ``WriteResponse``."""
        return self._core.track_events_wire(request)

    def get_profile_wire(self, request: bytes) -> bytes:
        """Serialized ``GetProfileRequest`` -> serialized ``StoredProfile`` (UnknownProfileError
        when not held)."""
        return self._core.get_profile_wire(request)

    def delete_profile_wire(self, request: bytes) -> bytes:
        """Serialized ``DeleteProfileRequest`` -> serialized ``DeleteProfileResponse``."""
        return self._core.delete_profile_wire(request)

    # --- triggers ---

    def fire_due(self, now: Timestamp = None) -> int:
        """Fires every trigger instance due at ``now`` (the engine's clock when None): each
        decides its placement on the profile as it is then, or ends saying why not (see
        :meth:`trigger_history`). Also releases deliveries left unacknowledged past their
        trigger's ``delivery_ttl``. Returns how many instances ended or were delivered."""
        return self._core.fire_due(unix_seconds(now))

    def poll_deliveries(
        self,
        channel: str,
        *,
        max: int | None = None,
        visibility: float | None = None,
        now: Timestamp = None,
    ) -> list[dict[str, Any]]:
        """Up to ``max`` triggered decisions ready to send on ``channel``: never delivered, or
        delivered and not acknowledged within ``visibility`` seconds (None: the core's
        defaults). Each is in flight until ``now + visibility``; a dict of ``decision_id``,
        ``trigger``, ``profile_id``, ``placement``, ``channel``, ``offers`` ((offer id, score,
        propensity) by slot), ``attempt`` (1 on the first delivery) and ``decided_at``."""
        options: dict[str, Any] = {"now": unix_seconds(now)}
        if max is not None:
            options["max"] = max
        if visibility is not None:
            options["visibility"] = visibility
        return self._core.poll_deliveries(channel, **options)

    def ack_deliveries(self, decision_ids: Iterable[int]) -> int:
        """Acknowledges delivered decisions (sent: they will not come again); returns how many
        were acknowledged now (an unknown or already acknowledged id counts nothing)."""
        return self._core.ack_deliveries([int(i) for i in decision_ids])

    def trigger_history(self, profile_id: str) -> list[dict[str, Any]]:
        """What became of the profile's trigger instances, newest last: dicts of ``trigger``,
        ``key``, ``time``, ``outcome`` (delivered, acknowledged, cancelled, capped, ...),
        ``detail`` (why, in words) and ``decision_id`` (0 when none)."""
        return self._core.trigger_history(profile_id)

    @property
    def pending_timers(self) -> int:
        """Trigger instances waiting to fire."""
        return self._core.pending_timers()

    @property
    def pending_deliveries(self) -> int:
        """Triggered decisions waiting for their acknowledgement."""
        return self._core.pending_deliveries()

    def decide_wire(self, request: bytes, id_tag: int = 0) -> tuple[bytes, list[tuple[str, list[str]]]]:
        """Decide on a serialized ``decision_engine.v1.DecideRequest``; returns the serialized
        ``DecideResponse`` (decision ids OR-ed with ``id_tag``) and (placement, offer ids) per
        decision. The gRPC server's hot path: no Python protobuf objects."""
        return self._core.decide_wire(request, id_tag)

    def release(self, decision_id: int) -> None:
        """Withdraws a decision that was not shown: its cap and budget reservations are
        given back and it takes no outcome. On a Redis store any server releases any
        server's decision; while Redis is unreachable it raises StorageError and releases
        nothing (release it again later)."""
        self._core.release(decision_id)

    def contact_history(self, profile_id: str) -> list[Contact]:
        """The profile's stored contacts, oldest first (read from Redis on a Redis store:
        StorageError while it is unreachable)."""
        return [Contact(o, c, t, k, g, d) for o, c, t, k, g, d in self._core.contact_history(profile_id)]  # type: ignore[arg-type]

    def budget_usage(self, offer_id: str, now: Timestamp = None) -> tuple[int, int] | None:
        """(used, allowed now) of an offer's volume budget; None when it has none."""
        return self._core.budget_usage(offer_id, unix_seconds(now))

    def decide_batch(
        self,
        placement: str,
        features: npt.ArrayLike,
        *,
        consents: npt.ArrayLike | None = None,
        now: Timestamp = None,
        threads: int | None = None,
        propensities: bool = True,
        profile_ids: Sequence[str] | None = None,
        allocate_budgets: bool = False,
        stream: int | None = None,
        prices: Mapping[str, float] | None = None,
        quota: Mapping[str, int] | None = None,
        contact_history: bool = True,
    ) -> BatchDecision:
        """Decides for every row of a (profiles x features) float32 array, on all cores.

        ``consents`` is a (profiles x channels) bool array in ``self.channels`` order;
        without it no profile has consent, so offers that need one are left out.
        Empty slots have offer -1 and NaN score and propensity. ``propensities=False`` skips
        computing them (``batch.propensities`` is then None), for scoring-only runs. With
        ``profile_ids`` (one per row) the profiles get their experiment groups
        (``batch.groups``) and the contact policy applies as in :meth:`decide`;
        ``contact_history=False`` uses the ids for groups and streams only.

        ``allocate_budgets=True`` is for campaigns under volume budgets: offers are scored
        by expected value and allocated across the whole batch to maximise the total within
        each budget's remaining volume (rather than first come, first served); the result
        is deterministic, so propensities are 1.

        A campaign split into batches (over many engines, on Ray or Spark) uses the rest:
        ``stream`` (with ``profile_ids``) draws each profile's randomness from (seed,
        stream, profile id), so the decisions do not depend on how the rows are split;
        ``prices`` (offer id -> price, from :meth:`budget_prices`) makes every row take its
        offers by expected value minus price (propensity 1); ``quota`` (offer id -> count)
        caps what this batch takes of each offer, on top of its budget.
        """
        rows = np.ascontiguousarray(features, dtype=np.float32)
        if rows.ndim != 2:
            raise InvalidInputError(f"features must be 2-D (profiles x {len(self.feature_names)})")
        mask = None if consents is None else np.ascontiguousarray(consents, dtype=np.bool_)
        if mask is not None and mask.ndim != 2:
            raise InvalidInputError(f"consents must be 2-D (profiles x {len(self.channels)})")
        ids = None if profile_ids is None else list(profile_ids)
        return self._core.decide_batch(
            placement,
            rows,
            mask,
            unix_seconds(now),
            threads,
            propensities,
            ids,
            allocate_budgets,
            stream,
            None if prices is None else dict(prices),
            None if quota is None else dict(quota),
            contact_history,
        )

    def budget_prices(
        self,
        placement: str,
        features: npt.ArrayLike,
        total_rows: int,
        *,
        consents: npt.ArrayLike | None = None,
        now: Timestamp = None,
        threads: int | None = None,
    ) -> dict[str, BudgetPrice]:
        """The first pass of a campaign under budgets: prices from a sample of its profiles.

        ``features`` (and ``consents``) are a sample of the ``total_rows`` profiles the
        campaign decides. Each impression budget of the placement's offers gets the price
        at which the sample, scaled to the whole run, takes what the budget has room for;
        :meth:`decide_batch` with ``prices=`` then decides any batch of the run alone.
        """
        rows = np.ascontiguousarray(features, dtype=np.float32)
        mask = None if consents is None else np.ascontiguousarray(consents, dtype=np.bool_)
        priced = self._core.budget_prices(placement, rows, total_rows, mask, unix_seconds(now), threads)
        return {offer: BudgetPrice(price, room) for offer, price, room in priced}

    def decide_arrow(
        self,
        placement: str,
        data: object,
        *,
        id_column: str | None = "profile_id",
        consents: Mapping[str, str] | Sequence[str] | None = None,
        now: Timestamp = None,
        propensities: bool = True,
        threads: int | None = None,
    ) -> pa.RecordBatch:
        """Decides for every row of an Arrow table or record batch (pyarrow, polars, anything
        with ``__arrow_c_stream__``) whose feature columns are named as the catalog's; returns
        a record batch of profile_id, decision_id, offer/score/propensity per slot and
        experiment_group (null: the batch path assigns none). See
        `decision_engine.batch.arrow.decide_arrow`."""
        from decision_engine.batch.arrow import decide_arrow

        return decide_arrow(
            self,
            placement,
            data,
            id_column=id_column,
            consents=consents,
            now=now,
            propensities=propensities,
            threads=threads,
        )

    def evaluate_rules(self, features: npt.ArrayLike, *, threads: int | None = None) -> npt.NDArray[np.bool_]:
        """Every offer's eligibility rule over a batch: (profiles x offers) bool."""
        rows = np.ascontiguousarray(features, dtype=np.float32)
        if rows.ndim != 2:
            raise InvalidInputError(f"features must be 2-D (profiles x {len(self.feature_names)})")
        return self._core.evaluate_rules(rows, threads).view(np.bool_)

    def report_outcome(
        self, decision_id: int, reward: float, offer_id: str | None = None, *, dismissed: bool = False
    ) -> None:
        """Reports a reward for an offer a decision showed, within its policy's ``rewards``
        range: [0, 1] under a ``thompson`` policy, +-1e6 under the others unless the catalog
        declares another (``gaussian_thompson`` learns real rewards such as revenue). A
        positive reward is a conversion and ``dismissed`` a dismissal: each starts its
        cooldown for the profile.

        On a Redis store any server takes the outcome of any server's decision, settled once
        (a repeat raises OutcomeAlreadyReportedError on every server) and learned by every
        server within moments (:meth:`sync_store`). While Redis is unreachable it raises
        StorageError and records nothing: report it again later. Outcomes of
        :meth:`decide_batch` decisions go to the engine that made them."""
        self._core.report_outcome(int(decision_id), float(reward), offer_id, dismissed)

    def policy_state(self, placement: str) -> list[ArmState]:
        return [ArmState(*arm) for arm in self._core.policy_state(placement)]

    def save_policy_state(self, path: str | os.PathLike[str]) -> None:
        """Writes what every placement's policy learned to ``path`` (versioned JSON).

        Written to a temporary file and renamed, so a crash never leaves half a file.
        """
        target = Path(path)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(self._core.save_policy_state(), encoding="utf-8")
        tmp.replace(target)

    def load_policy_state(self, path: str | os.PathLike[str]) -> tuple[int, int]:
        """Loads a saved policy state; returns (arms loaded, arms skipped).

        Arms load where the placement, experiment group, policy and offer id are unchanged;
        the rest (the catalog changed since) are skipped. A file of another format or a
        newer version raises InvalidInputError and changes nothing.
        """
        text = Path(path).read_text(encoding="utf-8")
        try:
            return self._core.load_policy_state(text)
        except InvalidInputError as err:
            raise InvalidInputError(f"{path}: {err}") from None

    @property
    def pending_decisions(self) -> int:
        """Decisions still awaiting at least one outcome."""
        return self._core.pending_decisions

    def offer_id_array(self, offers: npt.NDArray[np.int32]) -> npt.NDArray[np.str_]:
        """Maps the offer indices of a batch decision to ids ('' for an empty slot)."""
        ids = np.array([*self.offer_ids, ""])
        return ids[np.where(offers < 0, len(self.offer_ids), offers)]


__all__: Sequence[str] = ["ArmState", "BudgetPrice", "Contact", "Engine"]
