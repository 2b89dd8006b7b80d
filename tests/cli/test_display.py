from rich.console import Console

from cdrexp.cli.display import job_table, sweep_table
from cdrexp.tracking import names as N


def _text(table) -> str:
    console = Console(width=200, record=True)
    console.print(table)
    return console.export_text()


def test_job_table_counts_workers_in_words():
    one = _text(job_table("job", {N.M_WORKERS: 1, N.M_CPU_CORES_BUSY: 1.1}, "r1"))
    two = _text(job_table("job", {N.M_WORKERS: 2, N.M_CPU_CORES_BUSY: 1.9}, "r2"))
    assert "1 worker" in one and "1 workers" not in one
    assert "2 workers" in two


def test_output_none_shows_no_mb_per_s():
    text = _text(job_table("job", {N.M_BYTES: 0, N.M_ROWS: 1234, N.M_MB_PER_S: 0.0,
                                   N.M_SUBS_PER_S: 5000.0}, "r"))
    assert "MB/s" not in text and "0.0" not in text
    assert "1,234 records generated and discarded (output=none)" in text
    wrote = _text(job_table("job", {N.M_BYTES: 10**6, N.M_MB_PER_S: 2.5}, "r"))
    assert "2.5 MB/s" in wrote


def test_several_days_say_subscriber_days():
    m = {N.M_SUBS_PER_S: 5000.0, N.M_BYTES: 1}
    assert "5,000 subs/s" in _text(job_table("job", m, "r", days=1))
    seven = _text(job_table("job", m, "r", days=7))
    assert "5,000 subscriber-days/s" in seven and "subs/s" not in seven
    rows = [{"job": 0, "days": 7, "format": "none", N.M_SUBS_PER_S: 5000.0,
             N.M_MB_PER_S: 0.0, "note": "1 of 2 workers ran: no speedup"}]
    sweep = _text(sweep_table("t", rows))
    assert "sub-days/s" in sweep and "subs/s" not in sweep
    assert "0.0" not in sweep and "1 of 2 workers ran" in sweep
