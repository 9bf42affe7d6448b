"""The core every other layer builds on, in plain Python (no torch, Lightning or Hydra): how a
run ends (`status`), the one-line error for bad input (`errors`), the budget keys (`keys`),
amounts and their units (`units`), the Pareto frontier (`pareto`), learning-curve laws
(`curves`), the records a run writes (`record`), what users name — files and import paths —
(`inputs`) and what this machine can hold (`machine`). One place per idea; import each from its
module."""
