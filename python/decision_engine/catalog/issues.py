"""What a catalog problem looks like: `file:LINE:COL: where: message`, all of them at once."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from decision_engine.errors import CatalogError

__all__ = ["CatalogIssue", "catalog_error"]


@dataclass(frozen=True)
class CatalogIssue:
    file: str
    line: int | None
    column: int | None
    where: str  # "offer 'id'", "placement 'id'", "feature 'name'", "channel 'name'"
    #             or "catalog"
    message: str

    def __str__(self) -> str:
        pos = "" if self.line is None else f":{self.line}:{self.column or 1}"
        return f"{self.file}{pos}: {self.where}: {self.message}"


def catalog_error(issues: Sequence[CatalogIssue]) -> CatalogError:
    """A `CatalogError` listing `issues` (sorted by position) in `.issues` too."""
    ordered = sorted(issues, key=lambda i: (i.line or 0, i.column or 0))
    err = CatalogError("\n".join(str(issue) for issue in ordered))
    cast(Any, err).issues = ordered
    return err
