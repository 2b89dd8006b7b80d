"""``--diff-profile A B``: where B spends its time differently from A.

Reads both runs' ``profile/profile.speedscope.json`` (py-spy's, or perf record's folded
into the same format: the samples their flamegraphs came from), compares them as shares
of samples (``cdrexp.profilers._diff``), prints the functions whose self and total share
changed most, and logs under ``profile_diff/`` of B's run (or of the A/B's parent run,
given one A/B run): the differential flamegraph, the tables as text, every function as
CSV, and what was compared (``diff.json``). ``cdrexp.ab ... profiler=pyspy`` makes the
same diff of its two sides with ``compare_profiled``.
"""
from __future__ import annotations

import io
import json
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from rich.console import Console
from rich.table import Table
from rich.text import Text

from cdrexp.profilers import (FunctionShare, ProfileDiff, Samples, diff_profiles, diff_svg,
                              function_label, load_speedscope)
from cdrexp.tracking import names

from ._store import Store, StoreError

ARTIFACT_DIR = "profile_diff"
PROFILE_FILE = f"{names.A_PROFILE_DIR}/profile.speedscope.json"
SVG = "diff_flamegraph.svg"
TEXT = "functions.txt"
CSV = "functions.csv"
META = "diff.json"
SAMPLED = ("pyspy", "perf")


@dataclass
class Profiled:
    """One side: the run (or A/B side) it came from and the samples of its profile."""
    run_id: str
    label: str                   # the configuration, or the A/B side and revision
    commit: Optional[str]
    config_key: Optional[str]
    samples: Samples
    profiler: str
    native: Optional[str]

    @property
    def short_commit(self) -> str:
        return (self.commit or "?")[:7]

    @property
    def name(self) -> str:
        return f"{self.run_id[:8]} ({self.label}, {self.short_commit})"


@dataclass
class DiffResult:
    diff: ProfileDiff
    a: Profiled
    b: Profiled
    warnings: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)     # name -> text
    logged_to: Optional[str] = None

    def write(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        for name, text in self.files.items():
            (directory / name).write_text(text)
        return directory


def load_side(store: Store, ident: str, tmp: str) -> Profiled:
    """A job run's profile, or StoreError saying in one line why there is none."""
    job = store.job(ident)
    return _load(store, job.run_id, job.label, job.git_commit, job.config_key, job.tags,
                 job.param("profiler.native"), tmp)


def load_ab_side(store: Store, run, side: str, tmp: str) -> Profiled:
    """The profile an A/B made of one side after its verdict (``cdrexp.ab ...
    profiler=pyspy``), from that side's run."""
    tags = run.data.tags
    return _load(store, run.info.run_id, f"{side} {tags.get(names.TAG_AB_REV, '?')}",
                 tags.get(names.TAG_GIT_COMMIT), tags.get(names.TAG_CONFIG_KEY), tags,
                 None, tmp)


def _load(store: Store, run_id: str, label: str, commit: Optional[str],
          config_key: Optional[str], tags: dict, native: Optional[str],
          tmp: str) -> Profiled:
    profiler = tags.get(names.TAG_PROFILER) or "none"
    if profiler not in SAMPLED:
        raise StoreError(f"run {run_id[:8]} has no sampled profile: it ran with "
                         f"profiler={profiler} (rerun with profiler=pyspy or profiler=perf)")
    status = tags.get(names.TAG_PROFILER_STATUS, "")
    path = store.artifact(run_id, PROFILE_FILE, tempfile.mkdtemp(dir=tmp))
    if path is None or not path.is_file():
        why = f" (profiler {status})" if status and status != "ok" else ""
        raise StoreError(f"run {run_id[:8]} has no {PROFILE_FILE}{why}")
    return Profiled(run_id, label, commit, config_key,
                    read_samples(path, f"run {run_id[:8]}"), profiler, native)


def read_samples(path: Path, whose: str) -> Samples:
    try:
        samples = load_speedscope(path)
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise StoreError(f"{whose}: {path.name} is unreadable: "
                         f"{type(exc).__name__}: {exc}") from None
    if samples.n_samples == 0:
        raise StoreError(f"{whose}: {path.name} has no samples")
    return samples


def diff_runs(store: Store, a_id: str, b_id: str, top_n: int = 20) -> DiffResult:
    """Both runs' profiles, compared. Raises StoreError (one line) when a side has no
    usable profile or the two cannot be compared."""
    with tempfile.TemporaryDirectory(prefix="cdrexp-diff-") as tmp:
        a, b = load_side(store, a_id, tmp), load_side(store, b_id, tmp)
    return compare_profiled(a, b, top_n)


def compare_profiled(a: Profiled, b: Profiled, top_n: int = 20) -> DiffResult:
    """The diff of two profiles and the files that show it."""
    if a.profiler != b.profiler:
        raise StoreError(f"run {a.run_id[:8]} was profiled with {a.profiler}, run "
                         f"{b.run_id[:8]} with {b.profiler}: their frames do not "
                         "compare (profile both with the same profiler)")
    warnings = []
    if a.config_key != b.config_key:
        warnings.append(f"the runs have different configurations ({a.label} vs "
                        f"{b.label}): shares compared anyway")
    if a.native != b.native:
        warnings.append(f"profiler.native differs ({a.native} vs {b.native}): native "
                        "frames appear on one side only")
    diff = diff_profiles(a.samples, b.samples)
    result = DiffResult(diff, a, b, warnings)
    title = (f"cdrexp differential flamegraph: A {a.run_id[:8]} ({a.short_commit})"
             f" -> B {b.run_id[:8]} ({b.short_commit})")
    subtitle = (f"{a.profiler}: width = share of B's {diff.samples_b} samples; colour = "
                f"change of the frame's own share from A's {diff.samples_a}: red grew, "
                "blue shrank")
    result.files = {
        SVG: diff_svg(diff, title, subtitle),
        TEXT: _export_text(tables(diff, top_n), f"A = {a.name}\nB = {b.name}\n"
                           + "".join(f"warning: {w}\n" for w in warnings)),
        CSV: diff.csv_text(),
        META: json.dumps(_meta(result), indent=2) + "\n"}
    return result


def tables(diff: ProfileDiff, top_n: int) -> list[Table]:
    return [_table(diff.changed_most("self", top_n),
                   f"Functions whose self share changed most (of {len(diff.functions)})"),
            _table(diff.changed_most("total", top_n),
                   "Functions whose total share (with what they called) changed most")]


def _table(rows: list[FunctionShare], title: str) -> Table:
    t = Table(title=title, title_justify="left")
    for col in ("self A", "self B", "Δ self", "total A", "total B", "Δ total"):
        t.add_column(col, justify="right")
    t.add_column("function")
    for f in rows:
        t.add_row(f"{100 * f.self_a:.2f}%", f"{100 * f.self_b:.2f}%",
                  _change(f.self_change), f"{100 * f.total_a:.2f}%",
                  f"{100 * f.total_b:.2f}%", _change(f.total_change),
                  Text(function_label(f.function, f.file)))   # "[kernel...]" is no markup
    return t


def _change(share: float) -> str:
    text = f"{100 * share:+.2f} pts"
    if abs(share) < 0.0005:
        return text
    return f"[red]{text}[/]" if share > 0 else f"[blue]{text}[/]"


def _export_text(renderables: list, header: str) -> str:
    console = Console(record=True, width=200, file=io.StringIO(), color_system=None)
    console.print(header, markup=False)
    for r in renderables:
        console.print(r)
    return console.export_text()


def _meta(r: DiffResult) -> dict:
    def side(p: Profiled) -> dict:
        return {"run_id": p.run_id, "label": p.label, "commit": p.commit,
                "config_key": p.config_key, "profiler": p.profiler,
                "native": p.native, "samples": p.samples.n_samples,
                "sampled_seconds": round(p.samples.seconds, 3)}
    return {"a": side(r.a), "b": side(r.b), "warnings": r.warnings,
            "files": sorted(r.files)}


def log_result(store: Store, result: DiffResult, run_id: Optional[str] = None) -> str:
    """Log the files under ``profile_diff/`` of ``run_id`` (default: B's run); returns
    the run they went to."""
    from cdrexp.tracking.store import TrackingStore
    target = run_id or result.b.run_id
    with tempfile.TemporaryDirectory(prefix="cdrexp-diff-") as tmp:
        result.write(Path(tmp))
        try:
            writer = TrackingStore(store.uri, ".", store.experiment)
            writer.log_artifacts(target, tmp, ARTIFACT_DIR)
        except Exception as exc:
            raise StoreError(f"cannot log {ARTIFACT_DIR}/ to run {target}: "
                             f"{type(exc).__name__}: {exc}") from None
    result.logged_to = target
    return target


def render(console: Console, result: DiffResult, top_n: int,
           prog: str = "cdrexp-compare") -> None:
    for w in result.warnings:
        print(f"{prog}: warning: {w}", file=sys.stderr)
    console.print(f"A = {result.a.name}: {result.diff.samples_a} samples\n"
                  f"B = {result.b.name}: {result.diff.samples_b} samples")
    for t in tables(result.diff, top_n):
        console.print(t)
    if result.logged_to:
        console.print(f"{', '.join(sorted(result.files))} logged under {ARTIFACT_DIR}/ "
                      f"of run {result.logged_to} (mlflow artifacts download -r "
                      f"{result.logged_to} -a {ARTIFACT_DIR} -d .)")


def run_diff_profile(store: Store, console: Console, ids: list[str],
                     top_n: int = 20) -> None:
    """The command: ``ids`` are A and B, or one A/B parent run (its base is A, its
    candidate B, and the diff is logged on the parent)."""
    if len(ids) == 2:
        result = diff_runs(store, ids[0], ids[1], top_n)
        log_result(store, result)
    elif len(ids) == 1:
        parent, sides = store.ab_sides(ids[0])
        missing = [s for s in ("base", "candidate") if s not in sides]
        if missing:
            raise StoreError(f"A/B run {parent[:8]} has no {' and no '.join(missing)} run")
        with tempfile.TemporaryDirectory(prefix="cdrexp-diff-") as tmp:
            a, b = (load_ab_side(store, sides[s], s, tmp) for s in ("base", "candidate"))
        result = compare_profiled(a, b, top_n)
        log_result(store, result, parent)
    else:
        raise StoreError(f"--diff-profile takes two run ids (A B) or one A/B run, got "
                         f"{len(ids)}")
    render(console, result, top_n)
