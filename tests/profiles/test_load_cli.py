"""`decision-engine load`: a Parquet file of profiles into an embedded state directory (and
into a server, in test_grpc_profiles)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from click.testing import CliRunner
from decision_engine import Engine, load_catalog
from decision_engine.cli import main

from tests.profiles.conftest import PROFILE_YAML, T0


def write_profiles(path: Path, rows: int, bad: tuple[int, ...] = ()) -> Path:
    segments = ["gold" if i % 2 else "basic" for i in range(rows)]
    for i in bad:
        segments[i] = "platinum"
    table = pa.table(
        {
            "customer": [f"c{i}" for i in range(rows)],
            "age": [20 + i for i in range(rows)],
            "spend": [None if i % 3 == 0 else float(i) for i in range(rows)],
            "segment": segments,
        }
    )
    pq.write_table(table, path, row_group_size=7)
    return path


def test_load_into_a_state_dir(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(PROFILE_YAML, encoding="utf-8")
    profiles = write_profiles(tmp_path / "profiles.parquet", 25)
    state = tmp_path / "state"
    args = ["load", str(profiles), "--catalog", str(catalog), "--state-dir", str(state)]
    result = CliRunner().invoke(main, [*args, "--batch-size", "10", "--id-column", "customer"])
    assert result.exit_code == 0, result.output
    assert "25 rows: 25 accepted, 0 rejected" in result.output

    engine = Engine(load_catalog(catalog), state_dir=state, clock="simulated")
    assert engine.profile_count == 25
    c7 = engine.profile("c7", now=T0)
    assert c7 is not None
    assert (c7["features"]["age"], c7["features"]["spend"], c7["features"]["segment"]) == (27, 7.0, "gold")  # type: ignore[index]
    assert engine.profile("c9", now=T0)["features"]["spend"] == 0  # type: ignore[index]  # null: the default


def test_load_reports_rejected_rows_and_exits_1(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(PROFILE_YAML, encoding="utf-8")
    profiles = write_profiles(tmp_path / "profiles.parquet", 12, bad=(3, 11))
    state = tmp_path / "state"
    args = ["load", str(profiles), "--catalog", str(catalog), "--state-dir", str(state), "--batch-size", "5"]
    result = CliRunner().invoke(main, [*args, "--id-column", "customer"])
    assert result.exit_code == 1
    assert "12 rows: 10 accepted, 2 rejected" in result.output
    assert "row 3 ('c3')" in result.output and "row 11 ('c11')" in result.output  # indexes over the file
    assert "platinum" in result.output
    engine = Engine(load_catalog(catalog), state_dir=state, clock="simulated")
    assert engine.profile_count == 10
    assert engine.profile("c11") is None


def test_load_needs_one_destination(tmp_path: Path) -> None:
    profiles = write_profiles(tmp_path / "p.parquet", 2)
    result = CliRunner().invoke(main, ["load", str(profiles)])
    assert result.exit_code == 2
    assert "give --server HOST:PORT, or --catalog FILE with --state-dir DIR" in result.output
    missing_id = CliRunner().invoke(main, ["load", str(profiles), "--server", "127.0.0.1:1"])
    assert missing_id.exit_code == 2
    assert "no column 'id'" in missing_id.output
