"""The shared-memory segment: layout, zero-copy views, ownership, release."""
from __future__ import annotations

import os

import numpy as np
import pytest

from cdrexp.parallel._shm import AttachedSegment, OwnedSegment


def arrays():
    return {"a": np.arange(1001, dtype=np.int64), "b": np.linspace(0, 1, 7, dtype=np.float32),
            "grid": np.arange(12, dtype=np.int16).reshape(3, 4),
            "empty": np.zeros(0, dtype=np.uint8)}


def test_round_trip_zero_copy_read_only():
    src = arrays()
    with OwnedSegment(src) as seg:
        assert seg.name.startswith(f"cdrexp_{os.getpid()}_")
        assert os.path.exists(f"/dev/shm/{seg.name}")
        att = AttachedSegment(seg.spec)
        for k, v in src.items():
            got = att.arrays[k]
            assert got.dtype == v.dtype and got.shape == v.shape
            np.testing.assert_array_equal(got, v)
            assert not got.flags.writeable
            if got.size:
                assert got.ctypes.data % 64 == 0       # aligned, views into the segment
        with pytest.raises(ValueError, match="read-only"):
            att.arrays["a"][0] = 5
        att.close()
    assert not os.path.exists(f"/dev/shm/{seg.name}")


def test_release_is_idempotent_and_survives_an_outside_unlink():
    seg = OwnedSegment(arrays())
    os.unlink(f"/dev/shm/{seg.name}")
    seg.release()
    seg.release()
    assert seg._shm is None          # released once, and the second call was a no-op
    assert not os.path.exists(f"/dev/shm/{seg.name}")


def test_object_arrays_are_refused():
    with pytest.raises(TypeError, match="'names' holds Python objects"):
        OwnedSegment({"names": np.array(["x", None], dtype=object)})


def test_no_resource_tracker_is_started(tmp_path):
    """Creating and attaching segments starts no tracker process (~7 MB of PSS each)."""
    import subprocess
    import sys
    code = ("import numpy as np\n"
            "from multiprocessing import resource_tracker\n"
            "from cdrexp.parallel._shm import AttachedSegment, OwnedSegment\n"
            "with OwnedSegment({'a': np.arange(10)}) as seg:\n"
            "    AttachedSegment(seg.spec).close()\n"
            "print(resource_tracker._resource_tracker._pid)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "None" and proc.stderr == ""


def test_the_segments_of_a_dead_owner_are_swept(tmp_path, monkeypatch):
    """A segment whose creator is gone (SIGKILL before any worker could unlink it) is
    unlinked by the next process that creates one. Kept: a segment still locked by its
    creator (one in another PID namespace, whose pid means nothing here), a young one
    (maybe not locked yet), one whose pid lives (an older cdrexp took no lock)."""
    import subprocess
    import sys
    import time
    from cdrexp.parallel import _shm
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(dead.stdout)
    names = {k: f"{_shm.NAME_PREFIX}{pid}_{k}" for k, pid in [
        ("0000aaaa", dead_pid), ("0000bbbb", dead_pid), ("0000cccc", dead_pid),
        ("0000dddd", os.getppid())]}
    orphan, locked, young, living = names.values()
    held = None
    try:
        for name in names.values():
            seg = _shm._Segment(name, 4096, create=True)
            if name == locked:
                held = seg
            else:
                seg.close()
            if name != young:
                old = time.time() - 2 * _shm.ORPHAN_MIN_AGE_S
                os.utime(f"/dev/shm/{name}", (old, old))
        monkeypatch.setattr(_shm, "_swept", False)
        with OwnedSegment(arrays()):
            left = {n for n in names.values() if os.path.exists(f"/dev/shm/{n}")}
        assert left == {locked, young, living}
        monkeypatch.setattr(_shm, "_swept", False)
        assert _shm.sweep_orphans() == []        # nothing more to sweep
    finally:
        if held is not None:
            held.close()
        for name in names.values():
            _shm.unlink(name)


@pytest.mark.parametrize("name, pid", [("cdrexp_123_abcd", 123), ("cdrexp_x_abcd", None),
                                       ("other_123_abcd", None), ("cdrexp_123", None)])
def test_owner_pid(name, pid):
    from cdrexp.parallel._shm import owner_pid
    assert owner_pid(name) == pid


def test_an_owner_is_gone_when_dead_or_a_zombie():
    """A SIGKILLed runner stays a zombie until its parent reaps it: its workers must
    already count it gone, and so must the sweep."""
    import subprocess
    import sys
    import time
    from cdrexp.parallel._shm import NAME_PREFIX, owner_gone
    assert not owner_gone(f"{NAME_PREFIX}{os.getpid()}_0000aaaa")
    assert not owner_gone("not_ours")
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    name = f"{NAME_PREFIX}{child.pid}_0000aaaa"
    deadline = time.monotonic() + 30
    while not owner_gone(name) and time.monotonic() < deadline:
        time.sleep(0.05)            # exits, then waits unreaped: a zombie
    assert owner_gone(name)
    child.wait()
    assert owner_gone(name)         # reaped: no such process
