"""Environment variables set for the length of a block (for the processes started in
it, or the libraries that read them there), then put back as they were."""
from __future__ import annotations

import contextlib
import os


@contextlib.contextmanager
def environ_set(values: dict):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
