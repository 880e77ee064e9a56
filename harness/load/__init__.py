"""The load stage: Locust profiles derived from the spec, judged against its own numbers.

``run_load(project, LoadOptions(...), out_dir, progress)`` plans a run from a profile
(``profiles``), refuses unsafe targets (``plan``), runs Locust as subprocesses (``process``;
Locust is never imported here), and judges the raw samples (``samples``, ``thresholds``)
against the spec's performance requirements and success criteria, with a cross-check against
the simulator's traffic log (``crosscheck``). See docs/load.md.
"""

from harness.load.stage import LoadOptions, run_load

__all__ = ["LoadOptions", "run_load"]
