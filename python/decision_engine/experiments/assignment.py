"""Deterministic, salted assignment of profiles to experiment groups.

The scheme, owned by the Rust core (``_core.bucket``; test vectors in
``tests/data/assignment_vectors.json``):

``bucket(salt, profile_id) = xxh3_64(utf8(salt + "\\x1f" + profile_id)) mod 10_000``

a number of basis points in ``[0, 10_000)``. ``xxh3_64`` is XXH3 64-bit with seed 0, the
digest read as an unsigned integer; ``"\\x1f"`` (ASCII unit separator) keeps ``("ab", "c")``
and ``("a", "bc")`` apart.

**Groups.** An experiment lists groups with shares in basis points that sum to 10_000; group
``k`` owns buckets ``[sum(shares[:k]), sum(shares[:k+1]))`` of ``bucket(experiment.salt, id)``.

**Layers.** Experiments that must not share a profile (mutually exclusive ones) sit in one
layer. The layer owns a salt; ``bucket(layer.salt, id)`` picks the slice of layer traffic a
profile falls in, and each experiment of the layer owns a half-open range of that bucket. A
profile whose layer bucket falls in no range is in none of the layer's experiments. Inside
its slice, the experiment's own salt assigns the group as above, so the group split does
not depend on which slice the experiment got. Different layers use different salts, so
their assignments are independent: a profile takes part in at most one experiment per
layer, and may take part in one experiment of every layer at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from numbers import Integral

import numpy as np
import numpy.typing as npt

from decision_engine import _core
from decision_engine.errors import InvalidInputError

BASIS_POINTS: int = _core.BASIS_POINTS


def bucket(salt: str, profile_id: str) -> int:
    """The profile's bucket in basis points, ``[0, 10_000)``."""
    return _core.bucket(salt, profile_id)


def buckets(salt: str, profile_ids: Iterable[str]) -> npt.NDArray[np.int64]:
    """``bucket`` for many profiles at once."""
    return _core.buckets(salt, list(profile_ids))


def to_basis_points(shares: Sequence[float | int]) -> list[int]:
    """Shares as basis points summing to 10_000.

    Integers must already sum to 10_000. Floats must sum to 1 (within 1e-9); they are
    rounded by largest remainder, ties to the earlier group, so the sum stays exact.
    """
    if not shares:
        raise InvalidInputError("an experiment needs at least one group")
    if any(s < 0 for s in shares):
        raise InvalidInputError(f"shares must not be negative: {list(shares)}")
    if all(isinstance(s, Integral) for s in shares):
        points = [int(s) for s in shares]
        if sum(points) != BASIS_POINTS:
            raise InvalidInputError(f"basis-point shares must sum to {BASIS_POINTS}, got {sum(points)}")
        return points
    if abs(sum(float(s) for s in shares) - 1.0) > 1e-9:
        raise InvalidInputError(f"fractional shares must sum to 1, got {sum(shares)}")
    exact = [Fraction(float(s)) * BASIS_POINTS for s in shares]
    points = [int(e) for e in exact]
    by_remainder = sorted(range(len(exact)), key=lambda i: (-(exact[i] - points[i]), i))
    for i in by_remainder[: BASIS_POINTS - sum(points)]:
        points[i] += 1
    return points


@dataclass(frozen=True)
class Experiment:
    """An experiment: groups with shares (basis points) and the salt that splits them.

    ``control`` is the group others are compared with (default: the first group).
    """

    id: str
    salt: str
    groups: tuple[tuple[str, int], ...]
    layer: str = "default"
    control: str = ""

    @classmethod
    def create(
        cls,
        id: str,
        groups: Mapping[str, float | int],
        *,
        salt: str | None = None,
        layer: str = "default",
        control: str | None = None,
    ) -> Experiment:
        """``groups`` maps group name to share (basis points or fractions); salt defaults to the id."""
        names = list(groups)
        points = to_basis_points(list(groups.values()))
        chosen = names[0] if control is None else control
        return cls(id, id if salt is None else salt, tuple(zip(names, points, strict=True)), layer, chosen)

    def __post_init__(self) -> None:
        names = [name for name, _ in self.groups]
        if len(set(names)) != len(names):
            raise InvalidInputError(f"experiment '{self.id}': duplicate group names {names}")
        if sum(points for _, points in self.groups) != BASIS_POINTS:
            raise InvalidInputError(f"experiment '{self.id}': shares must sum to {BASIS_POINTS}")
        if not self.control:
            object.__setattr__(self, "control", names[0])
        if self.control not in names:
            raise InvalidInputError(f"experiment '{self.id}': control '{self.control}' is not a group")

    @property
    def shares(self) -> dict[str, float]:
        """Group name -> share as a fraction of the experiment's traffic."""
        return {name: points / BASIS_POINTS for name, points in self.groups}

    def group_of(self, profile_id: str) -> str:
        """The group of a profile that is in this experiment (its layer slice is not checked)."""
        return str(self.groups_of([profile_id])[0])

    def groups_of(self, profile_ids: Iterable[str]) -> npt.NDArray[np.str_]:
        """``group_of`` for many profiles at once (the core's bucketing)."""
        uppers = np.cumsum([points for _, points in self.groups]).tolist()
        names = np.array([name for name, _ in self.groups])
        indices = _core.group_indices(self.salt, uppers, list(profile_ids))
        if (indices < 0).any():  # the shares sum to 10_000, so every bucket has a group
            raise InvalidInputError(f"experiment '{self.id}': a bucket past its groups")
        return names[indices]

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "salt": self.salt,
            "layer": self.layer,
            "control": self.control,
            "groups": [{"name": n, "share_bp": p} for n, p in self.groups],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Experiment:
        groups = data["groups"]
        if not isinstance(groups, list):
            raise InvalidInputError("experiment 'groups' must be a list")
        pairs = tuple((str(g["name"]), int(g["share_bp"])) for g in groups)
        return cls(str(data["id"]), str(data["salt"]), pairs, str(data["layer"]), str(data["control"]))


@dataclass(frozen=True)
class Assignment:
    experiment: str
    group: str


@dataclass(frozen=True)
class Layer:
    """Mutually exclusive experiments: each owns the range ``[start, end)`` of the layer bucket."""

    name: str
    salt: str
    slices: tuple[tuple[Experiment, int, int], ...]

    def __post_init__(self) -> None:
        ordered = sorted(self.slices, key=lambda s: s[1])
        previous_end = 0
        for experiment, start, end in ordered:
            if experiment.layer != self.name:
                raise InvalidInputError(f"experiment '{experiment.id}' belongs to layer '{experiment.layer}'")
            if not 0 <= start < end <= BASIS_POINTS:
                raise InvalidInputError(f"experiment '{experiment.id}': bad slice [{start}, {end})")
            if start < previous_end:
                raise InvalidInputError(f"experiment '{experiment.id}': slice overlaps another experiment")
            previous_end = end

    @classmethod
    def allocate(
        cls, name: str, experiments: Iterable[tuple[Experiment, int]], *, salt: str | None = None
    ) -> Layer:
        """Packs experiments into consecutive slices of the given traffic (basis points), in order.

        Appending an experiment keeps the slices of the ones before it, so running
        experiments keep their profiles.
        """
        slices: list[tuple[Experiment, int, int]] = []
        start = 0
        for experiment, traffic in experiments:
            slices.append((experiment, start, start + traffic))
            start += traffic
        if start > BASIS_POINTS:
            raise InvalidInputError(f"layer '{name}': experiments take {start} > {BASIS_POINTS} basis points")
        return cls(name, f"layer:{name}" if salt is None else salt, tuple(slices))

    def assign(self, profile_id: str) -> Assignment | None:
        """The profile's experiment and group in this layer, or None if it is in none of them."""
        where = bucket(self.salt, profile_id)
        for experiment, start, end in self.slices:
            if start <= where < end:
                return Assignment(experiment.id, experiment.group_of(profile_id))
        return None


def assign_all(layers: Iterable[Layer], profile_id: str) -> dict[str, Assignment]:
    """Layer name -> the profile's assignment, for the layers whose experiments include it."""
    found = {layer.name: layer.assign(profile_id) for layer in layers}
    return {name: a for name, a in found.items() if a is not None}
