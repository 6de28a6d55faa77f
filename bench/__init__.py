"""spotgrade benchmarks: `python -m bench [names...]` (or `make bench ARGS="data train"`).

Each benchmark prints a table and writes `bench/results/<name>.json` with the machine, the library
versions and the command line. Benchmarks measure and record; they never assert a speed.
"""

BENCHMARKS: tuple[str, ...] = ("data", "train", "predict", "startup", "scale", "time_to_quality")
DEFAULT_BENCHMARKS: tuple[str, ...] = ("data", "train", "predict", "startup")  # scale, time_to_quality: heavy, by name
