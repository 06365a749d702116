"""The benchmark harness: suites, their runs (resumable, in parallel processes), evaluation,
hyperparameter tables and the report. ``python -m benchmarks`` is its command line."""
