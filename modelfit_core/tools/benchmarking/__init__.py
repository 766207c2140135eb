"""The benchmark suite: every installed optimizer on every installed fitting problem.

``modelfit benchmark`` (docs/benchmark.md) runs each (problem, method, seed) as a
stored fit (one study per run in one SQLite database, so an interrupted
benchmark resumes without redoing finished runs), measures the best error
against evaluations and the evaluations and seconds to each target, and writes
the raw results (CSV, JSON), a table, the COCO-style runtime ECDF figure and
convergence plots.

* :mod:`.problems`  a problem plugin made ready: recordings (generated from the ground
  truth where needed), error floor, targets, the fitter of a run
* :mod:`.methods`   methods named ``plugin`` or ``plugin:METHOD``, every installed
  single-objective optimizer by default
* :mod:`.plan`      what a benchmark runs, checked before anything is simulated
* :mod:`.runs`      one run: a stored fit, resumed or read back when it exists
* :mod:`.measures`  what a run's history says: best error by evaluation, targets reached
* :mod:`.report`    raw results (CSV/JSON), the table, two result folders compared
* :mod:`.figures`   the runtime ECDF and the convergence plots (matplotlib)
"""
