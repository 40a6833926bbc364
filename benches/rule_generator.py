"""Random eligibility rules of realistic shapes over a feature schema.

Thresholds sit at random quantiles of a reference sample, so every clause selects a
plausible share of profiles. Shapes mirror hand-written marketing rules: thresholds,
category targeting (`==`, `!=`, `in`), bool flags, ratios and scaled sums, small int sets,
`%` on whole-number features, and their `&&` / `||` combinations.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl
from rules import (
    Arith,
    CategoryIs,
    Compare,
    Expr,
    Feature,
    Flag,
    Not,
    Number,
    NumberIn,
    all_of,
    any_of,
)

Rng = np.random.Generator
SCALES = (0.5, 3.0, 12.0, 0.01, 100.0)


def _round(value: float, whole: bool) -> float:
    """A threshold as a person would write it: whole for ints, 3 significant digits else."""
    return float(round(value)) if whole else float(f"{value:.3g}")


class RuleGenerator:
    def __init__(self, schema: list[dict[str, Any]], reference: pl.DataFrame) -> None:
        self.reference = reference
        self.ints = [f["name"] for f in schema if f["type"] == "int"]
        self.floats = [f["name"] for f in schema if f["type"] == "float"]
        self.flags = [f["name"] for f in schema if f["type"] == "bool"]
        self.categories = {f["name"]: list(f["values"]) for f in schema if f["type"] == "category"}
        if (reference.select(self.ints + self.floats).min().min_horizontal() < 0).any():
            raise ValueError("ratios and % below assume non-negative numbers")
        # Small whole-number features, for `x in [1, 2, 3]`.
        self.small_ints = [n for n in self.ints if reference[n].max() <= 12]  # type: ignore[operator]
        weighted: list[tuple[Callable[[Rng], Expr], int]] = [
            (self.threshold, 30),
            (self.category, 20),
            (self.flag, 15),
            (self.ratio, 8),
            (self.scaled, 8),
            (self.difference, 6),
            (self.int_set, 7),
            (self.modulo, 3),
            (self.between, 3),
        ]
        self.clauses = [make for make, _ in weighted]
        weights = np.array([w for _, w in weighted], dtype=float)
        self.clause_p = weights / weights.sum()

    def rule(self, rng: Rng) -> Expr:
        c = self.clause
        shape = rng.choice(6, p=[0.15, 0.3, 0.25, 0.15, 0.1, 0.05])
        if shape == 0:
            return c(rng)
        if shape == 1:
            return all_of(c(rng), c(rng))
        if shape == 2:
            return all_of(c(rng), c(rng), c(rng))
        if shape == 3:
            return all_of(any_of(c(rng), c(rng)), c(rng))
        if shape == 4:
            return any_of(c(rng), all_of(c(rng), c(rng)))
        return any_of(c(rng), c(rng))

    def clause(self, rng: Rng) -> Expr:
        """A clause that neither keeps nor drops (almost) everyone."""
        for _ in range(20):
            clause = self.clauses[rng.choice(len(self.clauses), p=self.clause_p)](rng)
            if 0.02 < self.share(clause) < 0.98:
                break
        return clause

    def share(self, expr: Expr) -> float:
        """Share of the reference profiles for which `expr` holds."""
        return float(self.reference.select(expr.polars().mean()).item())

    def _cut(self, expr: Expr, rng: Rng, whole: bool) -> float:
        values = self.reference.select(expr.polars()).to_series()
        return _round(float(values.quantile(float(rng.uniform(0.1, 0.9)))), whole)

    def _number(self, rng: Rng) -> str:
        return str(rng.choice(self.ints + self.floats))

    def _compare(self, expr: Expr, rng: Rng, whole: bool) -> Expr:
        op = str(rng.choice([">", ">=", "<", "<="]))
        return Compare(op, expr, Number(self._cut(expr, rng, whole)))

    def threshold(self, rng: Rng) -> Expr:
        name = self._number(rng)
        return self._compare(Feature(name), rng, whole=name in self.ints)

    def between(self, rng: Rng) -> Expr:
        name = str(rng.choice(self.ints))
        lo, hi = sorted(self._cut(Feature(name), rng, whole=True) for _ in range(2))
        return all_of(Compare(">=", Feature(name), Number(lo)), Compare("<", Feature(name), Number(hi + 1)))

    def category(self, rng: Rng) -> Expr:
        name = str(rng.choice(list(self.categories)))
        values = self.categories[name]
        k = int(rng.integers(1, min(3, len(values) - 1) + 1))
        codes = tuple(sorted(int(i) for i in rng.choice(len(values), size=k, replace=False)))
        return CategoryIs(name, tuple(values[i] for i in codes), codes, negate=bool(rng.random() < 0.3))

    def flag(self, rng: Rng) -> Expr:
        flag = Flag(str(rng.choice(self.flags)))
        return Not(flag) if rng.random() < 0.4 else flag

    def ratio(self, rng: Rng) -> Expr:
        """`spend_90d / (visits_90d + 1) > 300`."""
        per = Arith(
            "/",
            Feature(str(rng.choice(self.floats))),
            Arith("+", Feature(str(rng.choice(self.ints))), Number(1)),
        )
        return self._compare(per, rng, whole=False)

    def scaled(self, rng: Rng) -> Expr:
        """`income_monthly * 12 > 36000` or `a * 0.5 + b >= 900`."""
        term = Arith("*", Feature(self._number(rng)), Number(float(rng.choice(SCALES))))
        if rng.random() < 0.5:
            term = Arith("+", term, Feature(self._number(rng)))
        return self._compare(term, rng, whole=False)

    def difference(self, rng: Rng) -> Expr:
        """`balance_checking - spend_90d / 2 < 500`.

        Constant divisors are powers of two: polars divides by a scalar as a multiplication
        by its reciprocal, which is exact (same as IEEE division) only for powers of two.
        """
        a, b = rng.choice(self.floats, size=2, replace=False)
        divisor = Number(float(rng.choice([2, 4])))
        diff = Arith("-", Feature(str(a)), Arith("/", Feature(str(b)), divisor))
        return self._compare(diff, rng, whole=False)

    def int_set(self, rng: Rng) -> Expr:
        name = str(rng.choice(self.small_ints))
        top = int(self.reference[name].max())  # type: ignore[arg-type]
        k = int(rng.integers(2, 5))
        values = sorted(int(v) for v in rng.choice(min(top, 6) + 1, size=min(k, top + 1), replace=False))
        return NumberIn(name, tuple(float(v) for v in values))

    def modulo(self, rng: Rng) -> Expr:
        """`tenure_months % 12 == 0`: anniversaries and the like."""
        name = str(rng.choice(self.ints))
        k = int(rng.choice([2, 3, 7, 12]))
        return Compare("==", Arith("%", Feature(name), Number(k)), Number(int(rng.integers(k))))
