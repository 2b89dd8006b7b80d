import os

import pytest

from cdrexp.config import GeneratorConfig, ModelConfig


@pytest.fixture(autouse=True, scope="session")
def _no_inherited_tracking_uri():
    """The runner honours $MLFLOW_TRACKING_URI: a developer's must not send the tests'
    runs (and every `python -m cdrexp` they start) to their store."""
    saved = os.environ.pop("MLFLOW_TRACKING_URI", None)
    yield
    if saved is not None:
        os.environ["MLFLOW_TRACKING_URI"] = saved



@pytest.fixture
def small_cfg(tmp_path):
    """A few thousand subscribers, one day, written under a temporary directory."""
    return GeneratorConfig(subs=3000, days=1, start="2025-01-06", seed=7, workers=1,
                           out=str(tmp_path / "out"), model=ModelConfig(chunk_size=1000))
