import pytest

from cdrexp.config import GeneratorConfig, ModelConfig


@pytest.fixture
def small_cfg(tmp_path):
    """A few thousand subscribers, one day, written under a temporary directory."""
    return GeneratorConfig(subs=3000, days=1, start="2025-01-06", seed=7, workers=1,
                           out=str(tmp_path / "out"), model=ModelConfig(chunk_size=1000))
