"""One module per benchmark; each exposes ``BENCHMARK`` (see ``bench.core.Benchmark``).

The runner finds them by listing this package, so adding a benchmark is adding a file here.
"""
