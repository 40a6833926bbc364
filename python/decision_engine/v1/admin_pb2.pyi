from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PlacementSummary(_message.Message):
    __slots__ = ("id", "channel", "slots", "policy", "offer_ids")
    ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    OFFER_IDS_FIELD_NUMBER: _ClassVar[int]
    id: str
    channel: str
    slots: int
    policy: str
    offer_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., channel: _Optional[str] = ..., slots: _Optional[int] = ..., policy: _Optional[str] = ..., offer_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class CatalogSummary(_message.Message):
    __slots__ = ("features", "channels", "placements", "offers", "rules")
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    PLACEMENTS_FIELD_NUMBER: _ClassVar[int]
    OFFERS_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    features: _containers.RepeatedScalarFieldContainer[str]
    channels: _containers.RepeatedScalarFieldContainer[str]
    placements: _containers.RepeatedCompositeFieldContainer[PlacementSummary]
    offers: int
    rules: int
    def __init__(self, features: _Optional[_Iterable[str]] = ..., channels: _Optional[_Iterable[str]] = ..., placements: _Optional[_Iterable[_Union[PlacementSummary, _Mapping]]] = ..., offers: _Optional[int] = ..., rules: _Optional[int] = ...) -> None: ...

class CatalogIssue(_message.Message):
    __slots__ = ("file", "line", "column", "where", "message")
    FILE_FIELD_NUMBER: _ClassVar[int]
    LINE_FIELD_NUMBER: _ClassVar[int]
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    WHERE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    file: str
    line: int
    column: int
    where: str
    message: str
    def __init__(self, file: _Optional[str] = ..., line: _Optional[int] = ..., column: _Optional[int] = ..., where: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class GetCatalogRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetCatalogResponse(_message.Message):
    __slots__ = ("source", "yaml", "summary")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    YAML_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    source: str
    yaml: str
    summary: CatalogSummary
    def __init__(self, source: _Optional[str] = ..., yaml: _Optional[str] = ..., summary: _Optional[_Union[CatalogSummary, _Mapping]] = ...) -> None: ...

class ValidateCatalogRequest(_message.Message):
    __slots__ = ("yaml", "name")
    YAML_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    yaml: str
    name: str
    def __init__(self, yaml: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class ValidateCatalogResponse(_message.Message):
    __slots__ = ("valid", "issues", "summary")
    VALID_FIELD_NUMBER: _ClassVar[int]
    ISSUES_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    issues: _containers.RepeatedCompositeFieldContainer[CatalogIssue]
    summary: CatalogSummary
    def __init__(self, valid: _Optional[bool] = ..., issues: _Optional[_Iterable[_Union[CatalogIssue, _Mapping]]] = ..., summary: _Optional[_Union[CatalogSummary, _Mapping]] = ...) -> None: ...

class ProfileSample(_message.Message):
    __slots__ = ("features", "rows")
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    features: _containers.RepeatedScalarFieldContainer[float]
    rows: int
    def __init__(self, features: _Optional[_Iterable[float]] = ..., rows: _Optional[int] = ...) -> None: ...

class ApplyCatalogRequest(_message.Message):
    __slots__ = ("yaml", "name", "dry_run", "sample")
    YAML_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_FIELD_NUMBER: _ClassVar[int]
    yaml: str
    name: str
    dry_run: bool
    sample: ProfileSample
    def __init__(self, yaml: _Optional[str] = ..., name: _Optional[str] = ..., dry_run: _Optional[bool] = ..., sample: _Optional[_Union[ProfileSample, _Mapping]] = ...) -> None: ...

class EligibilityChange(_message.Message):
    __slots__ = ("offer_id", "before", "after")
    OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    offer_id: str
    before: int
    after: int
    def __init__(self, offer_id: _Optional[str] = ..., before: _Optional[int] = ..., after: _Optional[int] = ...) -> None: ...

class ApplyCatalogResponse(_message.Message):
    __slots__ = ("applied", "summary", "sample_rows", "eligibility", "added_offers", "removed_offers")
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_ROWS_FIELD_NUMBER: _ClassVar[int]
    ELIGIBILITY_FIELD_NUMBER: _ClassVar[int]
    ADDED_OFFERS_FIELD_NUMBER: _ClassVar[int]
    REMOVED_OFFERS_FIELD_NUMBER: _ClassVar[int]
    applied: bool
    summary: CatalogSummary
    sample_rows: int
    eligibility: _containers.RepeatedCompositeFieldContainer[EligibilityChange]
    added_offers: _containers.RepeatedScalarFieldContainer[str]
    removed_offers: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, applied: _Optional[bool] = ..., summary: _Optional[_Union[CatalogSummary, _Mapping]] = ..., sample_rows: _Optional[int] = ..., eligibility: _Optional[_Iterable[_Union[EligibilityChange, _Mapping]]] = ..., added_offers: _Optional[_Iterable[str]] = ..., removed_offers: _Optional[_Iterable[str]] = ...) -> None: ...

class GetPolicyStateRequest(_message.Message):
    __slots__ = ("placements",)
    PLACEMENTS_FIELD_NUMBER: _ClassVar[int]
    placements: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, placements: _Optional[_Iterable[str]] = ...) -> None: ...

class ArmState(_message.Message):
    __slots__ = ("offer_id", "alpha", "beta", "mean")
    OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    ALPHA_FIELD_NUMBER: _ClassVar[int]
    BETA_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    offer_id: str
    alpha: float
    beta: float
    mean: float
    def __init__(self, offer_id: _Optional[str] = ..., alpha: _Optional[float] = ..., beta: _Optional[float] = ..., mean: _Optional[float] = ...) -> None: ...

class PlacementPolicyState(_message.Message):
    __slots__ = ("placement", "arms")
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    ARMS_FIELD_NUMBER: _ClassVar[int]
    placement: str
    arms: _containers.RepeatedCompositeFieldContainer[ArmState]
    def __init__(self, placement: _Optional[str] = ..., arms: _Optional[_Iterable[_Union[ArmState, _Mapping]]] = ...) -> None: ...

class GetPolicyStateResponse(_message.Message):
    __slots__ = ("placements",)
    PLACEMENTS_FIELD_NUMBER: _ClassVar[int]
    placements: _containers.RepeatedCompositeFieldContainer[PlacementPolicyState]
    def __init__(self, placements: _Optional[_Iterable[_Union[PlacementPolicyState, _Mapping]]] = ...) -> None: ...

class GetStatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetStatsResponse(_message.Message):
    __slots__ = ("decisions", "batch_profiles", "outcomes", "rejected_outcomes", "pending_decisions", "catalog_reloads", "failed_catalog_reloads", "uptime_seconds", "offers", "placements")
    DECISIONS_FIELD_NUMBER: _ClassVar[int]
    BATCH_PROFILES_FIELD_NUMBER: _ClassVar[int]
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    REJECTED_OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    PENDING_DECISIONS_FIELD_NUMBER: _ClassVar[int]
    CATALOG_RELOADS_FIELD_NUMBER: _ClassVar[int]
    FAILED_CATALOG_RELOADS_FIELD_NUMBER: _ClassVar[int]
    UPTIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    OFFERS_FIELD_NUMBER: _ClassVar[int]
    PLACEMENTS_FIELD_NUMBER: _ClassVar[int]
    decisions: int
    batch_profiles: int
    outcomes: int
    rejected_outcomes: int
    pending_decisions: int
    catalog_reloads: int
    failed_catalog_reloads: int
    uptime_seconds: float
    offers: int
    placements: int
    def __init__(self, decisions: _Optional[int] = ..., batch_profiles: _Optional[int] = ..., outcomes: _Optional[int] = ..., rejected_outcomes: _Optional[int] = ..., pending_decisions: _Optional[int] = ..., catalog_reloads: _Optional[int] = ..., failed_catalog_reloads: _Optional[int] = ..., uptime_seconds: _Optional[float] = ..., offers: _Optional[int] = ..., placements: _Optional[int] = ...) -> None: ...
