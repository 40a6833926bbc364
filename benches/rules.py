"""Eligibility rules as a tiny syntax tree, rendered both as engine rule text (CEL subset)
and as the equivalent polars expression, so both sides evaluate exactly the same logic.

All numbers are float32 on both sides (the engine stores every feature as float32 and so
does the benchmark DataFrame), literals included, so results agree bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce

import polars as pl


def _lit(value: float) -> pl.Expr:
    return pl.lit(value, dtype=pl.Float32)


def _number_text(value: float) -> str:
    """Exact text of a literal: whole numbers without a fraction, others by repr (round-trips)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class Expr:
    def cel(self) -> str:
        raise NotImplementedError

    def polars(self) -> pl.Expr:
        raise NotImplementedError

    def wrapped(self) -> str:
        """Rule text, parenthesised when it is compound."""
        return self.cel()


@dataclass(frozen=True)
class Feature(Expr):
    name: str

    def cel(self) -> str:
        return self.name

    def polars(self) -> pl.Expr:
        return pl.col(self.name)


@dataclass(frozen=True)
class Number(Expr):
    value: float

    def cel(self) -> str:
        return _number_text(self.value)

    def polars(self) -> pl.Expr:
        return _lit(self.value)


@dataclass(frozen=True)
class Arith(Expr):
    op: str  # + - * / %
    left: Expr
    right: Expr

    def cel(self) -> str:
        return f"{self.left.wrapped()} {self.op} {self.right.wrapped()}"

    def wrapped(self) -> str:
        return f"({self.cel()})"

    def polars(self) -> pl.Expr:
        a, b = self.left.polars(), self.right.polars()
        return {"+": a + b, "-": a - b, "*": a * b, "/": a / b, "%": a % b}[self.op]


@dataclass(frozen=True)
class Compare(Expr):
    op: str  # == != < <= > >=
    left: Expr
    right: Expr

    def cel(self) -> str:
        left = self.left.cel() if isinstance(self.left, Arith) else self.left.wrapped()
        return f"{left} {self.op} {self.right.wrapped()}"

    def polars(self) -> pl.Expr:
        a, b = self.left.polars(), self.right.polars()
        return {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[self.op]


@dataclass(frozen=True)
class Flag(Expr):
    """A bool feature (stored as 0.0 / 1.0)."""

    name: str

    def cel(self) -> str:
        return self.name

    def polars(self) -> pl.Expr:
        return pl.col(self.name) != _lit(0.0)


@dataclass(frozen=True)
class Not(Expr):
    inner: Expr

    def cel(self) -> str:
        inner = self.inner.cel()
        return f"!{inner}" if isinstance(self.inner, Flag | Feature) else f"!({inner})"

    def polars(self) -> pl.Expr:
        return ~self.inner.polars()


@dataclass(frozen=True)
class CategoryIs(Expr):
    """`name == "v"` / `name != "v"` / `name in ["a", "b"]` on a category feature."""

    name: str
    values: tuple[str, ...]
    codes: tuple[int, ...]
    negate: bool = False

    def cel(self) -> str:
        if len(self.values) == 1:
            return f'{self.name} {"!=" if self.negate else "=="} "{self.values[0]}"'
        items = ", ".join(f'"{v}"' for v in self.values)
        text = f"{self.name} in [{items}]"
        return f"!({text})" if self.negate else text

    def polars(self) -> pl.Expr:
        expr = pl.col(self.name).is_in([float(c) for c in self.codes])
        return ~expr if self.negate else expr


@dataclass(frozen=True)
class NumberIn(Expr):
    name: str
    values: tuple[float, ...]

    def cel(self) -> str:
        return f"{self.name} in [{', '.join(_number_text(v) for v in self.values)}]"

    def polars(self) -> pl.Expr:
        return pl.col(self.name).is_in([float(v) for v in self.values])


@dataclass(frozen=True)
class Logic(Expr):
    op: str  # && ||
    items: tuple[Expr, ...]

    def cel(self) -> str:
        return f" {self.op} ".join(i.wrapped() if isinstance(i, Logic) else i.cel() for i in self.items)

    def wrapped(self) -> str:
        return f"({self.cel()})"

    def polars(self) -> pl.Expr:
        exprs = [i.polars() for i in self.items]
        if self.op == "&&":
            return reduce(lambda a, b: a & b, exprs)
        return reduce(lambda a, b: a | b, exprs)


def all_of(*items: Expr) -> Expr:
    return Logic("&&", tuple(items))


def any_of(*items: Expr) -> Expr:
    return Logic("||", tuple(items))


def polars_exprs(rules: Sequence[Expr]) -> list[pl.Expr]:
    """One boolean column per rule, named rule_000, rule_001, ..."""
    return [rule.polars().alias(f"rule_{i:03d}") for i, rule in enumerate(rules)]
