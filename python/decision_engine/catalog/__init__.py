"""The catalog: its YAML format as pydantic models, and loading it with file positions.

- `loading`: read, parse and validate a file (`load_catalog`, `parse_catalog`, `LoadedCatalog`)
- `issues`: one `CatalogIssue` per problem, all raised at once as a `CatalogError`
- `limits`: what a file may ask of the YAML loader (size, depth, alias expansion, nodes)
- `source_map`: YAML paths to line and column, core errors to file positions
- `schema`: the catalog's models (offers, placements, features, caps, experiments)
- `profiles`: the profile plane (computed features, the `events:` and `profiles:` sections)
- `triggers`: the `triggers:` section (an event, a delay, cancel-on events, quiet hours)
- `policies`: the bandit policies a placement or an experiment group can use
- `store`: where the engine's state lives (the catalog's `store:` section)
- `fields`: field types and the base model the others share
"""

from decision_engine.catalog.issues import CatalogIssue, catalog_error
from decision_engine.catalog.limits import MAX_CATALOG_BYTES, MAX_YAML_DEPTH, MAX_YAML_NODES
from decision_engine.catalog.loading import LoadedCatalog, load_catalog, parse_catalog
from decision_engine.catalog.source_map import SourceMap, locate_core_error

__all__ = [
    "MAX_CATALOG_BYTES",
    "MAX_YAML_DEPTH",
    "MAX_YAML_NODES",
    "CatalogIssue",
    "LoadedCatalog",
    "SourceMap",
    "catalog_error",
    "load_catalog",
    "locate_core_error",
    "parse_catalog",
]
