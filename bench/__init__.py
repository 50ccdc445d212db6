"""Benchmarks (`make bench`, `python -m bench`): figures and plots in bench/results/, never pass or fail.

Each scenario module says in its docstring exactly what it measures: `turns` (overhead of a turn, ours and
Agent Framework's `CosmosHistoryProvider`), `resume`, `storage`, `coldstart`, `throughput`, `router`.
"""
