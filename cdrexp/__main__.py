"""``python -m cdrexp`` and the ``cdrexp`` command: see ``cdrexp.cli.main``."""
import gc
import sys

from .cli.main import main


def run() -> None:
    code = main()
    # Everything the run wrote is closed by now. The interpreter's final garbage
    # collections over MLflow's, SQLAlchemy's and pandas' objects cost ~1.3 s of CPU, a
    # sixth of a default run (benchmarks/bench_startup.py); frozen objects are left to
    # the operating system.
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    run()
