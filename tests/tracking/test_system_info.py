"""system_info.json: the machine and software a run ran on."""
import re
from pathlib import Path

import pytest

from cdrexp.tracking.system import collect_system_info, git_info

ROOT = Path(__file__).resolve().parents[2]


def test_git_info_outside_a_repository_is_all_none(tmp_path):
    assert git_info(tmp_path) == {"commit": None, "branch": None, "dirty": None,
                                  "repo": None}


def test_git_info_of_the_project():
    info = git_info(ROOT)
    if info["repo"] is None:
        pytest.skip("not a git checkout (an unpacked sdist): no commit to report")
    assert re.fullmatch(r"[0-9a-f]{40}", info["commit"])
    assert isinstance(info["dirty"], bool) and info["branch"]


def test_system_info_fields():
    info = collect_system_info()
    assert info["cpu"]["model"] and info["cpu"]["logical_cores"] >= 1
    assert 1 <= info["cpu"]["usable_cores"] <= info["cpu"]["logical_cores"]
    assert info["memory"]["total_bytes"] > 2**20
    assert info["os"]["system"] and info["python"]["version"].startswith("3.")
    assert info["numpy"]["version"] and "show_config" in info["numpy"]
    assert info["packages"]["numpy"] == info["numpy"]["version"]
    assert info["packages"]["mlflow"] and info["packages"]["hydra-core"]
