"""Demo profiles as Arrow tables and Parquet files: the id, category names, consents."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from decision_engine import Engine

from seeds.generator import DEMO_CATALOG, generate_profiles


def profiles_table(engine: Engine, n: int, seed: int, *, first_id: int = 0) -> pa.Table:
    """``n`` demo profiles (``generate_profiles``) by column name, categories as their names,
    ids ``p<first_id>...`` and an ``email_ok`` consent column (every other profile)."""
    matrix = generate_profiles(n, seed, DEMO_CATALOG)
    columns: dict[str, pa.Array] = {"profile_id": pa.array([f"p{i}" for i in range(first_id, first_id + n)])}
    for j, feature in enumerate(engine.catalog.model.features):
        values = matrix[:, j]
        if feature.values:
            columns[feature.name] = pa.array(np.asarray(feature.values)[values.astype(np.int64)])
        elif feature.type == "bool":
            columns[feature.name] = pa.array(values != 0)
        elif feature.type == "int":
            columns[feature.name] = pa.array(values.astype(np.int64))
        else:
            columns[feature.name] = pa.array(values)
    columns["email_ok"] = pa.array(np.arange(first_id, first_id + n) % 2 == 0)
    return pa.table(columns)


def write_profiles(path: Path, engine: Engine, n: int, *, chunk: int = 500_000, seed: int = 1) -> Path:
    """A Parquet file of ``n`` profiles, generated and written ``chunk`` rows at a time."""
    writer = None
    try:
        for start in range(0, n, chunk):
            table = profiles_table(engine, min(chunk, n - start), seed + start, first_id=start)
            writer = writer or pq.ParquetWriter(path, table.schema)
            writer.write_table(table, row_group_size=min(chunk, 131_072))
    finally:
        if writer is not None:
            writer.close()
    return path


def with_email_policy(text: str, policy: str) -> str:
    """Catalog text with email_weekly's policy (one flow mapping, or a block mapping indented
    below it) replaced by ``policy``."""
    text, count = re.subn(
        r"(- id: email_weekly\n    channel: email\n    slots: 2\n    policy:)(?: .*\n|\n(?:      .*\n)+)",
        rf"\1 {policy}\n",
        text,
    )
    assert count == 1
    return text


HOLDOUT_CATALOG = """
version: 1
features: [{name: age, type: int}]
channels: [web]
placements: [{id: hero, channel: web, slots: 1}]
offers:
  - {id: rich, placements: [hero], value: 10}
  - {id: cheap, placements: [hero], value: 1}
experiments:
  - id: universal_holdout
    layer: global
    groups: [{name: holdout, share: 0.2, treatment: default}, {name: personalized, share: 0.8}]
"""
"""One placement under a 20% universal holdout, for experiment groups in batches."""
