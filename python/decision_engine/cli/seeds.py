"""The demo's `seeds` package (catalog, profile generator, response models).

A wheel ships `seeds` beside `decision_engine`; an editable install (`make test`,
`maturin develop`) puts only `python/` on the path, so from a source checkout the
repository root is added once, to find the same files there.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType


def seeds_module(name: str) -> ModuleType:
    """`seeds.<name>`, from the installed package or the checkout this code runs from."""
    try:
        return importlib.import_module(f"seeds.{name}")
    except ModuleNotFoundError:
        checkout = Path(__file__).resolve().parents[3]  # python/decision_engine/cli/ -> root
        if not (checkout / "seeds" / f"{name}.py").is_file():
            raise
        sys.path.append(str(checkout))
        return importlib.import_module(f"seeds.{name}")
