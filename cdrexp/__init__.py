"""cdrexp: a fast synthetic CDR generator and a declarative experiment runner around it."""
import os

__version__ = "0.1.0"

# cdrexp does no linear algebra, yet numpy's OpenBLAS starts a thread per core at import,
# and they spin between the few calls numpy routes to it (1-2 % of a CSV run's CPU in
# `perf`). Set here, before this package imports numpy, so that this process, the
# forkserver (which preloads numpy for the workers) and spawned children get one thread;
# a value the user set wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def generate(cfg, on_progress=None, executor=None):
    """Generate the records of ``cfg`` (a ``GeneratorConfig``); see ``cdrexp.generation``."""
    from .generation import generate as _generate
    return _generate(cfg, on_progress, executor)
