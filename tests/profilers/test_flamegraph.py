"""The flamegraph renderer: valid SVG, widths proportional to time, labels escaped."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter

import pytest

from cdrexp.profilers._flamegraph import MIN_PX, PAD, WIDTH, render_svg

NS = "{http://www.w3.org/2000/svg}"


def _frames(svg: str) -> dict[str, list[ET.Element]]:
    root = ET.fromstring(svg)
    out: dict[str, list] = {}
    for g in root.iter(f"{NS}g"):
        if g.get("class") == "f":
            out.setdefault(g.get("data-n"), []).append(g)
    return out


def _width(g) -> float:
    return float(g.find(f"{NS}rect").get("width"))


def test_widths_are_proportional_and_children_nest():
    stacks = Counter({("process 1", "main (a.py:1)", "f (a.py:5)"): 3.0,
                      ("process 1", "main (a.py:1)", "g (a.py:9)"): 1.0})
    frames = _frames(render_svg(stacks, "t"))
    full = WIDTH - 2 * PAD
    assert _width(frames["process 1"][0]) == pytest.approx(full, abs=0.01)
    assert _width(frames["f (a.py:5)"][0]) == pytest.approx(0.75 * full, abs=0.01)
    assert _width(frames["g (a.py:9)"][0]) == pytest.approx(0.25 * full, abs=0.01)
    f_y = float(frames["f (a.py:5)"][0].find(f"{NS}rect").get("y"))
    main_y = float(frames["main (a.py:1)"][0].find(f"{NS}rect").get("y"))
    assert f_y < main_y                       # callees above their caller (root at bottom)
    assert frames["g (a.py:9)"][0].find(f"{NS}title").text.startswith("g (a.py:9) (1.00 s, 25.00%")


def test_same_frame_in_two_callers_is_two_boxes():
    stacks = Counter({("a", "sort"): 1.0, ("b", "sort"): 1.0})
    assert len(_frames(render_svg(stacks))["sort"]) == 2


def test_markup_in_names_is_escaped():
    nasty = '<module> ("quoted" & <b>.py:1)'
    svg = render_svg(Counter({(nasty,): 1.0}), title="a <title> & more")
    assert _frames(svg)[nasty]                 # parsed back intact


def test_frames_too_narrow_to_see_are_dropped():
    tiny = 1.0 / ((WIDTH - 2 * PAD) / MIN_PX) / 10
    frames = _frames(render_svg(Counter({("big",): 1.0, ("tiny",): tiny})))
    assert "big" in frames and "tiny" not in frames
