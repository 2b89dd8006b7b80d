"""Two profiles of the same program compared as shares of their samples.

Runs of different lengths compare because every weight is divided by its run's total:
a function's *share* is what changed, not its seconds. Frames are compared as functions
("name (file)", the line dropped) so that a commit which moves code still matches, and
processes by their role (main, forkserver, worker; the workers merged), since pids and
command lines differ from run to run.

The differential flamegraph follows Brendan Gregg's: widths are B's shares, each frame is
coloured by how the share of samples *in that frame itself* (at that stack) changed from
A to B, red where it grew, blue where it shrank, the strongest change the most saturated.
It opens on what changed: a panel at the top ranks the largest changes (a click zooms on
the frame), and below it, roots at the top, only the stacks whose own share changed
visibly (each side's flamegraph.svg has everything).
"""
from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass

from xml.sax.saxutils import escape, quoteattr

from ._flamegraph import PAD, render_svg
from ._samples import Samples, process_roles, top_functions

NEUTRAL = "rgb(225,225,225)"
PANEL_ROWS = 8          # the largest changes listed above the flamegraph
ROW_H = 18
CSV_COLUMNS = ("function", "file", "self_a_pct", "self_b_pct", "self_change_pts",
               "total_a_pct", "total_b_pct", "total_change_pts")


@dataclass(frozen=True)
class FunctionShare:
    """One function's share of all samples in A and in B, self and total, 0..1."""
    function: str
    file: str
    self_a: float
    self_b: float
    total_a: float
    total_b: float

    @property
    def self_change(self) -> float:
        return self.self_b - self.self_a

    @property
    def total_change(self) -> float:
        return self.total_b - self.total_a

    def csv_row(self) -> list:
        return [self.function, self.file] + [
            f"{100 * v:.4f}" for v in (self.self_a, self.self_b, self.self_change,
                                       self.total_a, self.total_b, self.total_change)]


@dataclass
class ProfileDiff:
    functions: list[FunctionShare]
    stacks_a: Counter           # function stacks (root first) -> share of A's samples
    stacks_b: Counter
    samples_a: int
    samples_b: int

    def changed_most(self, by: str = "self", n: int = 20) -> list[FunctionShare]:
        """The ``n`` functions whose ``by`` ("self" or "total") share changed most,
        grown first: the largest growth at the top, the largest shrink at the bottom."""
        key = (lambda f: f.self_change) if by == "self" else (lambda f: f.total_change)
        top = sorted(self.functions, key=lambda f: -abs(key(f)))[:n]
        return sorted(top, key=key, reverse=True)

    def csv_text(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for f in sorted(self.functions, key=lambda f: -f.self_change):
            writer.writerow(f.csv_row())
        return buf.getvalue()


def function_label(name: str, file: str) -> str:
    return f"{name} ({file})" if file else name


def function_stacks(samples: Samples) -> Counter:
    """Stacks of function labels and process roles (root first) -> share of samples."""
    roles = process_roles(samples)
    labels = [f"process {roles.get(fr.pid, 'process')}" if fr.pid is not None
              else function_label(*fr.function) for fr in samples.frames]
    # a process without samples of its own has no role: at the root, it is the main one
    root_labels = [f"process {roles.get(fr.pid, 'main')}" if fr.pid is not None
                   else labels[i] for i, fr in enumerate(samples.frames)]
    total = samples.seconds or 1.0
    out: Counter = Counter()
    for stack, w in samples.stacks:
        if stack:
            out[(root_labels[stack[0]],) + tuple(labels[i] for i in stack[1:])] += w / total
    return out


def diff_profiles(a: Samples, b: Samples) -> ProfileDiff:
    shares = {}
    for side, samples in (("a", a), ("b", b)):
        total = samples.seconds or 1.0
        for row in top_functions(samples):
            entry = shares.setdefault((row["function"], row["file"]), {})
            entry[f"self_{side}"] = row["self_s"] / total
            entry[f"total_{side}"] = row["total_s"] / total
    functions = [FunctionShare(name, file, v.get("self_a", 0.0), v.get("self_b", 0.0),
                               v.get("total_a", 0.0), v.get("total_b", 0.0))
                 for (name, file), v in shares.items()]
    return ProfileDiff(functions, function_stacks(a), function_stacks(b),
                       a.n_samples, b.n_samples)


def _prefix_totals(stacks: Counter) -> Counter:
    out: Counter = Counter()
    for stack, share in stacks.items():
        for depth in range(1, len(stack) + 1):
            out[stack[:depth]] += share
    return out


def _diff_color(change: float, largest: float) -> str:
    t = min(1.0, abs(change) / largest) if largest > 0 else 0.0
    if t < 0.01:
        return NEUTRAL
    fade = round(235 - 200 * t)
    return f"rgb(255,{fade},{fade})" if change > 0 else f"rgb({fade},{fade},255)"


def _pct(share: float) -> str:
    return f"{100 * share:.2f}%"


def _panel(diff: ProfileDiff, largest: float, y0: int) -> tuple[str, int]:
    """SVG of the largest changes of self share, grown first, from ``y0``; its height."""
    top = [f for f in diff.changed_most("self", PANEL_ROWS) if abs(f.self_change) > 0]
    if not top:
        return "", 0
    bar_w = 160
    scale = max(abs(f.self_change) for f in top) or 1.0
    out = [f'<text x="{PAD}" y="{y0 + 12}" font-weight="bold">What changed most (own '
           'share of samples, A -&gt; B; click a row to zoom on its frame)</text>']
    for i, f in enumerate(top):
        y = y0 + (i + 1) * ROW_H + 4
        label = function_label(f.function, f.file)
        w = max(1.0, bar_w * abs(f.self_change) / scale)
        fill = _diff_color(f.self_change, largest or abs(f.self_change))
        out.append(
            f'<g class="chg" style="cursor:pointer" onclick={quoteattr(f"zoomName({label!r})")}>'
            f'<rect x="{PAD + bar_w - w:.1f}" y="{y}" width="{w:.1f}" height="{ROW_H - 3}" '
            f'fill="{fill}"/>'
            f'<text x="{PAD + bar_w + 8}" y="{y + ROW_H - 6}">'
            f'{escape(f"{100 * f.self_change:+6.2f} pts  {_pct(f.self_a)} -> {_pct(f.self_b)}  {label}")}'
            f'</text></g>')
    return "\n".join(out), (len(top) + 1) * ROW_H + 16


def diff_svg(diff: ProfileDiff, title: str, subtitle: str) -> str:
    """The differential flamegraph: B's widths, A-to-B change of self share as colour;
    the largest changes ranked at the top, then the changed stacks only, roots first."""
    self_change = {path: diff.stacks_b.get(path, 0.0) - diff.stacks_a.get(path, 0.0)
                   for path in set(diff.stacks_a) | set(diff.stacks_b)}
    largest = max((abs(v) for v in self_change.values()), default=0.0)
    total_a, total_b = _prefix_totals(diff.stacks_a), _prefix_totals(diff.stacks_b)
    # "changed only": the stacks whose own share changed enough to be coloured
    changed = Counter({path: share for path, share in diff.stacks_b.items()
                       if _diff_color(self_change.get(path, 0.0), largest) != NEUTRAL})
    shown = changed or diff.stacks_b

    def color(path) -> str:
        return _diff_color(self_change.get(path, 0.0), largest)

    def describe(path, value, total) -> str:
        ta, tb = total_a.get(path, 0.0), total_b.get(path, 0.0)
        sa, sb = diff.stacks_a.get(path, 0.0), diff.stacks_b.get(path, 0.0)
        return (f"{path[-1]}: total {_pct(tb)} in B ({_pct(ta)} in A, "
                f"{100 * (tb - ta):+.2f} pts); self {_pct(sb)} in B ({_pct(sa)} in A, "
                f"{100 * (sb - sa):+.2f} pts)")

    if changed:
        kept = sum(changed.values())
        subtitle = (f"{subtitle}\nchanged stacks only: {len(changed)} of "
                    f"{len(diff.stacks_b)}, {100 * kept:.0f}% of B's samples")
    header, header_h = _panel(diff, largest, 50 + 14 * subtitle.count("\n"))
    return render_svg(shown, title, subtitle, unit="share", color=color,
                      describe=describe, icicle=True, header=header, header_h=header_h)
