"""Type stubs of the Rust extension (kept in step by `python -m mypy.stubtest decision_engine._core`)."""

import os
from typing import final

import numpy as np
import numpy.typing as npt

__all__ = [
    "LIMITS",
    "Bandit",
    "BatchDecision",
    "CatalogError",
    "ChosenOffer",
    "Decision",
    "DecisionEngineError",
    "Engine",
    "InvalidInputError",
    "OutcomeAlreadyReportedError",
    "StorageError",
    "UnknownDecisionError",
    "UnknownOfferError",
    "UnknownPlacementError",
    "allocate",
    "check_rules",
]

LIMITS: dict[str, float]

class DecisionEngineError(Exception): ...

class CatalogError(DecisionEngineError):
    kind: str
    item: str | None
    rule_line: int | None
    rule_column: int | None
    detail: str

class InvalidInputError(DecisionEngineError): ...
class UnknownPlacementError(DecisionEngineError): ...
class UnknownOfferError(DecisionEngineError): ...
class UnknownDecisionError(DecisionEngineError): ...
class OutcomeAlreadyReportedError(DecisionEngineError): ...
class StorageError(DecisionEngineError): ...

@final
class ChosenOffer:
    @property
    def offer_id(self) -> str: ...
    @property
    def slot(self) -> int: ...
    @property
    def score(self) -> float: ...
    @property
    def propensity(self) -> float: ...

@final
class Decision:
    @property
    def decision_id(self) -> int: ...
    @property
    def placement(self) -> str: ...
    @property
    def offers(self) -> list[ChosenOffer]: ...
    @property
    def reasons(self) -> dict[str, str]: ...
    @property
    def offer_ids(self) -> list[str]: ...
    @property
    def experiments(self) -> list[tuple[str, str]]: ...
    @property
    def eligible(self) -> list[str]: ...

@final
class BatchDecision:
    @property
    def decision_ids(self) -> npt.NDArray[np.uint64]: ...
    @property
    def offers(self) -> npt.NDArray[np.int32]: ...
    @property
    def scores(self) -> npt.NDArray[np.float32]: ...
    @property
    def propensities(self) -> npt.NDArray[np.float32] | None: ...
    @property
    def groups(self) -> npt.NDArray[np.int32] | None: ...

@final
class Engine:
    def __new__(
        cls,
        catalog_json: str,
        seed: int = 0,
        max_pending: int = ...,
        state_dir: str | os.PathLike[str] | None = None,
        fsync: str = "interval",
        fsync_interval_ms: int = 100,
        snapshot_every: int = 100_000,
        attribution_window: float = ...,
        clock: str = "wall",
        max_clock_skew: float | None = None,
    ) -> Engine: ...
    @property
    def recovery(self) -> dict[str, object] | None: ...
    def snapshot(self) -> None: ...
    def replace_catalog(self, catalog_json: str) -> None: ...
    def decide(
        self,
        placement: str,
        features: npt.NDArray[np.float32],
        consents: list[str] = ...,
        now: float | None = None,
        explain: bool = False,
        profile_id: str | None = None,
        history: list[tuple[str, str, float, str, str | None, int]] = ...,
        purchases: list[str] = ...,
        exclude: list[str] = ...,
    ) -> Decision: ...
    def decide_page(
        self,
        placements: list[str],
        features: npt.NDArray[np.float32],
        consents: list[str] = ...,
        now: float | None = None,
        explain: bool = False,
        profile_id: str | None = None,
        history: list[tuple[str, str, float, str, str | None, int]] = ...,
        purchases: list[str] = ...,
        exclude: list[str] = ...,
    ) -> list[Decision]: ...
    def release(self, decision_id: int) -> None: ...
    def decide_wire(self, request: bytes, id_tag: int = 0) -> tuple[bytes, list[tuple[str, list[str]]]]: ...
    def contact_history(self, profile_id: str) -> list[tuple[str, str, float, str, str | None, int]]: ...
    def budget_usage(self, offer_id: str, now: float | None = None) -> tuple[int, int] | None: ...
    def decide_batch(
        self,
        placement: str,
        features: npt.NDArray[np.float32],
        consents: npt.NDArray[np.bool_] | None = None,
        now: float | None = None,
        threads: int | None = None,
        propensities: bool = True,
        profile_ids: list[str] | None = None,
        allocate_budgets: bool = False,
    ) -> BatchDecision: ...
    def evaluate_rules(
        self, features: npt.NDArray[np.float32], threads: int | None = None
    ) -> npt.NDArray[np.uint8]: ...
    def report_outcome(
        self, decision_id: int, reward: float, offer_id: str | None = None, dismissed: bool = False
    ) -> None: ...
    def policy_state(self, placement: str) -> list[tuple[str, float, float, float, float, float]]: ...
    def save_policy_state(self) -> str: ...
    def load_policy_state(self, json: str) -> tuple[int, int]: ...
    def take_policy_delta(self) -> str: ...
    def apply_policy_delta(self, json: str) -> tuple[int, int]: ...
    @property
    def pending_decisions(self) -> int: ...
    @property
    def feature_names(self) -> list[str]: ...
    @property
    def offer_ids(self) -> list[str]: ...
    @property
    def channels(self) -> list[str]: ...
    @property
    def consent_channels(self) -> list[str]: ...
    @property
    def experiments(self) -> list[tuple[str, list[str]]]: ...
    @property
    def placements(self) -> list[tuple[str, str, int, list[str]]]: ...

def check_rules(
    features_json: str, rules: list[tuple[str, str]]
) -> list[tuple[str | None, int | None, int | None, str]]: ...
def allocate(
    scores: npt.NDArray[np.float64], capacity: list[int], slots: int = 1, method: str = "price"
) -> npt.NDArray[np.int32]: ...

@final
class Bandit:
    def __new__(
        cls, policy: dict[str, object], n_arms: int, n_features: int = 0, seed: int = 0
    ) -> Bandit: ...
    @property
    def n_arms(self) -> int: ...
    @property
    def n_features(self) -> int: ...
    @property
    def policy(self) -> dict[str, object]: ...
    def select(
        self,
        x: npt.ArrayLike,
        slots: int = 1,
        eligible: npt.NDArray[np.bool_] | None = None,
        threads: int | None = None,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]: ...
    def action_probabilities(
        self, x: npt.ArrayLike, eligible: npt.NDArray[np.bool_] | None = None
    ) -> npt.NDArray[np.float64]: ...
    def update(
        self, x: npt.ArrayLike, arms: npt.NDArray[np.int64], rewards: npt.NDArray[np.float64]
    ) -> None: ...
    def state(self) -> dict[str, npt.NDArray[np.float64]]: ...
    def to_json(self) -> str: ...
    @staticmethod
    def from_json(json: str) -> Bandit: ...
    def save(self, path: str | os.PathLike[str]) -> None: ...
    @staticmethod
    def load(path: str | os.PathLike[str]) -> Bandit: ...
