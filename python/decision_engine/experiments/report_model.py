"""What an experiment report holds: plain dataclasses, serialisable to JSON as they are."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Comparison:
    """A group against the control. ``difference`` is in rate units (0.01 = 1 point). The
    ``*_adjusted`` p-values are Holm-adjusted over every comparison read together (the groups
    of the experiment, and the other experiments of the same report run); with one comparison
    they equal the raw ones."""

    difference: float
    difference_low: float
    difference_high: float
    relative_lift: float
    relative_low: float
    relative_high: float
    p_value: float
    always_valid_p_value: float
    sequence_low: float
    sequence_high: float
    probability_to_beat: float
    value_difference: float
    value_difference_low: float
    value_difference_high: float
    value_relative_lift: float
    value_relative_low: float
    value_relative_high: float
    value_p_value: float
    p_value_adjusted: float
    always_valid_p_value_adjusted: float
    value_p_value_adjusted: float


@dataclass(frozen=True)
class GroupResult:
    name: str
    is_control: bool
    profiles: int
    decisions: int
    conversions: int
    rate: float
    rate_low: float
    rate_high: float
    value: float
    value_per_decision: float
    value_per_decision_low: float
    value_per_decision_high: float
    design_effect: float  # of the conversion rate: its variance over that of independent decisions
    observed_share: float
    expected_share: float | None
    vs_control: Comparison | None


@dataclass(frozen=True)
class TimelinePoint:
    """Cumulative counts of one group up to the end of a time bin."""

    time: str
    group: str
    decisions: int
    conversions: int
    rate: float
    rate_low: float
    rate_high: float


@dataclass(frozen=True)
class LiftPoint:
    """Cumulative difference to control up to the end of a time bin, both kinds of interval."""

    time: str
    group: str
    difference: float
    difference_low: float
    difference_high: float
    sequence_low: float
    sequence_high: float
    always_valid_p_value: float


@dataclass(frozen=True)
class OfferResult:
    group: str
    offer_id: str
    impressions: int
    conversions: int
    rate: float
    rate_low: float
    rate_high: float
    value_per_impression: float


@dataclass(frozen=True)
class ExperimentReport:
    experiment: str
    control: str
    window: str
    alpha: float
    mixture_sd: float
    start: str
    end: str
    bin: str
    decisions: int
    outcomes_attributed: int
    srm_p_value: float | None
    groups: list[GroupResult]
    comparisons_read_together: int = 1
    timeline: list[TimelinePoint] = field(default_factory=list)
    lift_timeline: list[LiftPoint] = field(default_factory=list)
    offers: list[OfferResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def group(self, name: str) -> GroupResult:
        return next(g for g in self.groups if g.name == name)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data; NaN and infinities become None."""
        cleaned = _finite(asdict(self))
        assert isinstance(cleaned, dict)
        return cleaned


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
