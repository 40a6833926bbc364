import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ContactKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONTACT_KIND_UNSPECIFIED: _ClassVar[ContactKind]
    CONTACT_KIND_SHOWN: _ClassVar[ContactKind]
    CONTACT_KIND_CONVERTED: _ClassVar[ContactKind]
    CONTACT_KIND_DISMISSED: _ClassVar[ContactKind]
CONTACT_KIND_UNSPECIFIED: ContactKind
CONTACT_KIND_SHOWN: ContactKind
CONTACT_KIND_CONVERTED: ContactKind
CONTACT_KIND_DISMISSED: ContactKind

class SubscribeDecisionsRequest(_message.Message):
    __slots__ = ("channel", "visibility_timeout_seconds", "max_in_flight")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    VISIBILITY_TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MAX_IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    channel: str
    visibility_timeout_seconds: float
    max_in_flight: int
    def __init__(self, channel: _Optional[str] = ..., visibility_timeout_seconds: _Optional[float] = ..., max_in_flight: _Optional[int] = ...) -> None: ...

class TriggeredDecision(_message.Message):
    __slots__ = ("decision", "trigger", "profile_id", "channel", "attempt", "decided_at")
    DECISION_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    PROFILE_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    DECIDED_AT_FIELD_NUMBER: _ClassVar[int]
    decision: Decision
    trigger: str
    profile_id: str
    channel: str
    attempt: int
    decided_at: _timestamp_pb2.Timestamp
    def __init__(self, decision: _Optional[_Union[Decision, _Mapping]] = ..., trigger: _Optional[str] = ..., profile_id: _Optional[str] = ..., channel: _Optional[str] = ..., attempt: _Optional[int] = ..., decided_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AckDecisionsRequest(_message.Message):
    __slots__ = ("decision_ids",)
    DECISION_IDS_FIELD_NUMBER: _ClassVar[int]
    decision_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, decision_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class AckDecisionsResponse(_message.Message):
    __slots__ = ("acknowledged",)
    ACKNOWLEDGED_FIELD_NUMBER: _ClassVar[int]
    acknowledged: int
    def __init__(self, acknowledged: _Optional[int] = ...) -> None: ...

class GetTriggerHistoryRequest(_message.Message):
    __slots__ = ("profile_id",)
    PROFILE_ID_FIELD_NUMBER: _ClassVar[int]
    profile_id: str
    def __init__(self, profile_id: _Optional[str] = ...) -> None: ...

class TriggerOutcome(_message.Message):
    __slots__ = ("trigger", "key", "time", "outcome", "detail", "decision_id")
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    trigger: str
    key: str
    time: _timestamp_pb2.Timestamp
    outcome: str
    detail: str
    decision_id: int
    def __init__(self, trigger: _Optional[str] = ..., key: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., outcome: _Optional[str] = ..., detail: _Optional[str] = ..., decision_id: _Optional[int] = ...) -> None: ...

class GetTriggerHistoryResponse(_message.Message):
    __slots__ = ("outcomes",)
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    outcomes: _containers.RepeatedCompositeFieldContainer[TriggerOutcome]
    def __init__(self, outcomes: _Optional[_Iterable[_Union[TriggerOutcome, _Mapping]]] = ...) -> None: ...

class ProfileUpsert(_message.Message):
    __slots__ = ("id", "features", "consents", "revoked_consents", "purchases")
    class FeaturesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: FeatureValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[FeatureValue, _Mapping]] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    CONSENTS_FIELD_NUMBER: _ClassVar[int]
    REVOKED_CONSENTS_FIELD_NUMBER: _ClassVar[int]
    PURCHASES_FIELD_NUMBER: _ClassVar[int]
    id: str
    features: _containers.MessageMap[str, FeatureValue]
    consents: _containers.RepeatedScalarFieldContainer[str]
    revoked_consents: _containers.RepeatedScalarFieldContainer[str]
    purchases: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., features: _Optional[_Mapping[str, FeatureValue]] = ..., consents: _Optional[_Iterable[str]] = ..., revoked_consents: _Optional[_Iterable[str]] = ..., purchases: _Optional[_Iterable[str]] = ...) -> None: ...

class UpsertProfilesRequest(_message.Message):
    __slots__ = ("profiles",)
    PROFILES_FIELD_NUMBER: _ClassVar[int]
    profiles: _containers.RepeatedCompositeFieldContainer[ProfileUpsert]
    def __init__(self, profiles: _Optional[_Iterable[_Union[ProfileUpsert, _Mapping]]] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("id", "profile_id", "type", "time", "properties")
    class PropertiesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: FeatureValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[FeatureValue, _Mapping]] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    PROFILE_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    id: str
    profile_id: str
    type: str
    time: _timestamp_pb2.Timestamp
    properties: _containers.MessageMap[str, FeatureValue]
    def __init__(self, id: _Optional[str] = ..., profile_id: _Optional[str] = ..., type: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., properties: _Optional[_Mapping[str, FeatureValue]] = ...) -> None: ...

class TrackEventsRequest(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[Event]
    def __init__(self, events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ...) -> None: ...

class WriteResponse(_message.Message):
    __slots__ = ("accepted", "duplicates", "rejected", "refused")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    duplicates: int
    rejected: _containers.RepeatedCompositeFieldContainer[RowError]
    refused: int
    def __init__(self, accepted: _Optional[int] = ..., duplicates: _Optional[int] = ..., rejected: _Optional[_Iterable[_Union[RowError, _Mapping]]] = ..., refused: _Optional[int] = ...) -> None: ...

class RowError(_message.Message):
    __slots__ = ("index", "id", "message")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    index: int
    id: str
    message: str
    def __init__(self, index: _Optional[int] = ..., id: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class GetProfileRequest(_message.Message):
    __slots__ = ("id", "now")
    ID_FIELD_NUMBER: _ClassVar[int]
    NOW_FIELD_NUMBER: _ClassVar[int]
    id: str
    now: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., now: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class StoredProfile(_message.Message):
    __slots__ = ("id", "features", "consents", "purchases", "history")
    class FeaturesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: FeatureValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[FeatureValue, _Mapping]] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    CONSENTS_FIELD_NUMBER: _ClassVar[int]
    PURCHASES_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    id: str
    features: _containers.MessageMap[str, FeatureValue]
    consents: _containers.RepeatedScalarFieldContainer[str]
    purchases: _containers.RepeatedScalarFieldContainer[str]
    history: _containers.RepeatedCompositeFieldContainer[Contact]
    def __init__(self, id: _Optional[str] = ..., features: _Optional[_Mapping[str, FeatureValue]] = ..., consents: _Optional[_Iterable[str]] = ..., purchases: _Optional[_Iterable[str]] = ..., history: _Optional[_Iterable[_Union[Contact, _Mapping]]] = ...) -> None: ...

class DeleteProfileRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class DeleteProfileResponse(_message.Message):
    __slots__ = ("found",)
    FOUND_FIELD_NUMBER: _ClassVar[int]
    found: bool
    def __init__(self, found: _Optional[bool] = ...) -> None: ...

class Profile(_message.Message):
    __slots__ = ("id", "features", "consents", "named_features", "history", "purchases")
    class NamedFeaturesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: FeatureValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[FeatureValue, _Mapping]] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    CONSENTS_FIELD_NUMBER: _ClassVar[int]
    NAMED_FEATURES_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    PURCHASES_FIELD_NUMBER: _ClassVar[int]
    id: str
    features: _containers.RepeatedScalarFieldContainer[float]
    consents: _containers.RepeatedScalarFieldContainer[str]
    named_features: _containers.MessageMap[str, FeatureValue]
    history: _containers.RepeatedCompositeFieldContainer[Contact]
    purchases: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., features: _Optional[_Iterable[float]] = ..., consents: _Optional[_Iterable[str]] = ..., named_features: _Optional[_Mapping[str, FeatureValue]] = ..., history: _Optional[_Iterable[_Union[Contact, _Mapping]]] = ..., purchases: _Optional[_Iterable[str]] = ...) -> None: ...

class Contact(_message.Message):
    __slots__ = ("offer_id", "channel", "time", "kind", "group")
    OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    offer_id: str
    channel: str
    time: _timestamp_pb2.Timestamp
    kind: ContactKind
    group: str
    def __init__(self, offer_id: _Optional[str] = ..., channel: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., kind: _Optional[_Union[ContactKind, str]] = ..., group: _Optional[str] = ...) -> None: ...

class FeatureValue(_message.Message):
    __slots__ = ("number", "flag", "category")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    FLAG_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    number: float
    flag: bool
    category: str
    def __init__(self, number: _Optional[float] = ..., flag: _Optional[bool] = ..., category: _Optional[str] = ...) -> None: ...

class ChosenOffer(_message.Message):
    __slots__ = ("offer_id", "slot", "score", "propensity")
    OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    SLOT_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    PROPENSITY_FIELD_NUMBER: _ClassVar[int]
    offer_id: str
    slot: int
    score: float
    propensity: float
    def __init__(self, offer_id: _Optional[str] = ..., slot: _Optional[int] = ..., score: _Optional[float] = ..., propensity: _Optional[float] = ...) -> None: ...

class Decision(_message.Message):
    __slots__ = ("decision_id", "placement", "offers", "reasons", "experiments")
    class ReasonsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    OFFERS_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENTS_FIELD_NUMBER: _ClassVar[int]
    decision_id: int
    placement: str
    offers: _containers.RepeatedCompositeFieldContainer[ChosenOffer]
    reasons: _containers.ScalarMap[str, str]
    experiments: _containers.RepeatedCompositeFieldContainer[ExperimentGroup]
    def __init__(self, decision_id: _Optional[int] = ..., placement: _Optional[str] = ..., offers: _Optional[_Iterable[_Union[ChosenOffer, _Mapping]]] = ..., reasons: _Optional[_Mapping[str, str]] = ..., experiments: _Optional[_Iterable[_Union[ExperimentGroup, _Mapping]]] = ...) -> None: ...

class ExperimentGroup(_message.Message):
    __slots__ = ("experiment", "group")
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    experiment: str
    group: str
    def __init__(self, experiment: _Optional[str] = ..., group: _Optional[str] = ...) -> None: ...

class DecideRequest(_message.Message):
    __slots__ = ("profile", "placements", "explain", "now", "events", "upsert")
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    PLACEMENTS_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    NOW_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    UPSERT_FIELD_NUMBER: _ClassVar[int]
    profile: Profile
    placements: _containers.RepeatedScalarFieldContainer[str]
    explain: bool
    now: _timestamp_pb2.Timestamp
    events: _containers.RepeatedCompositeFieldContainer[Event]
    upsert: ProfileUpsert
    def __init__(self, profile: _Optional[_Union[Profile, _Mapping]] = ..., placements: _Optional[_Iterable[str]] = ..., explain: _Optional[bool] = ..., now: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ..., upsert: _Optional[_Union[ProfileUpsert, _Mapping]] = ...) -> None: ...

class DecideResponse(_message.Message):
    __slots__ = ("decisions",)
    DECISIONS_FIELD_NUMBER: _ClassVar[int]
    decisions: _containers.RepeatedCompositeFieldContainer[Decision]
    def __init__(self, decisions: _Optional[_Iterable[_Union[Decision, _Mapping]]] = ...) -> None: ...

class DecideBatchRequest(_message.Message):
    __slots__ = ("placement", "features", "rows", "consent_channels", "consents", "now", "profile_ids", "allocate_budgets")
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    CONSENT_CHANNELS_FIELD_NUMBER: _ClassVar[int]
    CONSENTS_FIELD_NUMBER: _ClassVar[int]
    NOW_FIELD_NUMBER: _ClassVar[int]
    PROFILE_IDS_FIELD_NUMBER: _ClassVar[int]
    ALLOCATE_BUDGETS_FIELD_NUMBER: _ClassVar[int]
    placement: str
    features: _containers.RepeatedScalarFieldContainer[float]
    rows: int
    consent_channels: _containers.RepeatedScalarFieldContainer[str]
    consents: _containers.RepeatedScalarFieldContainer[bool]
    now: _timestamp_pb2.Timestamp
    profile_ids: _containers.RepeatedScalarFieldContainer[str]
    allocate_budgets: bool
    def __init__(self, placement: _Optional[str] = ..., features: _Optional[_Iterable[float]] = ..., rows: _Optional[int] = ..., consent_channels: _Optional[_Iterable[str]] = ..., consents: _Optional[_Iterable[bool]] = ..., now: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., profile_ids: _Optional[_Iterable[str]] = ..., allocate_budgets: _Optional[bool] = ...) -> None: ...

class DecideBatchResponse(_message.Message):
    __slots__ = ("placement", "rows", "slots", "decision_ids", "offer_ids", "offers", "scores", "propensities")
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    DECISION_IDS_FIELD_NUMBER: _ClassVar[int]
    OFFER_IDS_FIELD_NUMBER: _ClassVar[int]
    OFFERS_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    PROPENSITIES_FIELD_NUMBER: _ClassVar[int]
    placement: str
    rows: int
    slots: int
    decision_ids: _containers.RepeatedScalarFieldContainer[int]
    offer_ids: _containers.RepeatedScalarFieldContainer[str]
    offers: _containers.RepeatedScalarFieldContainer[int]
    scores: _containers.RepeatedScalarFieldContainer[float]
    propensities: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, placement: _Optional[str] = ..., rows: _Optional[int] = ..., slots: _Optional[int] = ..., decision_ids: _Optional[_Iterable[int]] = ..., offer_ids: _Optional[_Iterable[str]] = ..., offers: _Optional[_Iterable[int]] = ..., scores: _Optional[_Iterable[float]] = ..., propensities: _Optional[_Iterable[float]] = ...) -> None: ...

class ReportOutcomeRequest(_message.Message):
    __slots__ = ("decision_id", "offer_id", "reward", "dismissed")
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    REWARD_FIELD_NUMBER: _ClassVar[int]
    DISMISSED_FIELD_NUMBER: _ClassVar[int]
    decision_id: int
    offer_id: str
    reward: float
    dismissed: bool
    def __init__(self, decision_id: _Optional[int] = ..., offer_id: _Optional[str] = ..., reward: _Optional[float] = ..., dismissed: _Optional[bool] = ...) -> None: ...

class ReportOutcomeResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReportOutcomesResponse(_message.Message):
    __slots__ = ("accepted", "rejected", "refused")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    rejected: _containers.RepeatedCompositeFieldContainer[RejectedOutcome]
    refused: int
    def __init__(self, accepted: _Optional[int] = ..., rejected: _Optional[_Iterable[_Union[RejectedOutcome, _Mapping]]] = ..., refused: _Optional[int] = ...) -> None: ...

class RejectedOutcome(_message.Message):
    __slots__ = ("index", "decision_id", "code", "message")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    index: int
    decision_id: int
    code: str
    message: str
    def __init__(self, index: _Optional[int] = ..., decision_id: _Optional[int] = ..., code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class ReleaseRequest(_message.Message):
    __slots__ = ("decision_id",)
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    decision_id: int
    def __init__(self, decision_id: _Optional[int] = ...) -> None: ...

class ReleaseResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PingRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PingResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
