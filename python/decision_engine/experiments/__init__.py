"""Experiments: salted assignment, the decision log, statistics and reports.

Modules: ``assignment`` (groups and layers), ``log`` (Parquet decision and outcome logs),
``stats`` and ``sequential`` (fixed-horizon, Bayesian and always-valid inference),
``report`` (building reports), ``report_terminal`` / ``report_html`` (showing them),
``simulate`` (a realistic holdout log to try it all on).
"""
