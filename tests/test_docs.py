"""Every Python and shell block of README.md and docs/*.md runs, so that a snippet cannot
rot: each command as written (``cdrexp.compare`` through the ``main`` its ``__main__``
calls, in this process), with small sizes substituted (``subs=300``, one measured
run); what needs a server, a second revision, a cluster or minutes of measuring is listed
in ``SKIPPED`` with the reason, and a command that is neither run nor listed fails the
test (a new snippet must be made runnable here or listed). The runs that `cdrexp.compare`
reads are made once per session (``seeded_store``), and a command that already ran in an
earlier block at the same size on the same state is not started again (the block lists it,
naming that block)."""
from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(python|bash)\n(.*?)^```", re.S | re.M)

# (regular expression on the command, why it does not run here); the first match wins
SKIPPED = [
    (r"^python3 -m venv ", "set-up: installing 1.2 GB (README gives its time and size)"),
    (r"-m pytest( -n 2 --dist loadfile)?( -m \"not slow\")?$",
     "the test suite itself: CI runs it"),
    (r"^mlflow ui", "a server: tests/tracking/test_ui.py serves the runs and opens the "
                    "printed links in a browser"),
    (r"cdrexp\.ab\b|run_ab\(", "a second revision built and measured for minutes: "
                               "tests/ab/ runs cdrexp.ab end to end on a scratch repository"),
    (r"--compare [A-Z]+ [A-Z]+|--diff-profile (A B|RUN_A RUN_B)",
     "placeholder run ids: tests/compare/ names real ones"),
    (r"^python -m pytest benchmarks/micro --benchmark-(autosave|compare)|"
     r"^pytest-benchmark compare", "needs earlier saved benchmark runs"),
    (r"^python -m pytest benchmarks/micro(?! --benchmark-disable)",
     "a measurement of minutes (the --benchmark-disable line runs each kernel once)"),
    (r"^benchmarks/build_rust_seed\.sh ", "builds the Rust seed from a fetched mirror "
                                            "(minutes of cargo; docs/rust-seed.md)"),
    (r"rs_cdr_generator ", "the Rust seed, built as docs/rust-seed.md says"),
    (r"^python benchmarks/", "a measurement of minutes against another revision or at "
                             "full size"),
    (r"^git worktree ", "creates a checkout of another revision"),
    (r"^dask (scheduler|worker)|executor\.address=", "a Dask cluster on other machines"),
    (r"hydra/launcher=slurm", "a SLURM cluster"),
    (r"deploy/local/|out=s3://\$", "the team stack (PostgreSQL, S3, MLflow server, SLURM): "
                                   "tests/team/ starts it with deploy/local/up.sh"),
]
SMALL = "subs=300"
TIMEOUT = 600
# what this session already ran: (command at its small size, what it ran on) -> the block
_RAN: dict[tuple[str, str], str] = {}


def _blocks():
    for page in PAGES:
        text = page.read_text()
        for m in FENCE.finditer(text):
            line = text[:m.start()].count("\n") + 1
            yield pytest.param(m.group(1), m.group(2), id=f"{page.name}:{line}")


def _commands(block: str) -> list[str]:
    """Shell commands of a block: comments dropped, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", block)
    out = []
    for line in joined.splitlines():
        cmd = re.sub(r"\s+#.*$", "", line).strip()
        if cmd and not cmd.startswith("#"):
            out.append(cmd)
    return out


def _skip_reason(cmd: str):
    return next((why for pattern, why in SKIPPED if re.search(pattern, cmd)), None)


def _small(cmd: str) -> str:
    """The command at a size that runs in seconds: the same options otherwise."""
    if re.match(r"python -m cdrexp(?!\.)", cmd) and "--cfg" not in cmd and "--help" not in cmd:
        multi = " -m " in f" {cmd} "
        subs = SMALL + (",400" if multi and re.search(r"subs=[\d_]+,", cmd) else "")
        cmd = re.sub(r"\bsubs=[\d_,]+", subs, cmd)
        if "subs=" not in cmd:          # the default's 10,000, or a preset's ladder
            cmd += f" {SMALL}"
        cmd = re.sub(r"\bdays=\d+", "days=2", cmd)
        if "repeats=" not in cmd:
            cmd += " repeats=1 warmup=0"
    return cmd


def _run(cmd: str, cwd: Path) -> subprocess.CompletedProcess:
    if re.match(r"python -m cdrexp\.compare( |$)", cmd) and not re.search(r"[|&;<>$`*?]",
                                                                         cmd):
        return _compare_here(shlex.split(cmd)[3:], cwd)
    line = re.sub(r"^(python|\.venv/bin/python) ", shlex.quote(sys.executable) + " ", cmd)
    if re.search(r"(^| )benchmarks/", cmd):
        cwd = ROOT                      # paths of the repository, as the page assumes
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(line, shell=True, cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=TIMEOUT)


def _compare_here(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """``python -m cdrexp.compare ARGV`` in ``cwd``, as its ``__main__`` does it
    (``sys.exit(cli.main())``), in this process: each process would spend ~4.5 s of CPU
    importing MLflow and SciPy before the seconds' work (a dozen of them were a minute
    of the suite's CPU). tests/compare/ starts the command as a process."""
    from cdrexp.compare.cli import main
    out, err = io.StringIO(), io.StringIO()
    here = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:           # argparse's errors and --help
                code = exc.code if isinstance(exc.code, int) else (exc.code is not None)
    finally:
        os.chdir(here)
    return subprocess.CompletedProcess(["cdrexp.compare", *argv], int(code or 0),
                                       out.getvalue(), err.getvalue())


def _seed_runs(cwd: Path) -> None:
    """Two small runs of one config: what `cdrexp.compare` reads."""
    for _ in range(2):
        proc = _run(f"python -m cdrexp {SMALL} repeats=3 warmup=0", cwd)
        assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.fixture(scope="session")
def seeded_store(tmp_path_factory) -> Path:
    """The seeded runs, made once for every block that starts with `cdrexp.compare`: each
    block gets a copy of the store (its runs' artifacts stay here, where they were made)."""
    seeded = tmp_path_factory.mktemp("seeded_store")
    _seed_runs(seeded)
    return seeded


def test_every_command_is_run_or_skipped_with_a_reason():
    """The rules above cover what the pages say (no command silently ignored)."""
    commands = [c for p in _blocks() if p.values[0] == "bash"
                for c in _commands(p.values[1])]
    assert len(commands) > 40
    skipped = [c for c in commands if _skip_reason(c)]
    run = [c for c in commands if not _skip_reason(c)]
    assert len(run) > 25, skipped
    for cmd in run:
        assert re.match(r"(python -m (cdrexp|pytest)\b|python benchmarks/)", cmd), cmd


def test_small_sizes_keep_the_options():
    assert _small("python -m cdrexp -m subs=1000,10000,100000 workers=1,2") == \
        "python -m cdrexp -m subs=300,400 workers=1,2 repeats=1 warmup=0"
    assert _small("python -m cdrexp subs=1000000 days=7 output=parquet") == \
        "python -m cdrexp subs=300 days=2 output=parquet repeats=1 warmup=0"
    assert _small("python -m cdrexp --cfg job") == "python -m cdrexp --cfg job"
    assert _small("python -m cdrexp.compare --trends") == "python -m cdrexp.compare --trends"


@pytest.mark.slow
@pytest.mark.timeout(1800)               # a block of several runs, on a loaded machine
@pytest.mark.parametrize("lang, block", list(_blocks()))
def test_block_runs(lang, block, tmp_path, request):
    if lang == "python":
        if _skip_reason(block):
            pytest.skip(_skip_reason(block))
        code = re.sub(r"\bsubs=[\d_]+", "subs=2_000", block)
        proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path,
                              capture_output=True, text=True, timeout=TIMEOUT)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return
    ran, skipped, seeded = 0, [], False
    commands = _commands(block)
    for i, cmd in enumerate(commands):
        why = _skip_reason(cmd)
        if why:
            skipped.append(f"{cmd}: {why}")
            continue
        if "cdrexp.compare" in cmd and not (tmp_path / "mlflow.db").exists():
            shutil.copytree(request.getfixturevalue("seeded_store"), tmp_path,
                            dirs_exist_ok=True)
            seeded = True
        # the same run in any directory, the same compare on the same seeded runs: one
        # process for both blocks; a run this block's own compare reads runs here
        key, may_skip = None, True
        if re.match(r"python -m cdrexp(?!\.)", cmd):
            key = (_small(cmd), "")
            may_skip = not any("cdrexp.compare" in c and not _skip_reason(c)
                               for c in commands[i + 1:])
        elif seeded and "cdrexp.compare" in cmd:
            key = (_small(cmd), " on a copy of the seeded store")
        if key in _RAN and may_skip:
            skipped.append(f"{cmd}: the same command{key[1]} ran in {_RAN[key]}")
            continue
        proc = _run(_small(cmd), tmp_path)
        assert proc.returncode == 0, (f"{_small(cmd)} exited {proc.returncode}\n"
                                      f"{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
        if key:
            _RAN.setdefault(key, request.node.callspec.id)
        ran += 1
    if not ran:
        pytest.skip("; ".join(skipped))
