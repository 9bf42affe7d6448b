"""Sweeps inside one envelope: `sweep_budget.<key>` shared by every job of a multirun
(`envelope`), the successive-halving sweeper that allocates it (`halving`), and the planner
that picks a model size within one run's budget (`auto_size`, recording it: `size_record`)."""
