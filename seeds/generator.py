"""Synthetic customer profiles and a known click-response model.

The profiles follow the feature schema of a catalog (by default the demo
catalog next to this file): one float32 row per customer, columns in the
catalog's feature order, categories stored as their integer code (index in the
feature's ``values`` list), bools as 0/1 and ints as whole numbers.

``ResponseModel`` is the ground truth that simulations and tests learn
against: every offer has a base logit and a weight vector over standardized
features, so the true click probability of any (profile, offer) pair is known.
``ResponseModel(kind="rich")`` adds what each offer is about: preferences driven by segment,
life stage and behaviour (`seeds.preferences` documents them), so the best offer differs much
more from one customer to the next; ``kind="basic"`` (the default) is the original model.

Example::

    rng = np.random.default_rng(7)
    profiles = generate_profiles(10_000, seed=1)
    model = ResponseModel(seed=1)
    p = model.click_probabilities(profiles)  # (10_000, n_offers)
    clicks = draw_clicks(p, rng)
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import yaml

from seeds.population import CATEGORY_VALUES, sample_columns, sigmoid
from seeds.preferences import theme_effects

__all__ = [
    "DEMO_CATALOG",
    "RESPONSE_MODELS",
    "ResponseModel",
    "draw_clicks",
    "generate_profiles",
    "load_feature_schema",
]

DEMO_CATALOG: Path = Path(__file__).resolve().parent / "demo_catalog.yaml"
"""The demo catalog shipped with the seeds."""

F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]

ResponseKind = Literal["basic", "rich"]
RESPONSE_MODELS: tuple[ResponseKind, ...] = ("basic", "rich")

FEATURE_TYPES = frozenset({"int", "float", "bool", "category"})

# Fixed seed of the reference population used to standardize features, so the
# standardization does not depend on the seed of a response model.
_REFERENCE_SEED = 20_240_601
_REFERENCE_SIZE = 50_000

# Mean click rates of the offers lie in this range; most offers sit near the
# bottom (exponent > 1 skews the ladder), a few are clearly better.
_MIN_RATE = 0.012
_MAX_RATE = 0.15
_RATE_SKEW = 1.5
# The rich model reads standardized features clipped to +-this many standard deviations.
_RICH_CLIP = 2.5
# Share of the basic model's random tastes the rich model keeps.
TASTES = 1.0
# Stored features that say when to reach a customer, not what they want: no taste reads them.
_WHEN = frozenset({"utc_offset"})


def _read_catalog(path: str | Path) -> dict[str, Any]:
    with Path(path).open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a catalog must be a YAML mapping")
    return data


def load_feature_schema(
    path: str | Path = DEMO_CATALOG, *, stored_only: bool = False
) -> list[dict[str, Any]]:
    """Return the ``features`` list of a catalog, in order.

    Each entry is a dict with ``name``, ``type`` (int, float, bool or
    category), for categories ``values``, and for a feature the catalog computes
    from events (e.g. ``visits_7d``) its ``computed`` mapping; ``stored_only``
    leaves those out (the features a customer data platform loads).

    Raises:
        ValueError: if the features section is missing or malformed.
    """
    features = _read_catalog(path).get("features")
    if not isinstance(features, list) or not features:
        raise ValueError(f"{path}: 'features' must be a non-empty list")
    schema: list[dict[str, Any]] = []
    for i, feature in enumerate(features):
        if not isinstance(feature, dict) or not isinstance(feature.get("name"), str):
            raise ValueError(f"{path}: feature #{i} needs a string 'name'")
        if feature.get("type") not in FEATURE_TYPES:
            kind = feature.get("type")
            raise ValueError(f"{path}: feature {feature['name']!r} has bad type {kind!r}")
        entry: dict[str, Any] = {"name": feature["name"], "type": feature["type"]}
        if feature.get("computed") is not None:
            if stored_only:
                continue
            entry["computed"] = feature["computed"]
        if feature["type"] == "category":
            values = feature.get("values")
            if not isinstance(values, list) or not values:
                raise ValueError(f"{path}: category feature {feature['name']!r} needs 'values'")
            entry["values"] = [str(v) for v in values]
        schema.append(entry)
    return schema


def _layout(columns: Mapping[str, F64], schema: list[dict[str, Any]]) -> F32:
    """Place generated columns into the schema's order, remapping category codes."""
    n = len(next(iter(columns.values())))
    out = np.empty((n, len(schema)), dtype=np.float32)
    for j, feature in enumerate(schema):
        name, ftype = feature["name"], feature["type"]
        if name not in columns:
            raise ValueError(f"the generator has no model for feature {name!r}")
        if (ftype == "category") != (name in CATEGORY_VALUES):
            raise ValueError(f"feature {name!r} has type {ftype!r}, the generator disagrees")
        col = columns[name]
        if ftype == "category":
            catalog_values: list[str] = feature["values"]
            missing = [v for v in CATEGORY_VALUES[name] if v not in catalog_values]
            if missing:
                raise ValueError(f"category feature {name!r} lacks values {missing}")
            remap = np.array([catalog_values.index(v) for v in CATEGORY_VALUES[name]])
            col = remap[col.astype(np.int64)].astype(np.float64)
        elif ftype == "int":
            col = np.round(col)
        elif ftype == "bool":
            col = (col != 0).astype(np.float64)
        out[:, j] = col
    return out


def generate_profiles(
    n: int, seed: int, catalog_path: str | Path = DEMO_CATALOG, *, stored_only: bool = False
) -> F32:
    """Generate ``n`` synthetic customer profiles.

    Rows are independent draws (the same seed gives the same rows for a given
    ``n``). Columns follow the catalog's feature order (only the stored
    features with ``stored_only``: the computed ones come from events); see
    the module docstring for the encoding. Features are correlated: income follows life
    stage and region, segment follows income, spend and products follow
    segment, app usage follows device and age, churn follows tenure and
    engagement.

    Returns:
        float32 array of shape (n, n_features), without NaN.

    Raises:
        ValueError: if ``n`` is negative or the catalog has a feature the
            generator cannot produce.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    schema = load_feature_schema(catalog_path, stored_only=stored_only)
    if n == 0:
        return np.empty((0, len(schema)), dtype=np.float32)
    return _layout(sample_columns(n, np.random.default_rng(seed)), schema)


def _has_window(offer: Mapping[str, Any]) -> bool:
    return offer.get("active_from") is not None or offer.get("active_to") is not None


def _assign_rates(offers: list[dict[str, Any]], rng: np.random.Generator) -> F64:
    """Spread target click rates over the offers, in a seeded random order.

    The rates form a skewed ladder from ``_MIN_RATE`` to ``_MAX_RATE``. The
    best rates go first to one offer of each placement that has none yet
    (smallest placements first), so every placement has a clear winner.
    """
    n = len(offers)
    steps = np.linspace(0.0, 1.0, n) ** _RATE_SKEW
    ladder = list(_MIN_RATE * (_MAX_RATE / _MIN_RATE) ** steps[::-1])  # best first
    placements: dict[str, list[int]] = {}
    for i, offer in enumerate(offers):
        for placement in offer.get("placements") or []:
            placements.setdefault(str(placement), []).append(i)
    rates = np.full(n, np.nan)
    stars: set[int] = set()
    for _, members in sorted(placements.items(), key=lambda kv: (len(kv[1]), kv[0])):
        if stars.isdisjoint(members):
            # Prefer offers without an active window: those may be inactive.
            always = [i for i in members if not _has_window(offers[i])]
            star = int(rng.choice(always or members))
            stars.add(star)
            rates[star] = ladder.pop(0)
    rest = np.flatnonzero(np.isnan(rates))
    rates[rest] = rng.permutation(np.array(ladder))
    return rates


class ResponseModel:
    """A known logistic click model: P(click | profile, offer).

    ``logit = base_logits[offer] + standardize(profile) @ weights[offer]``.

    Each offer gets a target mean click rate between 1.2% and 15% (most near
    2-4%, a few clearly better, at least one of them in every placement),
    assigned in a seeded random order; its weight vector has a
    few offer-specific features plus a shared engagement component (engaged
    customers click more on everything); the base logit is then calibrated so
    that the offer's mean click rate over the population equals its target.
    Offer order is the catalog's offer order.

    ``kind="rich"`` halves those random tastes and adds each offer's preferences from
    `seeds.preferences` (theme weights by group and id keywords, and per-value effects of life
    stage and segment that are not linear in their codes); the base logits are calibrated the
    same way, so every offer keeps its mean click rate and only who clicks changes.

    Attributes:
        offer_ids: offer ids in catalog order.
        feature_names: feature names in catalog order.
        feature_mean, feature_std: standardization of the (n_features,) columns.
        base_logits: (n_offers,) intercepts.
        weights: (n_offers, n_features) weights over standardized features.
        target_rates: (n_offers,) population mean click rates.
        stage_effects, segment_effects: (n_offers, 5) and (n_offers, 4) per-value logit
            effects of life stage and segment (zero in the basic model).
    """

    def __init__(
        self, catalog_path: str | Path = DEMO_CATALOG, seed: int = 0, kind: ResponseKind = "basic"
    ) -> None:
        """Build the model for the catalog's offers, deterministically from ``seed``."""
        if kind not in RESPONSE_MODELS:
            raise ValueError(f"kind must be one of {list(RESPONSE_MODELS)}, got {kind!r}")
        self.kind: ResponseKind = kind
        catalog = _read_catalog(catalog_path)
        offers = catalog.get("offers")
        if not isinstance(offers, list) or not offers:
            raise ValueError(f"{catalog_path}: 'offers' must be a non-empty list")
        self.offer_ids: list[str] = [str(o["id"]) for o in offers]
        schema = load_feature_schema(catalog_path)
        self.feature_names: list[str] = [f["name"] for f in schema]
        # The truth reads the stored features only, and not the time zone: computed ones
        # (recent visits) tell the policy when a customer was last seen, the time zone when to
        # reach them, neither what the customer wants.
        stored = np.array(
            [j for j, f in enumerate(schema) if "computed" not in f and f["name"] not in _WHEN],
            dtype=np.int64,
        )
        self._codes = {
            f["name"]: np.array([CATEGORY_VALUES[f["name"]].index(v) for v in f["values"]])
            for f in schema
            if f["type"] == "category" and f["name"] in ("life_stage", "segment")
        }

        reference = generate_profiles(_REFERENCE_SIZE, _REFERENCE_SEED, catalog_path).astype(np.float64)
        self.feature_mean: F64 = reference.mean(axis=0)
        std = reference.std(axis=0)
        self.feature_std: F64 = np.where(std > 0, std, 1.0)

        rng = np.random.default_rng([seed, 0x5EED])
        n_offers, n_features = len(self.offer_ids), len(self.feature_names)
        weights = np.zeros((n_offers, n_features))
        for i in range(n_offers):
            active = stored[rng.choice(stored.size, size=min(5, stored.size), replace=False)]
            weights[i, active] = rng.normal(0.0, 0.4, size=active.size)
        shared = {
            "app_sessions_30d": 0.15,
            "email_open_rate": 0.2,
            "churn_score": -0.15,
        }
        for name, w in shared.items():
            if name in self.feature_names:
                weights[:, self.feature_names.index(name)] += w
        self.stage_effects: F64 = np.zeros((n_offers, 5))
        self.segment_effects: F64 = np.zeros((n_offers, 4))
        if kind == "rich":
            themed, self.stage_effects, self.segment_effects = theme_effects(offers, self.feature_names)
            weights = themed + TASTES * weights
        self.weights: F64 = weights
        self.target_rates: F64 = _assign_rates(offers, rng)
        self.base_logits: F64 = np.zeros(n_offers)
        self.base_logits = self._calibrate(self._logits(reference))

    def _calibrate(self, linear: F64) -> F64:
        """Bisect each offer's intercept so its mean click rate hits the target."""
        lo = np.full(linear.shape[1], -12.0)
        hi = np.full(linear.shape[1], 4.0)
        for _ in range(50):
            mid = (lo + hi) / 2
            too_high = sigmoid(linear + mid).mean(axis=0) > self.target_rates
            hi = np.where(too_high, mid, hi)
            lo = np.where(too_high, lo, mid)
        return np.asarray((lo + hi) / 2, dtype=np.float64)

    def _category(self, x: F64, name: str) -> npt.NDArray[np.int64]:
        """The population's code (index into ``CATEGORY_VALUES[name]``) of each row."""
        codes = np.clip(x[:, self.feature_names.index(name)].astype(np.int64), 0, len(self._codes[name]) - 1)
        return np.asarray(self._codes[name][codes], dtype=np.int64)

    def _logits(self, profiles: npt.ArrayLike) -> F64:
        """(n, n_offers) logits of every offer for every row."""
        x = np.asarray(profiles, dtype=np.float64)
        z = self._standardize(x)
        if self.kind == "rich":
            # Heavy-tailed amounts (balances, spend) would make a few customers certain to
            # click; preferences saturate instead.
            z = np.clip(z, -_RICH_CLIP, _RICH_CLIP)
        logits = z @ self.weights.T + self.base_logits
        if "life_stage" in self._codes:
            logits += self.stage_effects.T[self._category(x, "life_stage")]
        if "segment" in self._codes:
            logits += self.segment_effects.T[self._category(x, "segment")]
        return np.asarray(logits, dtype=np.float64)

    def _standardize(self, profiles: npt.ArrayLike) -> F64:
        x = np.asarray(profiles, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.feature_names):
            width = len(self.feature_names)
            raise ValueError(f"profiles must have shape (n, {width}), got {x.shape}")
        return (x - self.feature_mean) / self.feature_std

    @property
    def n_offers(self) -> int:
        """Number of offers (arms)."""
        return len(self.offer_ids)

    def click_probability(self, profiles: npt.ArrayLike, offer_index: npt.ArrayLike) -> F64:
        """Return the true click probability of ``offer_index[i]`` for ``profiles[i]``.

        Args:
            profiles: (n, n_features) feature rows.
            offer_index: (n,) integer offer indices in catalog order.

        Returns:
            (n,) float64 probabilities.
        """
        logits = self._logits(profiles)
        idx = np.asarray(offer_index)
        if idx.shape != (logits.shape[0],) or not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(f"offer_index must be an integer array of shape ({logits.shape[0]},)")
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_offers):
            raise ValueError(f"offer_index out of range 0..{self.n_offers - 1}")
        return sigmoid(logits[np.arange(idx.size), idx])

    def click_probabilities(self, profiles: npt.ArrayLike) -> F64:
        """Return the true click probabilities of all offers: shape (n, n_offers)."""
        return sigmoid(self._logits(profiles))


def draw_clicks(probabilities: npt.ArrayLike, rng: np.random.Generator) -> npt.NDArray[np.bool_]:
    """Draw Bernoulli clicks with the given probabilities (any shape)."""
    p = np.asarray(probabilities, dtype=np.float64)
    return rng.random(p.shape) < p
