"""Experiments: salted assignment, statistics and reports (the decision and outcome logs they
read are `decision_engine.decision_log`).

Modules: ``assignment`` (groups and layers),
``stats`` and ``sequential`` (fixed-horizon, Bayesian and always-valid inference),
``report`` (building reports), ``report_terminal`` / ``report_html`` (showing them),
``simulate`` (a realistic holdout log to try it all on).
"""
