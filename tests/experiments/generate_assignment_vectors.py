"""Writes tests/data/assignment_vectors.json, the cross-language test vectors for assignment.

Run once (``python tests/experiments/generate_assignment_vectors.py``); test_assignment.py
recomputes every case, and the Rust core must reproduce the same file.
"""

from __future__ import annotations

import json
from pathlib import Path

import xxhash
from decision_engine.experiments.assignment import BASIS_POINTS, Experiment, Layer, bucket

SEPARATOR = "\x1f"


def hash64(salt: str, profile_id: str) -> int:
    """The scheme's hash written out independently of the core: XXH3 64-bit (seed 0) of the
    UTF-8 bytes of ``salt + "\\x1f" + profile_id``."""
    return xxhash.xxh3_64_intdigest((salt + SEPARATOR + profile_id).encode("utf-8"))


VECTORS = Path(__file__).resolve().parents[1] / "data" / "assignment_vectors.json"

HALF = {"control": 5000, "treatment": 5000}
HOLDOUT = {"holdout": 500, "personalized": 9500}
THREE = {"a": 3334, "b": 3333, "c": 3333}
UNEVEN = {"control": 1000, "policy_a": 4500, "policy_b": 4500}

# (salt, profile_id, groups): plain ids, unicode, empty strings, separators inside the inputs.
CASES: list[tuple[str, str, dict[str, int]]] = [
    ("universal_holdout", "p000001", HOLDOUT),
    ("universal_holdout", "p000002", HOLDOUT),
    ("universal_holdout", "p000003", HOLDOUT),
    ("universal_holdout", "p000006", HOLDOUT),
    ("universal_holdout", "p000022", HOLDOUT),
    ("universal_holdout", "customer-42", HOLDOUT),
    ("universal_holdout", "", HOLDOUT),
    ("", "p000001", HALF),
    ("", "", HALF),
    ("hero-policy-2026q1", "p000001", HALF),
    ("hero-policy-2026q1", "p000002", HALF),
    ("hero-policy-2026q1", "8c6f1f3e-3b1d-4c56-9f0e-2a8e5f6d7c10", HALF),
    ("hero-policy-2026q1", "00000000", HALF),
    ("hero-policy-2026q1", "ü", HALF),
    ("hero-policy-2026q1", "Zoë Ångström", HALF),
    ("hero-policy-2026q1", "山田太郎", HALF),
    ("hero-policy-2026q1", "🙂🚀", HALF),
    ("hero-policy-2026q1", "e\u0301", HALF),
    ("hero-policy-2026q1", "\u00e9", HALF),
    ("hero-policy-2026q1", " leading space", HALF),
    ("hero-policy-2026q1", "tab\tand\nnewline", HALF),
    ("ab", "c", THREE),
    ("a", "bc", THREE),
    ("a\x1fb", "c", THREE),
    ("a", "b\x1fc", THREE),
    ("three-way", "p000001", THREE),
    ("three-way", "p000002", THREE),
    ("three-way", "p000003", THREE),
    ("three-way", "x" * 300, THREE),
    ("sälz", "ключ", UNEVEN),
    ("email-subject", "user@example.com", UNEVEN),
    ("email-subject", "USER@EXAMPLE.COM", UNEVEN),
    ("email-subject", "1234567890123456789", UNEVEN),
]

LAYER_PROFILES = [
    "p000001",
    "p000002",
    "p000003",
    "p000004",
    "p000005",
    "p000006",
    "p000012",
    "p000021",
    "",
    "🙂",
    "山田",
]


def layer_fixture() -> Layer:
    """Two mutually exclusive experiments taking 30% and 50% of the 'web' layer; 20% left out."""
    first = Experiment.create("hero_copy", {"control": 5000, "treatment": 5000}, layer="web")
    second = Experiment.create("feed_ranker", {"control": 2000, "linucb": 8000}, layer="web")
    return Layer.allocate("web", [(first, 3000), (second, 5000)], salt="layer:web")


def build() -> dict[str, object]:
    cases = []
    for salt, profile_id, groups in CASES:
        experiment = Experiment.create("case", groups, salt=salt)
        cases.append(
            {
                "salt": salt,
                "profile_id": profile_id,
                "xxh3_64": hash64(salt, profile_id),
                "bucket": bucket(salt, profile_id),
                "groups": [{"name": n, "share_bp": p} for n, p in experiment.groups],
                "group": experiment.group_of(profile_id),
            }
        )
    layer = layer_fixture()
    layer_cases = []
    for profile_id in LAYER_PROFILES:
        found = layer.assign(profile_id)
        layer_cases.append(
            {
                "profile_id": profile_id,
                "layer_bucket": bucket(layer.salt, profile_id),
                "experiment": None if found is None else found.experiment,
                "group": None if found is None else found.group,
            }
        )
    return {
        "scheme": "bucket = xxh3_64(utf8(salt + separator + profile_id)) mod modulus; "
        "group k owns buckets [sum(share_bp[:k]), sum(share_bp[:k+1]))",
        "hash": "XXH3 64-bit, seed 0, digest as unsigned integer",
        "separator": SEPARATOR,
        "modulus": BASIS_POINTS,
        "cases": cases,
        "layer": {
            "name": layer.name,
            "salt": layer.salt,
            "slices": [{**e.to_dict(), "start": start, "end": end} for e, start, end in layer.slices],
            "cases": layer_cases,
        },
    }


if __name__ == "__main__":
    VECTORS.write_text(json.dumps(build(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {VECTORS}")
