"""``python _reap.py RESULT.json -- CMD ...``: run CMD and account for its whole tree.

The generator's workers may be forked by a forkserver (older revisions' always were),
and that forkserver outlives the main process by a moment and is never waited for by it: orphaned, it would be reparented
to init, and the CPU time of every worker would vanish from the accounting (``time`` in
a shell shows 1.1 s user for a 2-worker run that kept both cores busy for 4 s). This
wrapper makes itself the *child subreaper* of CMD (``PR_SET_CHILD_SUBREAPER``), so
orphans are reparented to it; it reaps every descendant, and its ``RUSAGE_CHILDREN`` is
then the CPU time of the whole tree. It runs as a script (standard library only), not as
a module, because the side being measured need not have ``cdrexp.ab`` at all.

RESULT.json gets ``{"returncode", "wall_s", "cpu_s"}``; ``wall_s`` ends when CMD itself
exits. SIGINT and SIGTERM are passed on to CMD.
"""
from __future__ import annotations

import ctypes
import errno
import json
import os
import resource
import signal
import subprocess
import sys
import time

PR_SET_CHILD_SUBREAPER = 36


def set_subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def reap_all() -> None:
    """Wait for every remaining descendant (reparented orphans included)."""
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return
        except OSError as exc:
            if exc.errno != errno.EINTR:
                raise


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: _reap.py RESULT.json -- CMD ...", file=sys.stderr)
        return 2
    result_file, cmd = argv[0], argv[2:]
    set_subreaper()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd)
    forward = lambda signum, frame: proc.send_signal(signum)  # noqa: E731
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, forward)
    returncode = proc.wait()
    wall = time.perf_counter() - t0
    reap_all()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    tmp = result_file + ".tmp"
    with open(tmp, "w") as fh:
        json.dump({"returncode": returncode, "wall_s": wall,
                   "cpu_s": usage.ru_utime + usage.ru_stime}, fh)
    os.replace(tmp, result_file)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
