"""Issue 19 (generation CPU): the output of this checkout is byte-identical to a baseline
checkout's, for several configs, seeds and worker counts.

Not a test (it needs a second checkout): a script that runs the generator alone
(``python -m cdrexp.cli.child --config X.yaml``, cwd and ``PYTHONPATH`` = the checkout)
for each case on both checkouts and compares the sha256 of every file written (data,
cells.csv, summaries, manifest with its checksums). Exit status 1 if any file differs.

    python benchmarks/check_identical.py --base /tmp/base-e02e4db
    python benchmarks/check_identical.py --base /tmp/base --cases default mirror
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent

# name -> (config lines, head workers); base always runs with the config's workers
CASES = {
    "default": ("subs: 30000\ndays: 2\nworkers: 2\n", None),
    "workers1": ("subs: 30000\ndays: 2\nworkers: 2\n", 1),     # head with 1 worker
    "mirror": ("subs: 30000\ndays: 2\nworkers: 2\nmodel:\n  mirror_onnet_calls: true\n",
               None),
    "sigma0": ("subs: 30000\ndays: 2\nworkers: 2\nmodel:\n  activity_sigma: 0.0\n", None),
    "sigma": ("subs: 30000\ndays: 2\nworkers: 2\nmodel:\n  activity_sigma: 0.8\n", None),
    "parquet": ("subs: 30000\ndays: 2\nworkers: 2\n", None),
    # another seed, a spring-forward day (non-monotone clock), many device changes,
    # a short last chunk, few contacts (subscribers with none), mirrored calls
    "seed_dst": ("subs: 25000\ndays: 3\nworkers: 2\nseed: 987654321\nstart: '2025-03-29'\n"
                 "model:\n  imei_daily_change_prob: 0.3\n  contacts_mean: 2.0\n"
                 "  chunk_size: 7000\n  mirror_onnet_calls: true\n  activity_sigma: 1.2\n",
                 None),
    # contact tables beyond 1024 (the rank guess by exp, not by table); a weekend day
    "contacts": ("subs: 20000\ndays: 1\nworkers: 2\nstart: '2025-06-14'\n"
                 "model:\n  contacts_mean: 2000.0\n", None),
}
FORMATS = {"parquet": "parquet"}


def run(python: str, checkout: Path, body: str, fmt: str, workers, work: Path) -> dict:
    out = work / "out"
    if workers is not None:
        body = body.replace("workers: 2", f"workers: {workers}")
    cfg = work / "case.yaml"
    # the manifest's checksums too: blake3 on both sides (the default became xxh128)
    cfg.write_text(body + f"out: {out}\noutput:\n  format: {fmt}\n  checksum: blake3\n")
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    subprocess.run([python, "-m", "cdrexp.cli.child", "--config", str(cfg)], cwd=str(checkout),
                   env=env, check=True, capture_output=True)
    sums = {}
    for f in sorted(out.rglob("*")):
        if f.is_file():
            h = hashlib.sha256()
            with open(f, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
            sums[str(f.relative_to(out))] = h.hexdigest()
    shutil.rmtree(out)
    return sums


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True, type=Path, help="baseline checkout")
    ap.add_argument("--head", type=Path, default=HERE)
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--tmp", default=None, help="where outputs go (deleted after hashing)")
    a = ap.parse_args(argv)
    bad = 0
    for name in a.cases:
        body, head_workers = CASES[name]
        fmt = FORMATS.get(name, "csv")
        with tempfile.TemporaryDirectory(prefix="check_identical_", dir=a.tmp) as tmp:
            t0 = time.perf_counter()
            base = run(a.python, a.base, body, fmt, None, Path(tmp))
            head = run(a.python, a.head, body, fmt, head_workers, Path(tmp))
        differ = sorted(k for k in base.keys() | head.keys() if base.get(k) != head.get(k))
        bad += bool(differ) or not base
        status = "IDENTICAL" if not differ and base else "DIFFERENT"
        print(f"{name:10} {fmt:8} {len(base):3} files  {status}  "
              f"manifest {head.get('manifest.json', '-')[:16]}  "
              f"({time.perf_counter() - t0:.1f} s)", flush=True)
        for k in differ[:10]:
            print(f"    {k}: base {base.get(k, '-')[:16]} head {head.get(k, '-')[:16]}")
    print("ALL IDENTICAL" if not bad else f"{bad} case(s) differ")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
