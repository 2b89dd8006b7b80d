from rich.console import Console

from cdrexp.cli.display import job_table
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
