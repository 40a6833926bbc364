"""Number formatting shared by the terminal table and the HTML report; NaN prints as n/a."""

from __future__ import annotations

import math

from decision_engine.experiments.report_model import Comparison

SRM_THRESHOLD = 0.001  # sample ratio mismatch is flagged below this p-value, as is customary
DASH = "n/a"


def _finite(*values: float) -> bool:
    return all(math.isfinite(v) for v in values)


def percent(value: float, digits: int = 2, signed: bool = False) -> str:
    if not _finite(value):
        return DASH
    return f"{value:+.{digits}%}" if signed else f"{value:.{digits}%}"


def percent_interval(value: float, low: float, high: float, signed: bool = False) -> str:
    """``3.85% [3.78, 3.93]`` or, signed, ``+30.7% [+18.2, +43.2]``."""
    if not _finite(value):
        return DASH
    digits, sign = (1, "+") if signed else (2, "")
    bounds = f" [{low * 100:{sign}.{digits}f}, {high * 100:{sign}.{digits}f}]" if _finite(low, high) else ""
    return percent(value, digits, signed) + bounds


def points_interval(value: float, low: float, high: float) -> str:
    """A difference of rates in percentage points: ``+0.90 pp [+0.62, +1.19]``."""
    if not _finite(value, low, high):
        return DASH
    return f"{value * 100:+.2f} pp [{low * 100:+.2f}, {high * 100:+.2f}]"


def number_interval(value: float, low: float, high: float) -> str:
    if not _finite(value, low, high):
        return DASH
    return f"{value:+,.3f} [{low:+,.3f}, {high:+,.3f}]"


def p_value(value: float) -> str:
    if not _finite(value):
        return DASH
    return "<0.0001" if value < 1e-4 else f"{value:.4f}"


def probability(value: float) -> str:
    if not _finite(value):
        return DASH
    return ">99.99%" if value > 0.9999 else "<0.01%" if value < 1e-4 else f"{value:.2%}"


def share(observed: float, expected: float | None) -> str:
    return f"{observed:.2%}" + ("" if expected is None else f" (expected {expected:.2%})")


def p_statement(value: float) -> str:
    """``p = 0.2706`` or ``p < 0.0001``."""
    text = p_value(value)
    return f"p {text[0]} {text[1:]}" if text.startswith("<") else f"p = {text}"


def srm_verdict(p: float | None) -> str:
    if p is None:
        return "not checked (the log has no configured shares)"
    if p < SRM_THRESHOLD:
        return f"MISMATCH ({p_statement(p)}, threshold {SRM_THRESHOLD}): group sizes do not match the shares"
    return f"ok ({p_statement(p)})"


def _decimals(*values: float) -> int:
    """Decimals for a value and its interval: four significant digits of the largest."""
    largest = max((abs(v) for v in values if _finite(v)), default=0.0)
    return 0 if largest >= 1000 else 1 if largest >= 100 else 2 if largest >= 10 else 3


def number(value: float, low: float, high: float) -> tuple[str, str]:
    """A value per decision and its interval, on two lines' worth: ``5.123``, ``[4.912, 5.333]``."""
    if not _finite(value):
        return DASH, ""
    d = _decimals(value, low, high)
    bounds = f"[{low:,.{d}f}, {high:,.{d}f}]" if _finite(low, high) else ""
    return f"{value:,.{d}f}", bounds


def percent_pair(value: float, low: float, high: float, signed: bool = False) -> tuple[str, str]:
    """``percent_interval`` split into the estimate and the bracketed interval."""
    text = percent_interval(value, low, high, signed)
    head, _, tail = text.partition(" ")
    return head, tail


def verdict(comparison: Comparison, alpha: float) -> str:
    """What the conversion and value tests say together, e.g. ``wins conversions, not value``:
    significant at ``alpha`` by the fixed-horizon tests (Holm-adjusted when several comparisons
    are read together)."""

    def direction(p: float, effect: float, metric: str) -> str | None:
        if not (_finite(p, effect) and p < alpha and effect != 0):
            return None
        return ("wins " if effect > 0 else "loses ") + metric

    c = direction(comparison.p_value_adjusted, comparison.difference, "conversions")
    v = direction(comparison.value_p_value_adjusted, comparison.value_difference, "value")
    if c and v:
        return f"{c} and value" if c.split()[0] == v.split()[0] else f"{c} but {v}"
    if c:
        return f"{c}, not value"
    if v:
        return f"{v}, not conversions"
    return "no significant difference in conversions or value"


def verdict_details(comparison: Comparison, alpha: float) -> str:
    """The figures behind ``verdict``, and a warning when the always-valid test does not agree."""
    c = comparison
    text = (
        f"conversion {percent(c.relative_lift, 1, True)}, {p_statement(c.p_value_adjusted)}; "
        f"value per decision {percent(c.value_relative_lift, 1, True)}, "
        f"{p_statement(c.value_p_value_adjusted)}"
    )
    if _finite(c.p_value_adjusted) and c.p_value_adjusted < alpha <= c.always_valid_p_value_adjusted:
        text += (
            f"; the always-valid test does not confirm the conversion difference yet "
            f"({p_statement(c.always_valid_p_value_adjusted)}): if you have been watching the results, "
            "keep the experiment running"
        )
    return text
