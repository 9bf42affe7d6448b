"""The budget in plain Python: what a run may spend (`spec`), the plan it becomes (`plan`), what
it spent (`ledger`), what the rest will cost (`forecast`, `costs`), the stop rule's decisions
(`decision`), the clock LR schedules follow (`clock`) and what a run shows of it (`display`)."""
