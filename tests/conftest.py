"""Settings of the whole test suite."""
import os

# `make test` runs two pytest processes on two cores: one OpenMP thread each (scikit-learn's gradient boosting;
# more threads than cores spin against each other, many times slower). training.peer_search reads it too.
os.environ.setdefault("OMP_NUM_THREADS", "1")
