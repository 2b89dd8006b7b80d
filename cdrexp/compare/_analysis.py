"""What the reports show, computed from the store: matched comparisons, trends, rows.

Kept apart from the rendering so that tests can check the numbers, not the tables.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

from cdrexp.tracking import names

from ._stats import DRIFT, MIN_CONFIDENCE, SLOWER, Change, compare_samples
from ._store import JobRun, RunGroup, Store, StoreError


def throughput(job: JobRun) -> Optional[float]:
    """Subscribers per second at the median repeat."""
    value = job.metric(names.M_SUBS_PER_S)
    if value is None:
        wall, subs = job.metric(names.M_WALL_MEDIAN), job.param("subs")
        if wall and subs:
            value = float(subs) / wall
    return value


def peak_memory_mb(job: JobRun) -> Optional[float]:
    """Peak memory of the process tree: PSS (shared pages counted once), else RSS."""
    value = job.metric(names.M_PEAK_PSS)
    return value if value is not None else job.metric(names.M_PEAK_RSS)


AB_HINT = ("python -m cdrexp.ab BASE [CANDIDATE] runs both revisions alternately in one "
           "session and says whether the change is slower")


class NothingToCompare(StoreError):
    """Only one run or sweep so far (a first day): not an error, the message says what
    to run instead."""


def same_code(a: JobRun, b: JobRun) -> bool:
    """Both runs ran the same commit with no uncommitted change (as far as they say)."""
    dirty = {a.tags.get(names.TAG_GIT_DIRTY), b.tags.get(names.TAG_GIT_DIRTY)}
    return bool(a.git_commit) and a.git_commit == b.git_commit and "true" not in dirty \
        and a.git_commit != "unknown"


def judged(change: Change, prev: JobRun, cur: JobRun) -> Change:
    """``change`` as a verdict may state it: DRIFT when the code is the same."""
    if same_code(prev, cur):
        return replace(change, verdict=DRIFT, note="same commit: machine drift")
    return change


def relative(prev: Optional[float], cur: Optional[float]) -> Optional[float]:
    if prev is None or cur is None or prev == 0:
        return None
    return cur / prev - 1


@dataclass(frozen=True)
class Match:
    """The same configuration in the previous and the current group."""
    prev: JobRun
    cur: JobRun
    change: Change          # of wall time, from the repeats' samples
    forced: bool = False    # two explicitly named runs whose configurations differ

    @property
    def label(self) -> str:
        return self.cur.label

    @property
    def throughput_change(self) -> Optional[float]:
        return relative(throughput(self.prev), throughput(self.cur))

    @property
    def memory_change(self) -> Optional[float]:
        return relative(peak_memory_mb(self.prev), peak_memory_mb(self.cur))

    @property
    def commits_differ(self) -> bool:
        return (self.prev.git_commit or "") != (self.cur.git_commit or "")

    @property
    def drift(self) -> bool:
        return self.change.verdict == DRIFT


@dataclass(frozen=True)
class Comparison:
    prev: RunGroup
    cur: RunGroup
    matches: list[Match]
    only_prev: list[JobRun]
    only_cur: list[JobRun]
    threshold: float


def pick_groups(store: Store, ids: list[str]) -> tuple[RunGroup, RunGroup]:
    """The two groups to compare: the named ones (previous first), or the newest group
    and the newest earlier group that shares at least one configuration with it."""
    if ids:
        return store.group(ids[0]), store.group(ids[1])
    groups = store.require_groups()
    if len(groups) < 2:
        raise NothingToCompare(
            f"nothing to compare yet: one {'sweep' if groups[0].is_sweep else 'run'} "
            f"({groups[0].group_id}) in experiment {store.experiment!r}. Run the same "
            "command again after a change and compare then, or measure a change now: "
            + AB_HINT + " (e.g. python -m cdrexp.ab HEAD~1)")
    cur = groups[-1]
    keys = set(cur.by_config())
    for prev in reversed(groups[:-1]):
        if keys & set(prev.by_config()):
            return prev, cur
    raise NothingToCompare(
        f"nothing to compare yet: no earlier run or sweep shares a configuration with the "
        f"newest ({cur.group_id}). Run the same command again after a change and compare "
        "then, or name two ids (--compare A B), or measure a change now: " + AB_HINT
        + " (e.g. python -m cdrexp.ab HEAD~1)")


def compare_groups(store: Store, prev: RunGroup, cur: RunGroup,
                   threshold: float) -> Comparison:
    """Match jobs by configuration key; two single jobs named explicitly are compared
    even when their configurations differ (flagged as forced)."""
    prev_by, cur_by = prev.by_config(), cur.by_config()
    pairs = [(prev_by[k], cur_by[k], False) for k in cur_by if k in prev_by]
    if not pairs and len(prev.jobs) == 1 and len(cur.jobs) == 1 and not prev.is_sweep \
            and not cur.is_sweep:
        pairs = [(prev.jobs[0], cur.jobs[0], True)]
    matches = [Match(p, c, judged(compare_samples(store.samples(p), store.samples(c),
                                                  threshold), p, c), forced)
               for p, c, forced in pairs]
    matches.sort(key=lambda m: _natural_key(m.cur))
    matched_prev = {m.prev.run_id for m in matches}
    matched_cur = {m.cur.run_id for m in matches}
    return Comparison(prev, cur, matches,
                      [j for j in prev_by.values() if j.run_id not in matched_prev],
                      [j for j in cur_by.values() if j.run_id not in matched_cur],
                      threshold)


def regressions(store: Store, comparison: Comparison, pct: float) -> list[Match]:
    """Matches slower by more than ``pct`` percent, beyond the repeats' noise."""
    out = []
    for m in comparison.matches:
        change = judged(compare_samples(store.samples(m.prev), store.samples(m.cur),
                                        pct / 100), m.prev, m.cur)
        if change.verdict == SLOWER:
            out.append(Match(m.prev, m.cur, change, m.forced))
    return out


def undecided(store: Store, comparison: Comparison) -> list[tuple[Match, str]]:
    """Matches whose repeats are too few for an interval of ``MIN_CONFIDENCE``, each with
    the reason in words: the gate can neither pass nor fail them."""
    out = []
    for m in comparison.matches:
        c = m.change
        if c.confidence >= MIN_CONFIDENCE - 1e-9 or m.drift:
            continue
        why = [f"{c.n_prev} vs {c.n_cur} repeats give an interval of "
               f"{c.confidence * 100:.0f} % coverage, the gate needs "
               f"{MIN_CONFIDENCE * 100:.0f} % (3 vs 3 repeats or more)"]
        for side, job in (("previous", m.prev), ("current", m.cur)):
            if store.median_only(job):
                why.append(f"the {side} run {job.run_id[:8]} logged only its median "
                           "wall time, not its repeats")
        out.append((m, "; ".join(why)))
    return out


@dataclass(frozen=True)
class TrendPoint:
    job: JobRun
    vs_previous: Optional[Change]   # None for the first run of the configuration


@dataclass(frozen=True)
class Trend:
    label: str
    points: list[TrendPoint]
    overall: Optional[Change]       # first run against the last


def trends(store: Store, threshold: float) -> list[Trend]:
    out = []
    for jobs in store.jobs_by_config().values():
        points, prev = [], None
        for job in jobs:
            change = None if prev is None else judged(
                compare_samples(store.samples(prev), store.samples(job), threshold), prev, job)
            points.append(TrendPoint(job, change))
            prev = job
        overall = None if len(jobs) < 2 else judged(
            compare_samples(store.samples(jobs[0]), store.samples(jobs[-1]), threshold),
            jobs[0], jobs[-1])
        out.append(Trend(jobs[-1].label, points, overall))
    if not out:
        raise StoreError(f"no finished cdrexp runs in experiment {store.experiment!r} "
                         f"of {store.uri}")
    return sorted(out, key=lambda t: _natural_key(t.points[-1].job))


EXPORT_COLUMNS = ("timestamp", "git_commit", "subscribers", "days", "elapsed_seconds",
                  "throughput_subs_per_sec", "output_size_kb", "max_memory_bytes",
                  "workers", "output_format", "records_per_sec",
                  "config_label", "config_key", "sweep_id", "run_id")


def export_rows(store: Store) -> list[dict]:
    """One row per finished job, oldest first: the seed's CSV columns and ours."""
    rows = []
    for job in store.finished_jobs():
        mem = peak_memory_mb(job)
        size = job.metric(names.M_BYTES)
        rows.append({
            "timestamp": job.started.isoformat(timespec="seconds"),
            "git_commit": job.git_commit or "",
            "subscribers": job.param("subs") or "",
            "days": job.param("days") or "",
            "elapsed_seconds": _num(job.metric(names.M_WALL_MEDIAN)),
            "throughput_subs_per_sec": _num(throughput(job)),
            "output_size_kb": _num(None if size is None else size / 1024),
            "max_memory_bytes": "" if mem is None else int(round(mem * names.MB)),
            "workers": _workers(job),
            "output_format": job.param("output.format")
            or job.tags.get(names.TAG_OUTPUT_FORMAT, ""),
            "records_per_sec": _num(job.metric(names.M_RECORDS_PER_S)),
            "config_label": job.label,
            "config_key": job.config_key,
            "sweep_id": job.group_id if job.group_id != job.run_id else "",
            "run_id": job.run_id,
        })
    if not rows:
        raise StoreError(f"no finished cdrexp runs in experiment {store.experiment!r} "
                         f"of {store.uri}")
    return rows


def _workers(job: JobRun) -> str:
    """Worker processes the run really used (``workers=0`` means all cores), else the
    configured count."""
    used = job.metric(names.M_WORKERS)
    return str(int(used)) if used is not None else (job.param("workers") or "")


def _num(value: Optional[float]) -> str:
    return "" if value is None else f"{value:.6g}"


def _natural_key(job: JobRun):
    """Order configurations by size, then workers, then label."""
    def as_num(key: str) -> float:
        try:
            return float(job.param(key) or "nan")
        except ValueError:
            return float("nan")
    subs, workers = as_num("subs"), as_num("workers")
    return (subs != subs, subs if subs == subs else 0,
            workers if workers == workers else 0, job.label)
