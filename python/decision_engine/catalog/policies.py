"""The bandit policies a placement (or an experiment group) can use, as catalog models.

These models hold the policies' shape only: which parameters each type takes, and their
types. The core owns every default and range: `fill_policy` asks it for the filled-in
policy, and its refusal names the parameter, so the loader points at that line.

Every policy takes `discount` (weight past rewards keep at each new one) and `rewards:
[min, max]` (outcomes outside are refused); context-free ones also take `window` (learn
from the last N rewards of each arm) and contextual ones `features` (the feature names they
read; all when absent), `interactions` (pairs of those names whose product the model also
reads) and `shared` (one model over the profile times the offers' `attributes`, so a new
offer starts from offers like it). The core encodes a contextual policy's context (a bias,
numbers standardized, categories one-hot) and checks the names.
"""

import json
from collections.abc import Mapping
from typing import Annotated, Literal, get_args, get_origin

from pydantic import BaseModel, Field
from pydantic_core import PydanticCustomError

from decision_engine import _core
from decision_engine.catalog.fields import Model, fail

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
    "fill_policy",
    "normalize_policy",
]

# A parameter left out is filled in by the core (see `fill_policy`); None is never sent.
Number = Annotated[float | None, Field(exclude_if=lambda v: v is None)]
Rewards = Annotated[tuple[float, float] | None, Field(exclude_if=lambda v: v is None)]


class _ContextFree(Model):
    discount: Number = None
    window: int | None = None
    rewards: Rewards = None


class _Contextual(Model):
    discount: Number = None
    features: Annotated[list[str] | None, Field(exclude_if=lambda v: v is None)] = None
    interactions: Annotated[list[tuple[str, str]] | None, Field(exclude_if=lambda v: v is None)] = None
    # one model over the profile times the offers' `attributes` (Vowpal Wabbit's ADF mode)
    shared: Annotated[bool | None, Field(exclude_if=lambda v: not v)] = None
    rewards: Rewards = None


class ThompsonPolicy(_ContextFree):
    """Beta-Bernoulli Thompson sampling with a Beta(alpha, beta) prior."""

    type: Literal["thompson"] = "thompson"
    alpha: Number = None
    beta: Number = None


class GaussianThompsonPolicy(_ContextFree):
    """Thompson sampling of a Gaussian mean, for real-valued rewards."""

    type: Literal["gaussian_thompson"]
    prior_mean: Number = None
    prior_strength: Number = None
    prior_variance: Number = None


class Ucb1Policy(_ContextFree):
    type: Literal["ucb1"]
    exploration: Number = None


class EpsilonGreedyPolicy(_ContextFree):
    type: Literal["epsilon_greedy"]
    epsilon: Number = None


class SoftmaxPolicy(_ContextFree):
    type: Literal["softmax"]
    temperature: Number = None


class LinUcbPolicy(_Contextual):
    """Disjoint LinUCB over the profile's features (or the named subset)."""

    type: Literal["lin_ucb"]
    alpha: Number = None
    ridge: Number = None


class LinThompsonPolicy(_Contextual):
    """Linear Thompson sampling over the profile's features (or the named subset)."""

    type: Literal["lin_thompson"]
    scale: Number = None
    ridge: Number = None


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


def fill_policy(policy: BaseModel) -> BaseModel:
    """The policy with every default filled in by the core, which also checks the ranges.
    Its refusal is a "policy_parameter" validation error whose context names the parameter."""
    try:
        filled = _core.fill_policy(policy.model_dump_json())
    except ValueError as exc:
        message, parameter = exc.args
        context = {"message": message, "parameter": parameter}
        raise PydanticCustomError("policy_parameter", "{message}", context) from None
    return type(policy).model_validate(json.loads(filled))


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
