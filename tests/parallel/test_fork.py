"""When the executor may fork its workers (``parallel._fork``), checked in fresh
interpreters: this test process runs threads of its own (pytest-xdist's I/O thread)."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="counts threads in /proc/self/task")


def run_python(code: str) -> list[str]:
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.splitlines()


def test_fork_only_beside_threads_declared_safe():
    out = run_python("""
        import threading
        from cdrexp.parallel._fork import fork_blocker, mark_fork_safe
        print(fork_blocker())
        stop = threading.Event()
        t = threading.Thread(target=stop.wait, name="someone-elses")
        t.start()
        print(fork_blocker())
        mark_fork_safe(t)
        print(fork_blocker())
        stop.set(); t.join()
        import pyarrow          # starts jemalloc's background thread: fork-safe
        print(fork_blocker())
    """)
    assert out == ["None", "other threads run: someone-elses", "None", "None"]


def test_no_fork_beside_a_native_thread_pool():
    """OpenBLAS with two threads starts one outside Python's view, of unknown safety."""
    import os
    proc = subprocess.run(
        [sys.executable, "-c", "import numpy\n"
         "from cdrexp.parallel._fork import fork_blocker\nprint(fork_blocker())"],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "2"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "1 thread(s) outside Python run (a C library's pool)"


def test_a_fork_waits_for_a_safe_thread_to_be_quiet():
    """The memory sampler works inside ``quiet_for_fork()``: a fork started meanwhile
    happens only after it, so the child inherits no lock the sampler held."""
    out = run_python("""
        import os, threading, time
        from cdrexp.parallel._fork import quiet_for_fork
        inside, done = threading.Event(), []
        def work():
            with quiet_for_fork():
                inside.set()
                time.sleep(0.3)
                done.append(True)
        t = threading.Thread(target=work); t.start()
        inside.wait()
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        print(done == [True])
        os.waitpid(pid, 0); t.join()
    """)
    assert out == ["True"]


def test_the_heap_is_frozen_only_while_forking():
    out = run_python("""
        import gc
        from cdrexp.parallel._fork import forking
        with forking():
            print(gc.get_freeze_count() > 1000)
        print(gc.get_freeze_count())
        gc.freeze(); n = gc.get_freeze_count()
        with forking():
            pass
        print(gc.get_freeze_count() >= n)       # someone else's freeze stays
    """)
    assert out == ["True", "0", "True"]


def test_a_measured_run_forks_beside_its_memory_sampler(tmp_path):
    """``cli.repeats`` samples its tree from a thread while the workers start: they are
    still forked (this process's children, no forkserver, no resource tracker) and named
    ``cdrexp-worker``. The tree is read while a result comes in, when the workers live."""
    out = run_python(f"""
        import psutil
        from cdrexp.config import GeneratorConfig, ModelConfig
        from cdrexp.generation import generate
        from cdrexp.parallel import LocalExecutor
        from cdrexp.parallel.memory import TreeMemorySampler
        seen = []
        def on_progress(p):
            seen.append(sorted(c.name() for c in psutil.Process().children()))
        ex = LocalExecutor(2)
        with TreeMemorySampler(interval=0.001) as s:
            generate(GeneratorConfig(subs=4000, workers=2, out={str(tmp_path / 'o')!r},
                                     model=ModelConfig(chunk_size=1000)),
                     on_progress, executor=ex)
        print(ex.last_start_method, s.samples > 2, seen[0])
    """)
    assert out == ["fork True ['cdrexp-worker', 'cdrexp-worker']"]


def test_no_fork_under_cprofile():
    """A worker forked from a process under cProfile would inherit its profiler; from
    the forkserver each worker starts its own (``worker_profiling``)."""
    out = run_python("""
        import cProfile
        from cdrexp.parallel._fork import fork_blocker
        print(fork_blocker())
        prof = cProfile.Profile()
        prof.enable()
        blocker = fork_blocker()
        prof.disable()
        print(blocker)
        print(fork_blocker())
    """)
    assert out == ["None", "a profiler runs in this process (its workers profile themselves)",
                   "None"]


def test_python_3_12s_fork_warning_is_not_shown_for_an_allowed_fork():
    """Python 3.12+ warns on every fork of a process that runs threads; the workers' fork
    happens only beside threads known to be safe, so that warning would only alarm."""
    import warnings
    from cdrexp.parallel._fork import forking
    text = ("This process (pid=1) is multi-threaded, use of fork() may lead to deadlocks "
            "in the child.")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with forking():
            warnings.warn(text, DeprecationWarning)          # silenced
        with pytest.raises(DeprecationWarning):
            warnings.warn(text, DeprecationWarning)          # outside: as before
