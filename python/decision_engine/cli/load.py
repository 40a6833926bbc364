"""`decision-engine load`: bulk-load profiles from a Parquet file, a record batch at a time.

Into a server (``--server HOST:PORT``: one UpsertProfileStream call, a message per batch) or
into an embedded state directory (``--catalog`` and ``--state-dir``: an in-process engine on
the directory, snapshotted at the end). Memory stays bounded by the batch size either way.
Every row the engine refuses is counted, the first ones printed; the exit code is 1 when any
row was refused.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from decision_engine.errors import DecisionEngineError

errors = Console(stderr=True)

SHOWN_REJECTIONS = 10  # rejections printed; all are counted
LIST_COLUMNS = ("consents", "revoked_consents", "purchases")


@dataclass
class LoadResult:
    rows: int = 0
    accepted: int = 0
    refused: int = 0
    rejected: list[tuple[int, str, str]] = field(default_factory=list)  # the first ones

    def add(self, accepted: int, refused: int, rejected: list[tuple[int, str, str]], rows: int) -> None:
        room = SHOWN_REJECTIONS - len(self.rejected)
        self.rejected += [(index + self.rows, id, message) for index, id, message in rejected[: max(room, 0)]]
        self.accepted += accepted
        self.refused += refused
        self.rows += rows


@click.command("load")
@click.argument("profiles", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--server", "address", default=None, help="HOST:PORT of a decision-engine server.")
@click.option(
    "--token",
    envvar="DECISION_ENGINE_DECISION_TOKEN",
    default=None,
    help="Bearer token the server requires: its decision or admin token "
    "(env DECISION_ENGINE_DECISION_TOKEN).",
)
@click.option(
    "--tls-ca",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="PEM root certificates: connect to the server over TLS.",
)
@click.option(
    "--catalog",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Catalog YAML of the embedded engine (with --state-dir).",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The embedded store's state directory to load into (with --catalog).",
)
@click.option("--batch-size", type=click.IntRange(min=1), default=10_000, show_default=True)
@click.option("--id-column", default="id", show_default=True, help="The column of profile ids.")
def load(
    profiles: Path,
    address: str | None,
    token: str | None,
    tls_ca: Path | None,
    catalog: Path | None,
    state_dir: Path | None,
    batch_size: int,
    id_column: str,
) -> None:
    """Load the profiles of a Parquet file (an id column, feature columns by name; a null
    leaves a value unchanged) into a server or an embedded state directory."""
    embedded = catalog is not None or state_dir is not None
    if (address is not None) == embedded or (embedded and (catalog is None or state_dir is None)):
        raise click.UsageError("give --server HOST:PORT, or --catalog FILE with --state-dir DIR")
    try:
        import pyarrow.parquet as pq

        source = pq.ParquetFile(profiles)
        if id_column not in source.schema_arrow.names:
            raise click.UsageError(f"{profiles} has no column '{id_column}' (see --id-column)")
        batches = _batches(source, batch_size, id_column)
        with _progress(f"loading {profiles.name}", source.metadata.num_rows) as advance:
            if address is not None:
                result = _to_server(address, token, tls_ca, batches, advance)
            else:
                assert catalog is not None and state_dir is not None
                result = _to_state_dir(catalog, state_dir, batches, advance)
    except (DecisionEngineError, LoadError, OSError, ValueError) as exc:  # pyarrow's are ValueErrors
        _fail(str(exc))
    _summary(result)
    if result.refused:
        sys.exit(1)


def _fail(message: str) -> None:
    errors.print(f"error: {message}", style="red", markup=False, highlight=False, soft_wrap=True)
    sys.exit(1)


class LoadError(Exception):
    """The server refused the load (its status code and message)."""


def _batches(source: Any, batch_size: int, id_column: str) -> Iterator[Any]:
    for batch in source.iter_batches(batch_size=batch_size):
        if id_column != "id":
            names = ["id" if n == id_column else n for n in batch.schema.names]
            batch = batch.rename_columns(names)
        yield batch


def _to_state_dir(
    catalog: Path, state_dir: Path, batches: Iterator[Any], advance: Callable[[int], None]
) -> LoadResult:
    from decision_engine.catalog import load_catalog
    from decision_engine.engine import Engine

    loaded = load_catalog(catalog)
    if loaded.model.store.type != "embedded":
        raise click.UsageError(f"{catalog} keeps its state in {loaded.model.store.type}: load with --server")
    engine = Engine(loaded, state_dir=state_dir)
    result = LoadResult()
    for batch in batches:
        report = engine.upsert_profiles(batch)
        result.add(report.accepted, report.refused, report.rejected, batch.num_rows)
        advance(batch.num_rows)
    engine.snapshot()
    return result


def _to_server(
    address: str,
    token: str | None,
    tls_ca: Path | None,
    batches: Iterator[Any],
    advance: Callable[[int], None],
) -> LoadResult:
    import grpc

    from decision_engine.v1 import decision_pb2 as pb
    from decision_engine.v1 import decision_pb2_grpc

    sent = LoadResult()

    def requests() -> Iterator[pb.UpsertProfilesRequest]:
        for batch in batches:
            yield pb.UpsertProfilesRequest(profiles=[_upsert(pb, row) for row in batch.to_pylist()])
            sent.rows += batch.num_rows
            advance(batch.num_rows)

    if tls_ca is not None:
        channel = grpc.secure_channel(address, grpc.ssl_channel_credentials(tls_ca.read_bytes()))
    else:
        channel = grpc.insecure_channel(address)
    metadata = [("authorization", f"Bearer {token}")] if token else None
    with channel:
        stub = decision_pb2_grpc.ProfileServiceStub(channel)
        try:
            response = stub.UpsertProfileStream(requests(), metadata=metadata)
        except grpc.RpcError as exc:  # a call's error is also a grpc.Call
            call: Any = exc
            raise LoadError(f"{address}: {call.code().name}: {call.details()}") from None
    result = LoadResult()
    rejected = [(r.index, r.id, r.message) for r in response.rejected]
    result.add(response.accepted, response.refused, rejected, sent.rows)
    return result


def _upsert(pb: Any, row: dict[str, Any]) -> Any:
    """One row of the file as a ProfileUpsert (nulls left out: the value stays unchanged)."""
    upsert = pb.ProfileUpsert(id=row.pop("id") or "")
    for name in LIST_COLUMNS:
        values = row.pop(name, None)
        if values:
            getattr(upsert, name).extend(str(v) for v in values)
    for name, value in row.items():
        if value is None:
            continue
        feature = upsert.features[name]
        if isinstance(value, bool):
            feature.flag = value
        elif isinstance(value, int | float):
            feature.number = float(value)
        else:
            feature.category = str(value)
    return upsert


def _summary(result: LoadResult) -> None:
    click.echo(f"{result.rows:,} rows: {result.accepted:,} accepted, {result.refused:,} rejected")
    for index, id, message in result.rejected:
        click.echo(f"  row {index} ({id!r}): {message}", err=True)
    if result.refused > len(result.rejected):
        click.echo(f"  ... and {result.refused - len(result.rejected):,} more rejected rows", err=True)


@contextmanager
def _progress(description: str, total: int) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr, and the callback that moves it by a batch's rows."""
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=errors) as progress:
        task = progress.add_task(description, total=total)
        yield lambda rows: progress.advance(task, rows)
