"""The bandit policies a placement (or an experiment group) can use, as catalog models.

Every policy takes `discount` (0 < d <= 1: weight past rewards keep at each new one) and
`rewards: [min, max]` (outcomes outside are refused; the core's default is [0, 1] for
`thompson` and +-1e6 for the others);
context-free ones also take `window` (learn from the last N rewards of each arm) and
contextual ones `features` (the feature names they read; all when absent), `interactions`
(pairs of those names whose product the model also reads) and `shared` (one model over the
profile times the offers' `attributes`, so a new offer starts from offers like it). The core
encodes a contextual policy's context (a bias, numbers standardized, categories one-hot) and
checks the names.
"""

from collections.abc import Mapping
from typing import Annotated, Literal, get_args, get_origin

from pydantic import BaseModel, Field

from decision_engine.catalog.fields import Model, NonNegative, Positive, fail

__all__ = [
    "POLICY_TYPES",
    "EpsilonGreedyPolicy",
    "GaussianThompsonPolicy",
    "LinThompsonPolicy",
    "LinUcbPolicy",
    "Policy",
    "SoftmaxPolicy",
    "ThompsonPolicy",
    "Ucb1Policy",
    "normalize_policy",
]

Discount = Annotated[float, Field(gt=0, le=1)]
Window = Annotated[int, Field(ge=1)]
# [min, max]; the core checks the range and owns the default (left out of the JSON when unset)
Rewards = Annotated[tuple[float, float] | None, Field(exclude_if=lambda v: v is None)]


class _ContextFree(Model):
    discount: Discount = 1.0
    window: Window | None = None
    rewards: Rewards = None


class _Contextual(Model):
    discount: Discount = 1.0
    features: list[str] | None = Field(default=None, min_length=1)
    interactions: Annotated[list[tuple[str, str]] | None, Field(exclude_if=lambda v: v is None)] = None
    # one model over the profile times the offers' `attributes` (Vowpal Wabbit's ADF mode)
    shared: Annotated[bool, Field(exclude_if=lambda v: not v)] = False
    rewards: Rewards = None


class ThompsonPolicy(_ContextFree):
    """Beta-Bernoulli Thompson sampling with a Beta(alpha, beta) prior."""

    type: Literal["thompson"] = "thompson"
    alpha: Positive = 1.0
    beta: Positive = 1.0


class GaussianThompsonPolicy(_ContextFree):
    """Thompson sampling of a Gaussian mean, for real-valued rewards."""

    type: Literal["gaussian_thompson"]
    prior_mean: float = 0.0
    prior_strength: Positive = 1.0
    prior_variance: Positive = 1.0


class Ucb1Policy(_ContextFree):
    type: Literal["ucb1"]
    exploration: NonNegative = 1.0


class EpsilonGreedyPolicy(_ContextFree):
    type: Literal["epsilon_greedy"]
    epsilon: Annotated[float, Field(ge=0, le=1)] = 0.1


class SoftmaxPolicy(_ContextFree):
    type: Literal["softmax"]
    temperature: Positive = 0.1


class LinUcbPolicy(_Contextual):
    """Disjoint LinUCB over the profile's features (or the named subset)."""

    type: Literal["lin_ucb"]
    alpha: NonNegative = 1.0
    ridge: Positive = 1.0


class LinThompsonPolicy(_Contextual):
    """Linear Thompson sampling over the profile's features (or the named subset)."""

    type: Literal["lin_thompson"]
    scale: NonNegative = 1.0
    ridge: Positive = 1.0


# To add a policy: write its model with a `type: Literal["name"]` field and add it here
# (POLICY_TYPES, the string shorthand and the error messages follow).
Policy = Annotated[
    ThompsonPolicy
    | GaussianThompsonPolicy
    | Ucb1Policy
    | EpsilonGreedyPolicy
    | SoftmaxPolicy
    | LinUcbPolicy
    | LinThompsonPolicy,
    Field(discriminator="type"),
]


def _policy_models(tp: object) -> dict[str, type[BaseModel]]:
    if get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    models: dict[str, type[BaseModel]] = {}
    for member in get_args(tp) or (tp,):
        if isinstance(member, type) and issubclass(member, BaseModel):
            for tag in get_args(member.model_fields["type"].annotation):
                models[tag] = member
    return models


POLICY_TYPES: Mapping[str, type[BaseModel]] = _policy_models(Policy)


def normalize_policy(value: object) -> object:
    known = ", ".join(POLICY_TYPES)
    if isinstance(value, BaseModel):
        return value
    if isinstance(value, str):
        value = {"type": value}
    if not isinstance(value, Mapping):
        fail(f"policy must be a name or a mapping with a 'type' (known types: {known})")
    kind = value.get("type")
    if kind is None:
        fail(f"policy needs a 'type' (known types: {known})")
    if not isinstance(kind, str) or kind not in POLICY_TYPES:
        fail(f"unknown policy type {kind!r} (known types: {known})")
    return value
