"""One-off sweeps behind the product's defaults, kept runnable (``python -m experiments.NAME``).

Not regression suites: each answered one question once, and its answer is a decision record under
docs/decisions/, which quotes the figures it recorded (raw JSON under docs/benchmarks/). They reuse
the benchmarks' splits (``benchmarks.datasets``) so their data is the quality suite's.
"""
