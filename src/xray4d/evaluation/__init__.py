"""Evaluation against ground truth: metrics (:mod:`.metrics`), scoring a reconstruction file
(:mod:`.score`), the simulated cases (:mod:`.cases`), the benchmark (:mod:`.benchmark`) and
the demo, the main job end to end (:mod:`.demo`)."""
