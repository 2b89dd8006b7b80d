"""The measuring loop: what the timer covers."""
import os

from cdrexp.cli import benchmark, repeats as gen
from cdrexp.config import ExperimentConfig, ModelConfig
from cdrexp.writers._fs import LocalFs


def test_previous_repeat_is_deleted_before_the_timer_starts(tmp_path, monkeypatch):
    """Deleting the last repeat's files is no part of the next repeat's wall time: every
    removal of an existing file happens outside ``measure``."""
    cfg = ExperimentConfig(subs=600, days=1, workers=1, repeats=3, warmup=1,
                           out=str(tmp_path / "out"), model=ModelConfig(cells=50))
    timed = [False]
    removals = []       # (path, inside the timed region)
    real_measure, real_remove = gen.measure, LocalFs.remove

    def spy_measure(fn, *args, **kwargs):
        timed[0] = True
        try:
            return real_measure(fn, *args, **kwargs)
        finally:
            timed[0] = False

    def spy_remove(self, rel):
        if os.path.exists(self.full(rel)):
            removals.append((rel, timed[0]))
        return real_remove(self, rel)

    monkeypatch.setattr(gen, "measure", spy_measure)
    monkeypatch.setattr(LocalFs, "remove", spy_remove)
    # the generator process's loop, run here
    repeats = gen.run_repeats(cfg, cfg.warmup, cfg.repeats)

    assert len(repeats) == 3 and all(r.measurement.wall_s > 0 for r in repeats)
    # the warm-up's and two repeats' files were replaced: parts, cells.csv, summaries
    deleted = [rel for rel, _ in removals]
    assert "cells.csv" in deleted and any("/cdr_" in rel for rel in deleted)
    assert "2025-01-01/summary.json" in deleted
    inside = [rel for rel, during in removals if during]
    assert inside == [], f"deleted while timed: {inside[:5]}"
    # and the last repeat's output is whole
    assert (tmp_path / "out" / "manifest.json").is_file()


def test_remove_output_deletes_only_what_cdrexp_wrote(tmp_path):
    """keep_output=false: one clearing for the runner and the writers (issue 23); a file
    the manifest lists under a name cdrexp never writes stays (issue 22's rules)."""
    import json

    from cdrexp.generation import generate
    out = tmp_path / "out"
    cfg = ExperimentConfig(subs=600, days=2, workers=1, out=str(out),
                           model=ModelConfig(cells=50))
    generate(cfg)
    (out / "2025-01-02" / "mine.txt").write_text("the user's\n")
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["files"].append({"path": "mine.txt"})
    (out / "manifest.json").write_text(json.dumps(manifest))
    (out / "mine.txt").write_text("the user's too\n")
    benchmark.remove_output(str(out))
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [
        "2025-01-02", "2025-01-02/mine.txt", "mine.txt"]
    (out / "2025-01-02" / "mine.txt").unlink()
    (out / "mine.txt").unlink()
    generate(cfg)
    benchmark.remove_output(str(out))
    assert not out.exists()
