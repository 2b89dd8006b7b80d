import os
import shutil
import subprocess

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
def small_disk(tmp_path):
    """``small_disk(mb)``: a real ext4 filesystem of ``mb`` MB on a loop device, mounted
    until the test ends (root and a loop device needed, else the test skips)."""
    mounted = []

    def mount(mb: int):
        if os.geteuid() != 0 or not shutil.which("mkfs.ext4"):
            pytest.skip("needs root and mkfs.ext4 to mount a small filesystem")
        image, mnt = tmp_path / f"disk{len(mounted)}.img", tmp_path / f"mnt{len(mounted)}"
        mnt.mkdir()
        with open(image, "wb") as fh:
            fh.truncate(mb << 20)
        subprocess.run(["mkfs.ext4", "-q", str(image)], check=True)
        if subprocess.run(["mount", "-o", "loop", str(image), str(mnt)],
                          capture_output=True).returncode:
            pytest.skip("cannot mount a loop device here")
        mounted.append(mnt)
        return mnt

    yield mount
    for mnt in mounted:
        subprocess.run(["umount", str(mnt)], check=True)


@pytest.fixture
def small_cfg(tmp_path):
    """A few thousand subscribers, one day, written under a temporary directory."""
    return GeneratorConfig(subs=3000, days=1, start="2025-01-06", seed=7, workers=1,
                           out=str(tmp_path / "out"), model=ModelConfig(chunk_size=1000))


# The quick lane, `python -m pytest -m "not slow"`, stays within ~2 minutes on 2 cores:
# besides the tests their files mark slow, these start profiled generations, servers,
# Hydra sweeps or many processes (each took 4-100 s on a loaded machine). Node id
# prefixes: a file, a test, or a parametrised test's every case.
SLOW_TESTS = (
    "tests/cli/test_bad_input.py::test_bad_command_line_as_a_process",
    "tests/cli/test_bad_input.py::test_a_read_only_working_directory_is_one_line",
    "tests/cli/test_bad_input.py::test_a_directory_where_the_store_should_be_is_one_line",
    "tests/cli/test_help.py",
    "tests/cli/test_conf.py::test_scaling_preset",
    "tests/cli/test_conf.py::test_sweep_of_the_issue_has_six_jobs",
    "tests/cli/test_conf.py::test_ci_preset_is_tiny",
    "tests/cli/test_conf.py::test_workers_preset",
    "tests/cli/test_conf.py::test_commands_in_the_same_second",
    "tests/compare/test_cli.py::test_python_dash_m_gate_end_to_end",
    "tests/compare/test_stats.py::test_interval_covers_the_true_ratio",
    "tests/model/test_population.py::test_msisdns_fill_the_whole_number_space",
    "tests/parallel/test_alloc.py",
    "tests/parallel/test_dask.py",
    "tests/parallel/test_local_generate.py",
    "tests/parallel/test_memory.py",
    "tests/profilers/test_cprofile.py",
    "tests/profilers/test_memray.py",
    "tests/profilers/test_perf.py",
    "tests/profilers/test_pyspy.py",
    "tests/tracking/test_measure.py",
    "tests/tracking/test_store.py::test_concurrent_writers_to_one_sqlite_store_all_succeed",
)


# The longest files first (minutes each on a loaded 2-core machine, most of it Python
# processes), the rest in their usual order: `-n 2 --dist loadfile` hands out whole files
# in collection order (pytest_configure below keeps it: xdist would otherwise order them
# by their number of tests), so a long file taken last would leave the other process idle
# at the end; taken first, the short ones fill in beside it.
LONGEST_FIRST = (
    "tests/test_docs.py",
    "tests/cli/test_run.py",
    "tests/ab/test_bisect.py",
    "tests/ab/test_sides.py",
    "tests/ab/test_cli.py",
    "tests/ab/test_profile.py",
    "tests/tracking/test_store.py",
    "tests/tracking/test_ui.py",
    "tests/cli/test_kill.py",
    "tests/compare/test_cli.py",
    "tests/parallel/test_dask.py",
    "tests/tracking/test_server.py",
    "tests/cli/test_bad_input.py",
    "tests/parallel/test_dask_usage.py",
    "tests/cli/test_conf.py",
    "tests/cli/test_out_dirs.py",
)


def pytest_configure(config):
    # xdist's --no-loadscope-reorder, set here so that a plain `pytest` (no xdist) runs too
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


def _file_rank(item) -> int:
    path = item.nodeid.split("::", 1)[0]
    return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.nodeid.startswith(SLOW_TESTS):
            item.add_marker(pytest.mark.slow)
    items.sort(key=_file_rank)          # stable: each file's tests keep their order
