"""Field types and the base model shared by the catalog's pydantic models."""

import re
from typing import Annotated, NoReturn

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict
from pydantic_core import PydanticCustomError

__all__ = ["Delay", "Duration", "Model", "NonNegative", "Positive", "fail"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION_RE = re.compile(r"([0-9]+)([smhdw])")


def fail(message: str) -> NoReturn:
    """Raises the validation error every catalog check reports (with its location)."""
    raise PydanticCustomError("catalog", "{message}", {"message": message})


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _parse_duration(value: object, zero: bool = False) -> int:
    if isinstance(value, str) and (m := _DURATION_RE.fullmatch(value.strip())):
        if int(m[1]) > 0 or zero:
            return int(m[1]) * _UNITS[m[2]]
        fail(f"duration '{value}' must be positive")
    fail(f"invalid duration {value!r}: expected <int><s|m|h|d|w>, e.g. '30m', '7d'")


def _parse_delay(value: object) -> int:
    return _parse_duration(value, zero=True)


NonNegative = Annotated[float, Strict(), Field(ge=0, allow_inf_nan=False)]
Positive = Annotated[float, Strict(), Field(gt=0, allow_inf_nan=False)]
Duration = Annotated[int, BeforeValidator(_parse_duration)]  # seconds
Delay = Annotated[int, BeforeValidator(_parse_delay)]  # seconds, zero allowed ('0s': at once)
