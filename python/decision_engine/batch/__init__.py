"""Batch campaigns: the engine over Arrow data, on one machine or on a cluster.

- `arrow`: `decide_arrow`, Arrow table or record batch in (anything speaking the Arrow
  PyCapsule interface: pyarrow, polars), record batch of decisions out; `feature_matrix`,
  the one place a batch becomes the core's float32 matrix;
- `decider`: `BatchDecider`, a picklable Arrow-in, Arrow-out callable holding one engine, the
  shape Ray Data's ``map_batches``, Spark's ``mapInArrow`` and Daft take;
- `campaign`: a Parquet file of profiles through the engine to a Parquet file of decisions,
  in bounded memory, in-process (`run_campaign`) or on Ray Data (`run_ray_campaign`, needs
  the ``ray`` extra).
"""

from decision_engine.batch.arrow import decide_arrow, feature_matrix, output_schema
from decision_engine.batch.decider import BatchDecider

__all__ = ["BatchDecider", "decide_arrow", "feature_matrix", "output_schema"]
