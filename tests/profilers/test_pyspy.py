"""py-spy around a real 2-worker generation: the three views agree and cover the workers."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from cdrexp.profilers import pyspy
from cdrexp.profilers._samples import load_speedscope, process_roles

from profiler_helpers import SEED_KEYS, SUBS, load_json, profile

SVG_NS = "{http://www.w3.org/2000/svg}"
# a LocalExecutor worker runs a unit in two steps (work.start_unit), see parallel/_worker
WORKER_FUNCS = ("start_unit", "generate_records", "worker_main")


@pytest.fixture(scope="module")
def result(module_tmp):
    return profile(module_tmp, "pyspy", rate=200, top_n=1000)   # every function listed


def test_profile_ok_with_all_artifacts(result):
    assert result.status == "ok", result.message
    for name in ("flamegraph.svg", "profile.speedscope.json", "top.txt", "metadata.json"):
        assert (result.artifact_dir / name).stat().st_size > 0, name
    assert "\n" not in result.message


def test_speedscope_has_samples_from_several_processes(result):
    doc = load_json(result.artifact_dir / pyspy.SPEEDSCOPE)
    pids = {int(re.match(r"Process (\d+)", p["name"]).group(1))
            for p in doc["profiles"] if p["samples"]}
    assert len(pids) > 1
    samples = load_speedscope(result.artifact_dir / pyspy.SPEEDSCOPE)
    roles = process_roles(samples)
    assert list(roles.values()).count("worker") == 2, roles    # workers=2
    assert list(roles.values()).count("main") == 1, roles


def test_flamegraph_svg_parses_and_shows_worker_functions(result):
    root = ET.parse(result.artifact_dir / pyspy.FLAMEGRAPH).getroot()
    assert root.tag == f"{SVG_NS}svg"
    frames = root.findall(f".//{SVG_NS}g[@class='f']")
    names = [g.get("data-n") for g in frames]
    for fn in WORKER_FUNCS:
        assert any(n.startswith(fn + " (cdrexp/") for n in names), fn
    # the worker frames sit on top of worker processes of their own (forked from the
    # main one, or from a forkserver), not of the main process: main + 2 workers at least
    roots = {n.split(":")[0] for n in names if n.startswith("process ")}
    assert len(roots) >= 3, roots
    # every frame has a tooltip and a positive width
    for g in frames:
        assert g.find(f"{SVG_NS}title").text
        assert float(g.find(f"{SVG_NS}rect").get("width")) > 0


def test_top_text_lists_processes_and_functions(result):
    top = (result.artifact_dir / pyspy.TOP).read_text()
    assert "Top 1000 functions by self time" in top
    assert "Top 1000 functions by total time" in top
    assert top.count(" worker ") >= 2
    assert re.search(r"^\s+[\d.]+%\s+[\d.]+\s+[\d.]+%\s+[\d.]+\s+start_unit\s+\(cdrexp/", top,
                     re.M)


def test_the_default_views_show_the_generation_and_start_up_is_apart(result):
    """flamegraph.svg and top.txt: the generation, no import frame; the start-up and
    imports in files of their own; all of them adding up to the speedscope's samples."""
    names = [g.get("data-n") for g in ET.parse(result.artifact_dir / pyspy.FLAMEGRAPH)
             .getroot().findall(f".//{SVG_NS}g[@class='f']")]
    assert not any(n.startswith("_find_and_load") for n in names)
    top = (result.artifact_dir / pyspy.TOP).read_text()
    assert "the generation" in top.splitlines()[0] and "_find_and_load" not in top
    assert pyspy.STARTUP_TOP in top
    startup = (result.artifact_dir / pyspy.STARTUP_TOP).read_text()
    assert "_find_and_load" in startup
    ET.parse(result.artifact_dir / pyspy.STARTUP_FLAMEGRAPH)
    meta = load_json(result.artifact_dir / "metadata.json")
    assert meta["generation_samples"] + meta["startup_samples"] == meta["samples"]
    assert meta["generation_samples"] > 0
    assert result.metrics["pyspy_import_share_of_generation_view"] == 0.0
    assert 0 < result.metrics["pyspy_startup_share"] < 1


def test_metadata_has_seed_keys_samples_and_errors(result):
    meta = load_json(result.artifact_dir / "metadata.json")
    for key in SEED_KEYS:
        assert meta[key] is not None, key
    assert meta["subscribers"] == SUBS and meta["git_commit"] == "0123abc"
    assert meta["flamegraph_file"] == "flamegraph.svg"
    assert meta["flamegraph_size"] == (result.artifact_dir / "flamegraph.svg").stat().st_size
    assert meta["samples"] > 0 and meta["errors"] is not None
    assert meta["samples"] == meta["py_spy_reported_samples"]
    assert result.metrics["pyspy_samples"] == meta["samples"]


def test_missing_py_spy_is_unavailable_not_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("CDREXP_PY_SPY_BIN", str(tmp_path / "no-such-py-spy"))
    res = profile(tmp_path, "pyspy")
    assert res.status == "unavailable"
    assert "CDREXP_PY_SPY_BIN" in res.message and "\n" not in res.message
    assert not (tmp_path / "profile" / "generation_stats.json").exists()   # nothing ran


def test_no_ptrace_permission_is_unavailable(tmp_path, monkeypatch):
    """A py-spy that the kernel stops from reading the child, as a non-root user under
    Yama ptrace_scope >= 2 would see it (root here cannot reproduce the refusal)."""
    fake = tmp_path / "py-spy"
    fake.write_text("#!/bin/sh\necho 'Error: Permission denied (os error 13)' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("CDREXP_PY_SPY_BIN", str(fake))
    res = profile(tmp_path, "pyspy")
    assert res.status == "unavailable"
    assert "ptrace" in res.message and "\n" not in res.message



@pytest.mark.slow
def test_native_frames_join_python_frames_in_the_workers(module_tmp):
    """py-spy --native: named C functions of shared objects (numpy's, the interpreter's,
    libc's) under the generator's and writers' Python frames that called them. (polars'
    CSV serializer runs on polars' own threads, so it is not joined to a Python frame.)"""
    res = profile(module_tmp / "native", "pyspy", rate=200, native=True)
    if res.status == "unavailable":
        pytest.skip(res.message)
    assert res.status == "ok", res.message
    samples = load_speedscope(res.artifact_dir / pyspy.SPEEDSCOPE)
    labels = [[samples.frames[i].label for i in stack] for stack, _ in samples.stacks]
    native = re.compile(r"^[A-Za-z_]\w* \(\S+\.so[.\d]*\)$")     # "name (lib.so.N)"
    joined = [ls for ls in labels
              if any(("(cdrexp/model/" in lb or "(cdrexp/writers/" in lb)
                     and any(native.match(below) for below in ls[k + 1:])
                     for k, lb in enumerate(ls))]
    assert len(joined) >= 3, "no native frame under cdrexp's model or writer frames"
    assert load_json(res.artifact_dir / "metadata.json")["native"] is True
