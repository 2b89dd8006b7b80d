"""The differential profile: shares, not seconds; the grown function first and red."""
from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from cdrexp.profilers._common import find_tool
from cdrexp.profilers._diff import CSV_COLUMNS, NEUTRAL, diff_profiles, diff_svg
from cdrexp.profilers._samples import Frame, Samples
from cdrexp.profilers._samples import load_speedscope

from profiler_helpers import write_profile

NS = "{http://www.w3.org/2000/svg}"
@pytest.fixture
def diff(tmp_path):
    # B is twice as long; only `planted` grew, from 20 % to 50 % of the samples
    a = write_profile(tmp_path / "a.json", 100, {"parse": 40, "planted": 20, "write": 40})
    b = write_profile(tmp_path / "b.json", 200, {"parse": 80, "planted": 160, "write": 80})
    return diff_profiles(load_speedscope(a), load_speedscope(b))


def test_shares_not_seconds(diff):
    rows = {f.function: f for f in diff.functions}
    assert rows["planted"].self_a == pytest.approx(0.2)
    assert rows["planted"].self_b == pytest.approx(0.5)
    assert rows["parse"].self_a == pytest.approx(0.4)
    assert rows["parse"].self_b == pytest.approx(0.25)
    assert rows["run_unit"].self_change == 0 and rows["run_unit"].total_b == pytest.approx(1)
    assert sum(f.self_b for f in diff.functions) == pytest.approx(1)


def test_grown_function_ranks_first_and_shrunk_last(diff):
    by_self = diff.changed_most("self", 3)
    assert [f.function for f in by_self] == ["planted", "parse", "write"] or \
        [f.function for f in by_self] == ["planted", "write", "parse"]
    assert by_self[0].self_change == pytest.approx(0.3)
    assert by_self[-1].self_change == pytest.approx(-0.15)


def test_processes_by_role_and_functions_without_lines_match_across_runs(diff):
    # pids, command lines and line numbers differ between the two files
    assert set(diff.stacks_a) == set(diff.stacks_b)
    stack = next(iter(diff.stacks_b))
    assert stack[:3] == ("process main", "process worker",
                         "run_unit (cdrexp/parallel/work.py)")


def test_csv_has_every_function_grown_first(diff):
    lines = diff.csv_text().splitlines()
    assert lines[0].split(",") == list(CSV_COLUMNS)
    assert lines[1].startswith("planted,cdrexp/model/records.py,20.0000,50.0000,30.0000")
    assert len(lines) == 1 + len(diff.functions)


def frames(svg: str) -> dict[str, ET.Element]:
    root = ET.fromstring(svg)
    return {g.get("data-n"): g for g in root.iter(f"{NS}g") if g.get("class") == "f"}


def rgb(g: ET.Element) -> tuple[int, ...]:
    fill = g.find(f"{NS}rect").get("fill")
    if fill == NEUTRAL:
        return (225, 225, 225)
    return tuple(int(v) for v in re.match(r"rgb\((\d+),(\d+),(\d+)\)", fill).groups())


def test_differential_svg_red_where_grown_blue_where_shrunk_width_from_b(diff):
    svg = diff_svg(diff, "t", "s")
    f = frames(svg)
    planted = f["planted (cdrexp/model/records.py)"]
    r, g, b = rgb(planted)
    assert r == 255 and g < 100 and b < 100           # the largest growth: deep red
    r, g, b = rgb(f["parse (cdrexp/model/records.py)"])
    assert b == 255 and r < 255                        # shrank: blue
    assert rgb(f["run_unit (cdrexp/parallel/work.py)"]) == (225, 225, 225)  # no own time
    widths = {k: float(v.find(f"{NS}rect").get("width")) for k, v in f.items()}
    assert widths["planted (cdrexp/model/records.py)"] == pytest.approx(
        2 * widths["parse (cdrexp/model/records.py)"], rel=0.01)        # B's shares
    assert "+30.00 pts" in planted.find(f"{NS}title").text


PLANTED = '''
import sys, time

def parse(n):
    s = 0
    for i in range(n):
        s += i * i % 7
    return s

def transform(n):
    s = 0
    for i in range(n):
        s += (i ^ 5) % 11
    return s

def planted_slowdown(n):
    s = 0
    for i in range(n):
        s += (i * 3) % 13
    return s

factor = int(sys.argv[1])
# CPU seconds, not wall: on a loaded machine a wall-time budget left a side with a few
# dozen samples of its loop (py-spy skips the time a process waits for a core), and the
# start-up's frames then outranked the planted change (a CI run at load 6-7)
end = time.process_time() + float(sys.argv[2])
while time.process_time() < end:
    parse(20000)
    transform(20000)
    planted_slowdown(20000 * factor)
'''


@pytest.mark.slow
def test_real_py_spy_profiles_rank_the_planted_slowdown_first(tmp_path):
    """Real samples of a program whose one function does 4x the work in B."""
    try:
        py_spy = find_tool("py-spy")
    except Exception as exc:
        pytest.skip(f"py-spy: {exc}")
    script = tmp_path / "work.py"
    script.write_text(PLANTED)
    profiles = {}
    for side, factor in (("a", 1), ("b", 4)):
        out = tmp_path / f"{side}.json"
        run = subprocess.run([py_spy, "record", "--rate", "200", "--format", "speedscope",
                              "--output", str(out), "--", sys.executable, str(script),
                              str(factor), "1.5"], capture_output=True, text=True)
        if not out.exists():
            pytest.skip(f"py-spy cannot record here: {run.stderr.strip()[-200:]}")
        profiles[side] = load_speedscope(out)
    d = diff_profiles(profiles["a"], profiles["b"])
    first = d.changed_most("self", 10)[0]
    assert first.function == "planted_slowdown", d.changed_most("self", 10)
    # a third of the work in A, four sixths in B: about +33 points, sampling error ~5
    assert 0.2 < first.self_change < 0.45
    svg_frames = frames(diff_svg(d, "t", "s"))
    grown = [g for name, g in svg_frames.items() if name.startswith("planted_slowdown (")]
    assert grown and all(rgb(g)[0] == 255 and rgb(g)[2] < 200 for g in grown)


def _deep_samples(planted_weight: float) -> Samples:
    """A process whose unchanged work (half the samples on both sides) is 150 frames
    deep, and a planted function at depth 30 that grows at the expense of another."""
    frames = [Frame('process 1: python -m cdrexp.cli.child', "", 0, pid=1)]
    frames += [Frame(f"deep{i}", "cdrexp/model/deep.py", i) for i in range(150)]
    frames += [Frame("planted", "cdrexp/model/records.py", 1),
               Frame("other", "cdrexp/model/records.py", 9)]
    deep = tuple(range(151))
    planted = tuple(range(31)) + (151,)
    other = tuple(range(31)) + (152,)
    return Samples(frames, [(deep, 1.0), (planted, planted_weight),
                            (other, 1.0 - planted_weight)],
                   {1: {"samples": 3, "seconds": 2.0, "cmd": "", "parent": None}})


def test_the_diff_opens_on_what_changed():
    """The largest growth is listed first at the top and drawn within the first screen
    (1000 px), however deep the unchanged stacks are; unchanged stacks are left out."""
    svg = diff_svg(diff_profiles(_deep_samples(0.1), _deep_samples(0.6)), "t", "s")
    root = ET.fromstring(svg)
    panel = [g for g in root.iter(f"{NS}g") if g.get("class") == "chg"]
    first = "".join(panel[0].itertext())
    assert "planted (cdrexp/model/records.py)" in first and first.lstrip().startswith("+")
    assert "zoomName(" in panel[0].get("onclick")
    f = frames(svg)
    y = float(f["planted (cdrexp/model/records.py)"].find(f"{NS}rect").get("y"))
    assert y < 1000 and rgb(f["planted (cdrexp/model/records.py)"])[0] == 255
    assert "deep149 (cdrexp/model/deep.py)" not in f        # unchanged: left out
    assert int(root.get("height")) < 1200
