"""Number formatting shared by the terminal table and the HTML report; NaN prints as n/a."""

from __future__ import annotations

import math

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
