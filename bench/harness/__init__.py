"""The benchmark harness behind run.py: one module per suite (suites/), the shared
records and context (core), the Redis server, tables, plots, machine info, the report
and the correctness check."""
