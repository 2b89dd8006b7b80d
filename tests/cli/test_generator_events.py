"""What the job's generator process (``cli.repeats``) sends back, and how the job shows it."""
import json

import pytest
from rich.console import Console

from cdrexp.cli import benchmark, repeats as gen
from cdrexp.cli.display import job_table
from cdrexp.config import ExperimentConfig, ModelConfig
from cdrexp.stats import GenerationStats
from cdrexp.tracking import names as N
from cdrexp.tracking.measure import Measurement
from cdrexp.tracking.results import job_metrics


def _stats(**changes) -> GenerationStats:
    d = dict(subs=10, days=1, workers=2, output_format="csv",
             rows_by_type={"CALL": 3, "SMS": 4}, bytes_written=100, uncompressed_bytes=90,
             files=2, wall_s=0.5, population_s=0.1, generation_s=0.2, formatting_s=0.1,
             writing_s=0.05, out="/o")
    d.update(changes)
    return GenerationStats(**d)


def test_a_repeat_crosses_the_pipe_whole():
    m = Measurement(wall_s=1.5, cpu_s=2.5, peak_pss_bytes=3_000_000, peak_rss_bytes=4_000_000,
                    peak_uss_bytes=2_000_000, max_processes=5, baseline_pss_bytes=1_000_000,
                    client_cpu_s=0.5, client_peak_pss_bytes=900_000, usable_cores=4)
    cluster = {"cpu_s": 2.0, "peak_pss_bytes": 5, "peak_rss_bytes": 6, "members": ["h:1"],
               "hosts": {"h": 4}}
    rep = gen.Repeat(m, _stats(cluster=cluster))
    back = gen.Repeat.from_event(json.loads(json.dumps(rep.to_event(3))))
    assert back.measurement == m
    assert back.stats.to_dict() == rep.stats.to_dict()
    assert back.stats.rows == 7 and back.stats.cluster == cluster


def test_the_runner_pss_is_a_metric_of_its_own_and_a_line_of_the_table():
    cfg = ExperimentConfig(subs=10)
    ms = [Measurement(1.0, 1.0, 50_000_000, 60_000_000, 40_000_000, 4, 20_000_000,
                      runner_pss_bytes=pss) for pss in (190_000_000, 210_000_000)]
    metrics = job_metrics(cfg, ms, [_stats(), _stats()], 2)
    assert metrics[N.M_RUNNER_PSS] == 210.0
    assert metrics[N.M_PEAK_PSS] == 50.0 and metrics[N.M_BASELINE_PSS] == 20.0
    console = Console(width=200, record=True)
    console.print(job_table("job", metrics, "r1"))
    text = console.export_text()
    assert "generator's process tree" in text
    assert "runner" in text and "PSS 210.0 MB (this process" in text
    # measured in-process (no runner apart): no such line
    del metrics[N.M_RUNNER_PSS]
    console = Console(width=200, record=True)
    console.print(job_table("job", metrics, "r1"))
    assert "this process" not in console.export_text()


def test_the_job_gets_every_repeat_from_its_generator_process(tmp_path):
    """The real generator process: warm-up and repeats, each measured there, handed on
    as they end with the job's own PSS added."""
    cfg = ExperimentConfig(subs=600, days=1, workers=1, repeats=2, warmup=1,
                           out=str(tmp_path / "out"), model=ModelConfig(cells=50))
    seen = []
    got = benchmark.run_repeats(cfg, tmp_path, lambda i, rep: seen.append(i))
    assert seen == [0, 1] and len(got) == 2
    for rep in got:
        m = rep.measurement
        assert m.wall_s > 0 and m.cpu_s > 0 and m.peak_pss_bytes >= m.baseline_pss_bytes > 0
        # the job's own memory, apart from the tree's
        assert m.runner_pss_bytes and m.runner_pss_bytes > 0
        assert rep.stats.rows > 0 and rep.stats.subs == 600
    assert (tmp_path / "out" / "manifest.json").is_file()
    assert (tmp_path / benchmark.GENERATOR_CONFIG).is_file()


def test_a_generator_failure_is_one_line(tmp_path):
    """A file where the run's day directory goes: the generator's error, as it said it."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "2025-01-01").write_text("not a directory\n")
    cfg = ExperimentConfig(subs=300, days=1, workers=1, repeats=1, warmup=0, out=str(out),
                           model=ModelConfig(cells=50))
    with pytest.raises(benchmark.GeneratorFailed) as failed:
        benchmark.run_repeats(cfg, tmp_path)
    line = str(failed.value)
    assert "\n" not in line and "2025-01-01" in line, line
    # its traceback, for the job's error.txt
    assert "Traceback" in str(failed.value.__cause__)
