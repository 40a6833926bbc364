"""Pydantic models of the catalog format v1 (see the catalog spec).

Cross references (placement -> channel, offer -> placement, consent -> channel,
cap -> group) and unique ids are checked while `Catalog` validates, item by item, so
every error carries the location of the offending value.  Items validated on their own
skip those checks.
"""

import re
from contextvars import ContextVar
from datetime import UTC, date, datetime, time
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    ModelWrapValidatorHandler,
    PlainSerializer,
    SerializerFunctionWrapHandler,
    Strict,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from decision_engine import _core
from decision_engine.catalog.fields import Duration, NonNegative
from decision_engine.catalog.fields import Model as _Model
from decision_engine.catalog.fields import fail as _fail
from decision_engine.catalog.policies import (
    POLICY_TYPES,
    EpsilonGreedyPolicy,
    GaussianThompsonPolicy,
    LinThompsonPolicy,
    LinUcbPolicy,
    Policy,
    SoftmaxPolicy,
    ThompsonPolicy,
    Ucb1Policy,
)
from decision_engine.catalog.policies import fill_policy as _fill_policy
from decision_engine.catalog.policies import normalize_policy as _normalize_policy
from decision_engine.catalog.profiles import Computed, EventSpec, FeatureDefault, ProfilesConfig
from decision_engine.catalog.store import EmbeddedStoreConfig, RedisStoreConfig, StoreConfig
from decision_engine.catalog.triggers import Trigger

__all__ = [
    "POLICY_TYPES",
    "Budget",
    "Cap",
    "Catalog",
    "Computed",
    "ContactPolicy",
    "EmbeddedStoreConfig",
    "EpsilonGreedyPolicy",
    "EventSpec",
    "ExperimentConfig",
    "ExperimentGroup",
    "Feature",
    "GaussianThompsonPolicy",
    "LinThompsonPolicy",
    "LinUcbPolicy",
    "Offer",
    "Placement",
    "Policy",
    "ProfilesConfig",
    "RedisStoreConfig",
    "SoftmaxPolicy",
    "StoreConfig",
    "ThompsonPolicy",
    "Ucb1Policy",
]


# --- names declared and referenced while a Catalog validates ---
# kind -> names in declaration order; a kind is absent when its list could not be read,
# and references to it are then not checked (no cascade of follow-up errors).
_Scope = dict[str, dict[str, None]]
_SCOPE: ContextVar[_Scope | None] = ContextVar("catalog_scope", default=None)


def _declare(kind: str, label: str, unique: bool = True) -> AfterValidator:
    def check(value: str) -> str:
        scope = _SCOPE.get()
        names = scope.get(kind) if scope is not None else None
        if names is not None:
            if unique and value in names:
                _fail(f"duplicate {label} '{value}'")
            names[value] = None
        return value

    return AfterValidator(check)


def _refer(kind: str, label: str) -> AfterValidator:
    def check(value: str) -> str:
        scope = _SCOPE.get()
        names = scope.get(kind) if scope is not None else None
        if names is not None and value not in names:
            known = ", ".join(list(names)[:12]) or "none"
            _fail(f"unknown {label} '{value}' (known: {known})")
        return value

    return AfterValidator(check)


# --- scalar types ---
_ID_RE = re.compile(r"[A-Za-z0-9_.-]+")
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_RESERVED = frozenset({"true", "false", "null", "in"})
_TIMESTAMP_HINT = "expected ISO 8601, e.g. 2026-01-01T00:00:00Z"


def _check_id(value: str) -> str:
    if not _ID_RE.fullmatch(value):
        _fail(f"invalid id '{value}': use only letters, digits, '_', '.' and '-'")
    return value


def _check_feature_name(value: str) -> str:
    if not _NAME_RE.fullmatch(value) or value in _RESERVED:
        _fail(
            f"invalid feature name '{value}': it must be a rule identifier "
            "([A-Za-z_][A-Za-z0-9_]*, not true/false/null/in)"
        )
    return value


def _parse_timestamp(value: object) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            _fail(f"invalid timestamp '{value}': {_TIMESTAMP_HINT}")
    elif isinstance(value, date) and not isinstance(value, datetime):
        value = datetime.combine(value, time())
    if not isinstance(value, datetime):
        _fail(f"invalid timestamp {value!r}: {_TIMESTAMP_HINT}")
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _unix_seconds(value: datetime) -> float:
    return value.timestamp()


def _rule_text(value: object) -> object:
    if isinstance(value, bool):  # `rule: true` is a valid rule, YAML reads a bool
        return "true" if value else "false"
    if isinstance(value, str) and not value.strip():
        _fail("empty rule: leave 'rule' out for an always eligible offer")
    return value


Id = Annotated[str, Strict(), AfterValidator(_check_id)]
FeatureName = Annotated[str, Strict(), AfterValidator(_check_feature_name)]
Text = Annotated[str, Strict(), Field(min_length=1)]
Count = Annotated[int, Strict(), Field(ge=1)]
Timestamp = Annotated[
    datetime,  # timezone-aware (naive input is taken as UTC); unix seconds in JSON
    BeforeValidator(_parse_timestamp),
    PlainSerializer(_unix_seconds, return_type=float, when_used="json"),
]
ChannelRef = Annotated[Id, _refer("channels", "channel")]


def _non_empty(what: str) -> AfterValidator:
    # (unlike min_length, this does not also fire when items fail validation)
    def check(values: tuple[Any, ...]) -> tuple[Any, ...]:
        if not values:
            _fail(f"at least one {what} is required")
        return values

    return AfterValidator(check)


def _without(data: object, *optional: str) -> object:
    """`data` (a model's JSON) without the `optional` keys that are absent (None)."""
    if isinstance(data, dict):
        return {k: v for k, v in data.items() if not (v is None and k in optional)}
    return data


def _first_duplicate(values: tuple[str, ...]) -> str | None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            return value
        seen.add(value)
    return None


# --- catalog items ---
class Feature(_Model):
    name: Annotated[FeatureName, _declare("features", "feature name")]
    type: Literal["int", "float", "bool", "category"]
    values: tuple[Text, ...] | None = None
    # what a profile without a stored value has (a number, a bool or a category value name)
    default: FeatureDefault | None = None
    # computed from the profile's events; never written by upserts
    computed: Computed | None = None

    @model_serializer(mode="wrap")
    def _sparse(self, handler: SerializerFunctionWrapHandler) -> object:
        return _without(handler(self), "default", "computed")

    @field_validator("values")
    @classmethod
    def _unique_values(cls, values: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if values is not None and (dup := _first_duplicate(values)) is not None:
            _fail(f"duplicate category value '{dup}'")
        return values

    @model_validator(mode="after")
    def _values_match_type(self) -> Self:
        if self.type == "category" and not self.values:
            _fail(f"category feature '{self.name}' needs a non-empty 'values' list")
        if self.type != "category" and self.values is not None:
            _fail(f"only category features may have 'values' (this one is {self.type})")
        return self


class Channel(_Model):
    """A channel; ``consent`` overrides the core's default (outbound channels such as email,
    push and SMS need the profile's consent, others do not)."""

    id: Annotated[Id, _declare("channels", "channel")]
    consent: Literal["required", "not_required"] | None = None

    @model_serializer(mode="wrap")
    def _name_unless_declared(self, handler: SerializerFunctionWrapHandler) -> object:
        return self.id if self.consent is None else handler(self)


def _channel(value: object) -> object:
    """`channels:` entries are names or `{id, consent}` mappings; both become a Channel."""
    return {"id": value} if isinstance(value, str) else value


class Placement(_Model):
    id: Annotated[Id, _declare("placements", "placement id")]
    channel: ChannelRef
    slots: Count = 1
    policy: Policy = Field(default_factory=ThompsonPolicy, validate_default=True)

    @field_validator("policy", mode="before")
    @classmethod
    def _policy_shorthand(cls, value: object) -> object:
        return _normalize_policy(value)

    @field_validator("policy", mode="after")
    @classmethod
    def _policy_filled(cls, policy: BaseModel) -> BaseModel:
        return _fill_policy(policy)


class Budget(_Model):
    """At most `max` impressions (or conversions) of an offer in all per `window`."""

    max: Count
    window: Duration = 86_400
    counts: Literal["impressions", "conversions"] = "impressions"
    # even: spend at most the elapsed share of the window (plus a small burst), so a daily
    # budget lasts the day; none: first come, first served.
    pacing: Literal["even", "none"] = "even"


class Offer(_Model):
    id: Annotated[Id, _declare("offers", "offer id")]
    placements: Annotated[
        tuple[Annotated[Id, _refer("placements", "placement")], ...],
        _non_empty("placement"),
    ]
    value: NonNegative = 1.0
    weight: NonNegative = 1.0
    rule: Annotated[str, Strict(), BeforeValidator(_rule_text)] | None = None
    group: Annotated[Id, _declare("groups", "group", unique=False)] | None = None
    consent: ChannelRef | None = None
    product: Text | None = None
    active_from: Timestamp | None = None
    active_to: Timestamp | None = None
    budget: Budget | None = None
    # what the offer is, for a placement whose policy has `shared: true`: numbers, or names
    # (one-hot); the core lays them out and checks them
    attributes: dict[Text, Annotated[float, Strict()] | Annotated[str, Strict()]] = Field(
        default_factory=dict
    )

    @field_validator("placements")
    @classmethod
    def _unique_placements(cls, placements: tuple[str, ...]) -> tuple[str, ...]:
        if (dup := _first_duplicate(placements)) is not None:
            _fail(f"placement '{dup}' is listed twice")
        return placements

    @field_validator("active_to")
    @classmethod
    def _after_start(cls, active_to: datetime | None, info: ValidationInfo) -> datetime | None:
        start = info.data.get("active_from")
        if active_to is not None and start is not None and active_to <= start:
            _fail(f"active_to ({active_to.isoformat()}) must be after active_from ({start.isoformat()})")
        return active_to


class Cap(_Model):
    scope: Literal["offer", "group", "channel", "all"]
    channel: ChannelRef | None = None
    group: Annotated[Id, _refer("groups", "group")] | None = None
    max: Count
    window: Duration
    # When a shared store (Redis) cannot be reached: "open" counts the request's history and
    # what this server showed meanwhile, without the stored history; "closed" shows nothing
    # this cap governs until it is back.
    when_store_unavailable: Literal["open", "closed"] = "open"

    @model_validator(mode="after")
    def _companions(self) -> Self:
        for name in ("channel", "group"):
            present = getattr(self, name) is not None
            if self.scope == name and not present:
                _fail(f"a cap with scope '{name}' needs '{name}'")
            if self.scope != name and present:
                _fail(f"'{name}' is only allowed on caps with scope '{name}'")
        return self


class ContactPolicy(_Model):
    caps: tuple[Cap, ...] = ()
    cooldown_after_conversion: Duration | None = None
    cooldown_after_dismissal: Duration | None = None
    suppress_purchased: Annotated[bool, Strict()] = False
    max_per_group: Count | None = None


def _basis_point_share(share: float) -> float:
    try:
        _core.share_basis_points(share)  # the core owns the rule: (0, 1], one basis point steps
    except ValueError as exc:
        _fail(str(exc))
    return share


Share = Annotated[float, AfterValidator(_basis_point_share)]


class ExperimentGroup(_Model):
    name: Id
    share: Share
    # personalized: the placement's policy; default: non-personalized (highest value x weight).
    treatment: Literal["personalized", "default"] = "personalized"
    policy: Policy | None = None

    @field_validator("policy", mode="before")
    @classmethod
    def _policy_shorthand(cls, value: object) -> object:
        return None if value is None else _normalize_policy(value)

    @field_validator("policy", mode="after")
    @classmethod
    def _policy_filled(cls, policy: BaseModel | None) -> BaseModel | None:
        return None if policy is None else _fill_policy(policy)


class ExperimentConfig(_Model):
    """Profiles are split by a salted hash of their id; experiments of one layer never share
    a profile (see decision_engine.experiments.assignment)."""

    id: Id
    salt: Text | None = None
    layer: Id | None = None
    traffic: Share = 1.0
    placements: tuple[Annotated[Id, _refer("placements", "placement")], ...] | None = None
    groups: Annotated[tuple[ExperimentGroup, ...], _non_empty("group")]

    @model_validator(mode="after")
    def _shares(self) -> Self:
        try:
            _core.group_basis_points([g.share for g in self.groups])
        except ValueError as exc:
            _fail(str(exc))
        if (dup := _first_duplicate(tuple(g.name for g in self.groups))) is not None:
            _fail(f"group '{dup}' is listed twice")
        return self


class Catalog(_Model):
    version: Literal[1]
    features: tuple[Feature, ...] = ()
    channels: Annotated[tuple[Annotated[Channel, BeforeValidator(_channel)], ...], _non_empty("channel")]
    placements: Annotated[tuple[Placement, ...], _non_empty("placement")]
    offers: tuple[Offer, ...] = ()
    contact_policy: ContactPolicy | None = None
    experiments: tuple[ExperimentConfig, ...] = ()
    store: StoreConfig = Field(default_factory=EmbeddedStoreConfig)
    events: tuple[EventSpec, ...] | None = None
    profiles: ProfilesConfig | None = None
    triggers: tuple[Trigger, ...] | None = None

    @model_serializer(mode="wrap")
    def _sparse(self, handler: SerializerFunctionWrapHandler) -> object:
        return _without(handler(self), "events", "profiles", "triggers")

    @model_validator(mode="wrap")
    @classmethod
    def _with_scope(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        token = _SCOPE.set({})
        try:
            return handler(data)
        finally:
            _SCOPE.reset(token)

    @field_validator("features", "channels", "placements", "offers", mode="before")
    @classmethod
    def _open_scope(cls, value: object, info: ValidationInfo) -> object:
        if value is None:  # `offers:` with nothing under it
            value = ()
        scope = _SCOPE.get()
        if scope is not None and info.field_name and isinstance(value, list | tuple):
            scope[info.field_name] = {}
            if info.field_name == "offers":
                scope["groups"] = {}
        return value
