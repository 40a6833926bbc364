"""A campaign: a Parquet file of profiles through the engine to a Parquet file of decisions.

`run_campaign` streams the input a row group at a time (only the columns it reads), in
batches of at most ``batch_rows``, through one `BatchDecider` on all cores and appends each
result to the output with a ``ParquetWriter``, so memory holds a row group, never the input.
`run_ray_campaign` runs the same decider on Ray Data (``row groups -> map_batches ->
write_parquet``, each actor reading the row groups it is given); its output is a directory
of Parquet files, as Ray writes them. Either can write the decision log
(`decision_engine.decision_log`) that ``decision-engine evaluate`` reads: one row per chosen
offer, with the features' hash, and an empty outcomes file for the outcomes to come.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pds
import pyarrow.parquet as pq

from decision_engine.batch.arrow import Consents, consent_matrix, feature_matrix
from decision_engine.batch.budgets import SAMPLE_ROWS, CampaignBudgets, RayLedger
from decision_engine.batch.decider import BatchDecider
from decision_engine.decision_log.format import DecisionLogWriter, OutcomeLogWriter
from decision_engine.engine import Engine, Timestamp, unix_seconds
from decision_engine.errors import InvalidInputError

BATCH_ROWS = 65_536


@dataclass(frozen=True)
class CampaignResult:
    rows: int
    seconds: float
    out: Path
    log: Path | None
    # (arms loaded, arms skipped) of the policy state; None without one
    policy_state_loaded: tuple[int, int] | None
    # the first pass's prices and room, for a placement with impression budgets
    budgets: CampaignBudgets | None = None
    # impressions the run took of each budgeted offer
    budget_used: dict[str, int] | None = None

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("nan")


def input_columns(engine: Engine, id_column: str, consents: Consents) -> list[str]:
    """The columns a campaign reads: the profile id, the catalog's features, the consents."""
    names = [id_column, *engine.feature_names]
    if isinstance(consents, str):
        names.append(consents)
    elif isinstance(consents, Mapping):
        names += list(consents.values())
    elif consents is not None:
        names += list(consents)
    return list(dict.fromkeys(names))


def _check_columns(schema: pa.Schema, wanted: Sequence[str], source: str | os.PathLike[str]) -> None:
    missing = [name for name in wanted if name not in schema.names]
    if missing:
        raise InvalidInputError(f"{source}: missing columns {', '.join(missing)}")


class _Output:
    """A Parquet file appended to batch by batch, moved to its name only when complete."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path = path
        self._partial = path.with_name(path.name + ".partial")
        path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = pq.ParquetWriter(self._partial, schema)

    def write(self, batch: pa.RecordBatch) -> None:
        self._writer.write_batch(batch)

    def close(self, *, publish: bool) -> None:
        self._writer.close()
        if publish:
            os.replace(self._partial, self.path)


class _Log:
    """The decision log of a campaign: one row per chosen offer of each decided batch."""

    def __init__(self, directory: Path, placement: str, policy_version: str, slots: int) -> None:
        self._decisions = DecisionLogWriter(directory / "decisions.parquet", ope=True)
        self._outcomes = OutcomeLogWriter(directory / "outcomes.parquet")
        self.placement, self.policy_version, self.slots = placement, policy_version, slots

    def append(self, batch: pa.RecordBatch | pa.Table, now: float) -> None:
        parts = []
        for slot in range(self.slots):
            shown = pc.is_valid(batch.column(f"offer_{slot}"))
            rows = batch.filter(shown)
            parts.append(
                {
                    "decision_id": rows.column("decision_id"),
                    "profile_id": rows.column("profile_id"),
                    "offer_id": rows.column(f"offer_{slot}"),
                    "propensity": rows.column(f"propensity_{slot}").cast(pa.float64()),
                    "features_hash": rows.column("features_hash"),
                    "slot": pa.array(np.full(rows.num_rows, slot, np.int32)),
                    "experiment": _text(rows.column("experiment")),
                    "group": _text(rows.column("experiment_group")),
                }
            )
        n = sum(len(p["slot"]) for p in parts)
        columns: dict[str, Any] = {
            name: pa.concat_arrays([_array(p[name]) for p in parts]).to_numpy(zero_copy_only=False)
            for name in parts[0]
        }
        columns.update(
            time=np.full(n, now),
            placement=np.full(n, self.placement, dtype=object),
            policy_version=np.full(n, self.policy_version, dtype=object),
        )
        self._decisions.append(columns)

    def close(self, *, publish: bool) -> None:
        self._decisions.close(publish=publish)
        self._outcomes.close(publish=publish)


def _text(values: pa.Array[Any] | pa.ChunkedArray[Any]) -> pa.Array[Any]:
    """A string column with "" for null (the log's "no experiment")."""
    return _array(cast("pa.ChunkedArray[Any]", pc.fill_null(values, pa.scalar("", pa.string()))))


def _array(values: pa.Array[Any] | pa.ChunkedArray[Any]) -> pa.Array[Any]:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def first_pass(
    engine: Engine,
    placement: str,
    source: pq.ParquetFile,
    columns: list[str],
    *,
    consents: Consents,
    now: Timestamp,
    sample_rows: int = SAMPLE_ROWS,
) -> CampaignBudgets | None:
    """The budgets' prices from a uniform sample of the file (at most ``sample_rows``
    rows, a row group in memory at a time); None when the placement's offers have no
    impression budget. The sample is random (seeded), not every k-th row: a file written in
    a pattern (consent on every other row, say) would bias a stride."""
    if all(engine.budget_usage(offer, now=now) is None for offer in engine.placements[placement][2]):
        return None
    total = source.metadata.num_rows
    rng = np.random.default_rng(0)
    chosen = np.sort(rng.choice(total, size=min(total, sample_rows), replace=False))
    parts, start = [], 0
    for group in range(source.metadata.num_row_groups):
        rows = source.metadata.row_group(group).num_rows
        here = chosen[(chosen >= start) & (chosen < start + rows)] - start
        if len(here):
            parts.append(source.read_row_group(group, columns=columns).take(here))
        start += rows
    sample = pa.concat_tables(parts) if parts else source.schema_arrow.empty_table()
    matrix = feature_matrix(sample, engine)
    mask = consent_matrix(sample, engine, consents)
    priced = engine.budget_prices(placement, matrix, total, consents=mask, now=now)
    return CampaignBudgets.of(priced, sample.num_rows) if priced else None


def _budget_used(engine: Engine, budgets: CampaignBudgets | None, now: Timestamp) -> dict[str, int] | None:
    """Impressions the engine's budgets counted beyond the room they had when priced."""
    if budgets is None:
        return None
    used = {}
    for offer, room in budgets.room.items():
        usage = engine.budget_usage(offer, now=now)
        assert usage is not None, offer
        used[offer] = room - max(0, usage[1] - usage[0])
    return used


def run_campaign(
    catalog: str | os.PathLike[str],
    placement: str,
    profiles: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    batch_rows: int = BATCH_ROWS,
    seed: int = 0,
    policy_state: str | os.PathLike[str] | None = None,
    log: str | os.PathLike[str] | None = None,
    now: Timestamp = None,
    id_column: str = "profile_id",
    consents: Consents = None,
    threads: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    stream: int = 0,
) -> CampaignResult:
    """Decides ``placement`` for every profile of the Parquet file ``profiles`` into ``out``.

    ``progress(rows done, rows in all)`` is called after each batch. The output appears at
    ``out`` (and the log in ``log``) only once every row is decided; a bad row stops the run
    with an InvalidInputError naming its column and its row in the file. Each profile
    draws from its own random stream (``seed``, ``stream``, id), as on Ray. When the
    placement's offers have impression budgets, a first pass prices them from a sample
    (`first_pass`) and every batch is decided at those prices, within the budgets.
    """
    if batch_rows < 1:
        raise InvalidInputError(f"batch_rows must be at least 1, got {batch_rows}")
    started = time.perf_counter()
    # Nobody reports outcomes to a campaign's engine: it keeps only about a batch of decisions.
    decider = BatchDecider(
        catalog,
        placement,
        seed=seed,
        policy_state=policy_state,
        id_column=id_column,
        consents=consents,
        now=now,
        features_hash=log is not None,
        threads=threads,
        max_pending=batch_rows,
        stream=stream,
    )
    source = pq.ParquetFile(os.fspath(profiles))
    wanted = input_columns(decider.engine, id_column, consents)
    _check_columns(source.schema_arrow, wanted, profiles)
    total = source.metadata.num_rows
    budgets = first_pass(decider.engine, placement, source, wanted, consents=consents, now=now)
    decider.prices = None if budgets is None else budgets.prices
    output = _Output(Path(out), decider.schema)
    slots = decider.engine.placements[placement][1]
    logged = None if log is None else _Log(Path(log), placement, decider.engine.policy_version, slots)
    done, ok = 0, False
    try:
        for batch in _row_groups(source, wanted, batch_rows):
            decided = decider.decide(batch, row_offset=done)
            output.write(decided)
            if logged is not None:
                logged.append(decided, _seconds(now))
            done += batch.num_rows
            if progress is not None:
                progress(done, total)
        ok = True
    finally:
        output.close(publish=ok)
        if logged is not None:
            logged.close(publish=ok)
    return CampaignResult(
        done,
        time.perf_counter() - started,
        Path(out),
        None if log is None else Path(log),
        decider.policy_state_loaded,
        budgets,
        _budget_used(decider.engine, budgets, now),
    )


def _row_groups(source: pq.ParquetFile, columns: list[str], batch_rows: int) -> Iterator[pa.RecordBatch]:
    """The file's rows in batches of at most ``batch_rows``, a row group at a time: memory holds
    one row group. (``ParquetFile.iter_batches`` in pyarrow 26 keeps about 3 MB more Arrow
    memory with every 65,536-row batch of a 32-feature file, 1.2 GB over 10M rows.)"""
    for group in range(source.metadata.num_row_groups):
        yield from source.read_row_group(group, columns=columns).to_batches(max_chunksize=batch_rows)


def _seconds(now: Timestamp) -> float:
    seconds = unix_seconds(now)
    return time.time() if seconds is None else seconds


def run_ray_campaign(
    address: str,
    catalog: str | os.PathLike[str],
    placement: str,
    profiles: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    batch_rows: int = BATCH_ROWS,
    seed: int = 0,
    policy_state: str | os.PathLike[str] | None = None,
    log: str | os.PathLike[str] | None = None,
    now: Timestamp = None,
    id_column: str = "profile_id",
    consents: Consents = None,
    concurrency: int | None = None,
    stream: int = 0,
) -> CampaignResult:
    """The same job on Ray Data: ``row groups -> map_batches(BatchDecider) -> write_parquet``.

    ``address`` is a Ray cluster's address, or "local" for a cluster on this machine (a Ray
    already initialised in this process is used as it is). ``concurrency`` actors (default:
    the cluster's CPUs) each hold one engine; their decision ids carry a per-actor tag
    (`BatchDecider`, ``unique_ids``). ``out`` becomes a directory of Parquet files; the log, if
    asked for, is written from them afterwards. Needs the ``ray`` extra. Profiles draw from
    their own streams, so the decisions are those of `run_campaign` with the same seed
    and stream (budgets aside: which profile gets a budget's last units depends on the
    order batches run in). Budgets are priced by the same first pass, and their room is
    shared through one `BudgetLedger` actor, so each holds over the whole run.
    """
    import ray
    import ray.data

    if not ray.is_initialized():
        ray.init(address=None if address == "local" else address, include_dashboard=False)
    started = time.perf_counter()
    options: dict[str, Any] = dict(
        seed=seed,
        policy_state=None if policy_state is None else os.fspath(policy_state),
        id_column=id_column,
        consents=consents,
        now=now,
        features_hash=log is not None,
        max_pending=batch_rows,
        stream=stream,
    )
    probe = BatchDecider(os.fspath(catalog), placement, **options)  # bad arguments fail here, not in an actor
    wanted = input_columns(probe.engine, id_column, consents)
    source = pq.ParquetFile(os.fspath(profiles))
    _check_columns(source.schema_arrow, wanted, profiles)
    budgets = first_pass(probe.engine, placement, source, wanted, consents=consents, now=now)
    ledger = None if budgets is None else RayLedger.start(budgets.room)
    if budgets is not None:
        options.update(prices=budgets.prices, ledger=ledger)
    workers = concurrency or max(1, int(ray.cluster_resources().get("CPU", 1)))  # type: ignore[no-untyped-call]
    # The driver plans the read from the file's footer and each actor reads its own row
    # groups. Ray Data's read_parquet (2.60) lists one file with a task and 32 footer-reading
    # actors (each a new Python process, on a 2-core machine) and reads it as one task, which
    # hands the map two blocks of 762,144 and 237,856 rows of a 1M-row file.
    metadata = source.metadata
    starts = np.cumsum([0] + [metadata.row_group(g).num_rows for g in range(metadata.num_row_groups)])
    groups = [{"row_group": g, "first_row": int(starts[g])} for g in range(metadata.num_row_groups)]
    decided = ray.data.from_items(groups, override_num_blocks=max(1, len(groups))).map_batches(
        _RowGroupDecider,
        fn_constructor_args=(os.fspath(profiles), wanted, batch_rows, os.fspath(catalog), placement),
        fn_constructor_kwargs=dict(options, unique_ids=True, threads=1),
        batch_format="pyarrow",
        batch_size=1,  # a row group per call
        compute=ray.data.ActorPoolStrategy(size=workers),
        # Each actor decides on one thread; half a logical CPU each leaves the write tasks room
        # to run when there are as many actors as CPUs.
        num_cpus=0.5,
    )
    decided.write_parquet(os.fspath(out))
    written = pds.dataset(os.fspath(out), format="parquet")
    rows = written.count_rows()
    if log is not None:
        slots = probe.engine.placements[placement][1]
        logged = _Log(Path(log), placement, probe.engine.policy_version, slots)
        ok = False
        try:
            for batch in _batches(written, batch_rows):
                logged.append(batch, _seconds(now))
            ok = True
        finally:
            logged.close(publish=ok)
    return CampaignResult(
        rows,
        time.perf_counter() - started,
        Path(out),
        None if log is None else Path(log),
        probe.policy_state_loaded,
        budgets,
        None if ledger is None else ledger.used(),
    )


class _RowGroupDecider:
    """One `BatchDecider` that reads its own input: called with a table of row-group numbers
    of the Parquet file ``profiles`` (and each group's first row in the file), it reads each
    group's ``columns`` and yields its decisions ``batch_rows`` at a time."""

    def __init__(self, profiles: str, columns: list[str], batch_rows: int, *args: Any, **kwargs: Any) -> None:
        self.decider = BatchDecider(*args, **kwargs)
        self._source = pq.ParquetFile(profiles)
        self._columns, self._batch_rows = columns, batch_rows

    def __call__(self, groups: pa.Table) -> Iterator[pa.Table]:
        numbers = groups.column("row_group").to_numpy()
        for group, first_row in zip(numbers, groups.column("first_row").to_numpy(), strict=True):
            done = int(first_row)
            table = self._source.read_row_group(int(group), columns=self._columns)
            for batch in table.to_batches(max_chunksize=self._batch_rows):
                yield pa.Table.from_batches([self.decider.decide(batch, row_offset=done)])
                done += batch.num_rows


def _batches(dataset: pds.Dataset, batch_rows: int) -> Iterator[pa.RecordBatch]:
    batches: Iterable[pa.RecordBatch] = dataset.to_batches(batch_size=batch_rows)
    yield from batches


__all__ = ["BATCH_ROWS", "CampaignResult", "input_columns", "run_campaign", "run_ray_campaign"]
