"""The benchmark suite's built-in fitting problems (``modelfit.problems`` entry points).

Each module defines one or two problem classes whose ``define()`` returns a
:class:`~modelfit_core.contracts.benchmark_problem.BenchmarkProblem`; see
docs/benchmark.md for what each measures. The simulations are kept short
(tens to hundreds of milliseconds, the coarsest time step the integration
allows) so that a quick run of the whole suite takes minutes.
"""
