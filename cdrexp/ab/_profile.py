"""``cdrexp.ab ... profiler=pyspy``: after a decided verdict, where the time went.

An observer around the A/B's own (``MlflowObserver`` or none): when the A/B has decided
(SLOWER or NOT SLOWER), and while both checkouts still exist, it runs one extra,
unmeasured generation per side under the configured profiler (pyspy, native or not, or
perf: the measured pairs are never profiled), then the differential profile of the two
(``cdrexp.compare.compare_profiled``). Files: ``outputs/ab/<date>/<time>/`` (``base/profile``,
``candidate/profile``, ``profile_diff``); in MLflow each side's ``profile/`` on its child
run and ``profile_diff/`` on the A/B's parent run. A profiler that cannot run is one line
on stderr: the verdict and the exit code stay what the measurements said.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Callable, Optional

from ._errors import SettingsError
from ..config import config_to_dict
from ..profilers import ProfileResult, run_profiler
from ..tracking import names as N
from ._job import write_side_config
from ._measure import CHILD_MODULE, Side, side_env
from ._run import ABResult
from ._stats import UNDECIDED

SAMPLED = ("pyspy", "perf")


def check_profiler(pcfg) -> None:
    """Before any work: the A/B compares CPU samples, which memray and cProfile lack."""
    if pcfg.name not in ("none", *SAMPLED):
        raise SettingsError(f"profiler={pcfg.name}: the A/B profiles its sides with "
                         f"{' or '.join(SAMPLED)} (CPU samples, compared as shares)")


def output_dir(base: Path) -> Path:
    return base / "outputs" / "ab" / time.strftime("%Y-%m-%d") / time.strftime("%H-%M-%S")


class ProfilingObserver:
    """Passes every event on to ``inner``; profiles both sides before ``finished``."""

    def __init__(self, inner, out_dir: Path, say: Callable[[str], None],
                 console=None):
        self.inner = inner
        self.out_dir = out_dir
        self.say = say
        self.console = console
        self.diff = None                   # the DiffResult, once made

    def started(self, result: ABResult) -> None:
        if self.inner:
            self.inner.started(result)

    def paired(self, result: ABResult, pair) -> None:
        if self.inner:
            self.inner.paired(result, pair)

    def finished(self, result: ABResult) -> None:
        if result.verdict != UNDECIDED:
            try:
                self.profile(result)
            except Exception as exc:   # noqa: BLE001 - the verdict stands without a profile
                self.say(f"profile: {type(exc).__name__}: {exc}".splitlines()[0])
        if self.inner:
            self.inner.finished(result)

    def end(self, status: str, error: Optional[str] = None) -> None:
        if self.inner:
            self.inner.end(status, error)

    # ---------------------------------------------------------------- the work
    def profile(self, result: ABResult) -> None:
        from ..compare import Profiled, compare_profiled, read_samples
        pcfg = result.config.profiler
        key = N.config_key(config_to_dict(result.config))
        profiled = {}
        for side in (result.base, result.candidate):
            self.say(f"profiling {side.label} {side.rev} ({side.short}) under {pcfg.name}")
            res = self._profile_side(result, side)
            if res.status != "ok":
                self.say(f"no differential profile: {side.label}: {res.status}: "
                         f"{res.message}")
                return
            path = Path(res.artifact_dir) / "profile.speedscope.json"
            run_id = self._children().get(side.label) or side.sha
            profiled[side.label] = Profiled(
                run_id, f"{side.label} {side.rev}", side.sha, key,
                read_samples(path, side.label), pcfg.name, str(pcfg.native))
        self.diff = compare_profiled(profiled["base"], profiled["candidate"])
        where = self.diff.write(self.out_dir / "profile_diff")
        parent = getattr(self.inner, "parent", None)
        if parent:
            self.inner.store.log_artifacts(parent, where, "profile_diff")
        if self.console is not None:
            from ..compare import render_profile_diff
            render_profile_diff(self.console, self.diff, 15, prog="cdrexp-ab")
        self.say(f"differential profile: {where}"
                 + (f" (and profile_diff/ of run {parent})" if parent else ""))

    def _children(self) -> dict:
        return getattr(self.inner, "children", None) or {}

    def _profile_side(self, result: ABResult, side: Side) -> ProfileResult:
        d = self.out_dir / side.label
        artifacts = d / "profile"
        artifacts.mkdir(parents=True, exist_ok=True)
        config = write_side_config(result.config, d / "out", d / "config.yaml")
        env = side_env(side)
        env["PYTHONSAFEPATH"] = "1"     # -m must not import cdrexp from the cwd
        cfg = result.config
        context = {"subscribers": cfg.subs, "days": cfg.days, "start_date": cfg.start,
                   "workers": cfg.workers, "output_format": cfg.output.format,
                   "git_commit": side.sha, "git_branch": side.rev, "ab_side": side.label}
        try:
            res = run_profiler(cfg.profiler, [side.python, "-m", CHILD_MODULE,
                                              "--config", str(config)],
                               artifacts, env=env, context=context)
        finally:
            shutil.rmtree(d / "out", ignore_errors=True)
        child = self._children().get(side.label)
        if child:
            store = self.inner.store
            store.set_tags(child, {N.TAG_PROFILER: cfg.profiler.name,
                                   N.TAG_PROFILER_STATUS: res.status if res.status == "ok"
                                   else f"{res.status}: {res.message}"})
            if any(artifacts.iterdir()):
                store.log_artifacts(child, artifacts, N.A_PROFILE_DIR)
        return res
