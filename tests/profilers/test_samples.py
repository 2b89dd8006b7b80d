"""Reading py-spy speedscope files: self and total time per function, processes."""
from __future__ import annotations

import json

import pytest

from cdrexp.profilers._samples import (collapsed, import_share, load_speedscope, process_roles,
                                       short_path, split_startup, top_functions, top_text)

PARENT = 'process 10:"/venv/bin/python -m cdrexp.cli.child --config c.yaml"'
WORKER = 'process 12:"/venv/bin/python -B -c from multiprocessing.forkserver import main"'


def _doc(tmp_path):
    frames = [{"name": PARENT, "file": "", "line": 0},          # 0
              {"name": WORKER, "file": "", "line": 0},          # 1
              {"name": "main", "file": "/x/cdrexp/cli/child.py", "line": 30},       # 2
              {"name": "run_unit", "file": "/x/cdrexp/parallel/work.py", "line": 20},  # 3
              {"name": "rec", "file": "/x/cdrexp/model/r.py", "line": 5},           # 4
              {"name": "rec", "file": "/x/cdrexp/model/r.py", "line": 7},           # 5
              {"name": "sort", "file": "/v/lib/python3.11/site-packages/numpy/f.py",
               "line": 9}]                                                         # 6
    doc = {"shared": {"frames": frames}, "profiles": [
        {"type": "sampled", "name": "Process 10 Thread 10", "unit": "seconds",
         "samples": [[0, 2], [0, 2]], "weights": [0.01, 0.01]},
        {"type": "sampled", "name": "Process 12 Thread 12", "unit": "seconds",
         "samples": [[0, 1, 3, 4, 5, 6], [0, 1, 3, 4, 5], [0, 1, 3]],
         "weights": [0.01, 0.01, 0.01]}]}
    path = tmp_path / "p.json"
    path.write_text(json.dumps(doc))
    return load_speedscope(path)


def test_self_and_total_time(tmp_path):
    s = _doc(tmp_path)
    assert s.n_samples == 5 and s.seconds == pytest.approx(0.05)
    rows = {r["function"]: r for r in top_functions(s)}
    assert rows["main"]["self_s"] == pytest.approx(0.02)
    assert rows["run_unit"]["self_s"] == pytest.approx(0.01)
    assert rows["run_unit"]["total_s"] == pytest.approx(0.03)
    # recursive rec (two lines of one function) counts once per sample in total
    assert rows["rec"]["total_s"] == pytest.approx(0.02)
    assert rows["rec"]["self_s"] == pytest.approx(0.01)
    assert rows["sort"]["file"] == "numpy/f.py"


def test_processes_and_roles(tmp_path):
    s = _doc(tmp_path)
    assert s.processes[10]["samples"] == 2 and s.processes[12]["samples"] == 3
    assert s.processes[12]["parent"] == 10
    assert process_roles(s) == {10: "main", 12: "worker"}
    text = top_text(s, n=3)
    assert "5 samples, 0.05 s sampled across 2 processes" in text
    assert text.count("\n  ") >= 2 + 2 * 3


def test_collapsed_keeps_the_process_lineage(tmp_path):
    stacks = collapsed(_doc(tmp_path))
    key = next(k for k in stacks if k[-1].startswith("sort"))
    assert key[0].startswith("process 10: python -m cdrexp.cli.child")
    assert key[1].startswith("process 12:")
    assert key[2] == "run_unit (cdrexp/parallel/work.py:20)"


def test_short_path():
    assert short_path("/v/lib/python3.11/site-packages/numpy/x.py") == "numpy/x.py"
    assert short_path("/root/.pyenv/versions/3.11.7/lib/python3.11/re/__init__.py") == \
        "re/__init__.py"
    assert short_path("/work/main/cdrexp/model/r.py") == "cdrexp/model/r.py"
    assert short_path("<frozen runpy>") == "<frozen runpy>"


@pytest.mark.parametrize("path, short", [
    # `git clone .../cdrexp` gives a directory named cdrexp holding the package cdrexp
    ("/home/u/cdrexp/cdrexp/model/records.py", "cdrexp/model/records.py"),
    ("/cdrexp/cdrexp/__init__.py", "cdrexp/__init__.py"),
    ("cdrexp/cdrexp/writers/_csv.py", "cdrexp/writers/_csv.py"),
    ("/src/cdrexp/work/cdrexp/cdrexp/parallel/work.py", "cdrexp/parallel/work.py"),
    ("/tmp/cdrexp-ab-x/side-a/cdrexp/model/cells.py", "cdrexp/model/cells.py"),
    ("/home/u/cdrexp/.venv/lib/python3.11/site-packages/numpy/core/x.py",
     "numpy/core/x.py"),
    ("/home/u/cdrexp_old/model/x.py", "/home/u/cdrexp_old/model/x.py"),
])
def test_short_path_in_a_clone_named_cdrexp(path, short):
    assert short_path(path) == short


def test_short_path_of_this_checkout():
    """Wherever this suite runs from (a clone named cdrexp included), the package's
    own files are shown from the package root, once."""
    import cdrexp.model.records as records
    assert short_path(records.__file__) == "cdrexp/model/records.py"


def test_the_generation_is_split_from_start_up_and_imports(tmp_path):
    frames = [{"name": PARENT, "file": "", "line": 0},                              # 0
              {"name": "<module>", "file": "/x/cdrexp/cli/child.py", "line": 1},    # 1
              {"name": "_find_and_load", "file": "<frozen importlib._bootstrap>",
               "line": 1},                                                         # 2
              {"name": "main", "file": "/x/cdrexp/cli/child.py", "line": 30},       # 3
              {"name": "generate", "file": "/x/cdrexp/generation.py", "line": 40},  # 4
              {"name": "Thread._bootstrap", "file": "/usr/lib/python3.11/threading.py",
               "line": 9},                                                         # 5
              {"name": "write", "file": "/x/cdrexp/writers/_csv.py", "line": 3},    # 6
              {"name": "load", "file": "/v/site-packages/omegaconf/x.py", "line": 3}]  # 7
    doc = {"shared": {"frames": frames}, "profiles": [
        {"type": "sampled", "name": "Process 10 Thread 10", "unit": "seconds",
         "samples": [[0, 1, 2], [0, 1, 2], [0, 1, 3, 4, 2],   # imports, lazy ones too
                     [0, 1, 3, 7],                            # config loading: start-up
                     [0, 1, 3, 4], [0, 1, 3, 4, 6], [0]],     # the work; no frame
         "weights": [0.01] * 7},
        {"type": "sampled", "name": "Process 10 Thread 11", "unit": "seconds",
         "samples": [[0, 5, 6]], "weights": [0.01]}]}         # a thread of the work
    path = tmp_path / "p.json"
    path.write_text(json.dumps(doc))
    s = load_speedscope(path)
    work, rest = split_startup(s)
    assert (work.n_samples, rest.n_samples) == (3, 5)
    assert work.processes[10]["samples"] == 3 and rest.processes[10]["samples"] == 5
    assert import_share(s) == pytest.approx(3 / 8) and import_share(work) == 0.0
    assert all(not any(f.startswith("_find_and_load") for f in stack)
               for stack in collapsed(work))


def test_a_forked_worker_is_known_by_its_name():
    """perf sees a forked worker only as its name, and py-spy may catch it before its
    first unit: the name alone makes it a worker (the constant mirrors the executor's)."""
    from cdrexp.parallel._worker import WORKER_NAME
    from cdrexp.profilers import _samples
    from cdrexp.profilers._samples import Samples
    assert _samples.WORKER_NAME == WORKER_NAME
    samples = Samples(frames=[], stacks=[],
                      processes={1: {"cmd": "python -m cdrexp.cli.child", "parent": None},
                                 2: {"cmd": WORKER_NAME, "parent": 1}})
    assert process_roles(samples) == {1: "main", 2: "worker"}
