"""DirectFile: O_DIRECT writes with a staged, padded and truncated tail."""
import errno
import os

import numpy as np
import pytest

from cdrexp.config import OutputConfig
from cdrexp.writers import OutputError, write_unit
from cdrexp.writers import _direct
from cdrexp.writers._direct import ALIGN, STAGE_BYTES, DirectFile
from writers_readback import files_under


def _direct_or_skip(path) -> DirectFile:
    f = DirectFile(str(path))
    if not f.direct:
        f.close()
        pytest.skip(f"{path.parent}'s filesystem refuses O_DIRECT")
    return f


@pytest.mark.parametrize("sizes", [[], [1], [ALIGN - 1], [ALIGN], [ALIGN + 1],
                                   [STAGE_BYTES - 1, 2], [STAGE_BYTES], [STAGE_BYTES + 1],
                                   [3, 5000, STAGE_BYTES * 2 + 7, 1, 0, 123457]])
def test_bytes_come_back_exactly(tmp_path, sizes):
    rng = np.random.default_rng(len(sizes) + sum(sizes))
    pieces = [rng.integers(0, 256, n, dtype=np.uint8).tobytes() for n in sizes]
    f = _direct_or_skip(tmp_path / "x")
    for p in pieces:
        assert f.write(p) == len(p)
    f.close()
    f.close()                                   # closing twice is harmless
    data = (tmp_path / "x").read_bytes()
    assert len(data) == f.size == sum(sizes)    # the padding is truncated away
    assert data == b"".join(pieces)


def test_writes_from_numpy_and_memoryview_slices(tmp_path):
    arr = np.arange(100_000, dtype=np.int64)
    f = _direct_or_skip(tmp_path / "x")
    f.write(arr)
    f.write(memoryview(arr.tobytes())[3:11])
    f.close()
    assert (tmp_path / "x").read_bytes() == arr.tobytes() + arr.tobytes()[3:11]


def test_o_direct_refused_at_open_gives_buffered_writes(tmp_path, monkeypatch):
    # as on filesystems without O_DIRECT (tmpfs before Linux 6.6, some FUSE ones)
    real_open = os.open

    def open_(path, flags, mode=0o777):
        if flags & _direct._DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, mode)

    monkeypatch.setattr(_direct.os, "open", open_)
    f = DirectFile(str(tmp_path / "x"))
    assert not f.direct
    f.write(b"abc" * 5000)
    f.close()
    assert (tmp_path / "x").read_bytes() == b"abc" * 5000


def test_o_direct_refused_on_write_switches_to_buffered(tmp_path, monkeypatch):
    f = _direct_or_skip(tmp_path / "x")
    real_write, refused = os.write, []

    def write(fd, data):
        if f.direct:
            refused.append(len(data))
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_write(fd, data)

    monkeypatch.setattr(_direct.os, "write", write)
    f.write(b"z" * (STAGE_BYTES + 10))
    f.close()
    assert refused == [STAGE_BYTES] and not f.direct
    assert (tmp_path / "x").read_bytes() == b"z" * (STAGE_BYTES + 10)


def test_a_really_full_disk_leaves_no_file(small_disk, records, unit):
    """The unit writes ~40 MB of csv onto 16 MB: ENOSPC from a direct write, reported
    with the path, and neither a final nor a temporary file left behind."""
    out = small_disk(16) / "out"
    (out / "2025-01-06").mkdir(parents=True)
    with pytest.raises(OutputError) as info:
        write_unit(records(250_000), OutputConfig(format="csv", rotate_bytes=4_000_000),
                   str(out), unit)
    assert info.value.errno == errno.ENOSPC and str(out) in str(info.value)
    assert files_under(out) == []


def test_a_closed_files_staging_buffer_serves_the_next_file(tmp_path):
    first = DirectFile(str(tmp_path / "a"))
    first.write(b"a" * 10)
    stage = first._stage
    first.close()
    second = DirectFile(str(tmp_path / "b"))
    assert second._stage is stage               # no fresh 8 MB to fault in
    second.write(b"b" * 5)                      # the old bytes do not leak into it
    second.close()
    assert (tmp_path / "b").read_bytes() == b"b" * 5


def test_no_descriptor_is_left_when_the_buffer_cannot_be_mapped(tmp_path, monkeypatch):
    """Issue 22: the file's descriptor leaked when mmap failed."""
    def no_memory(*a, **k):
        raise OSError(errno.ENOMEM, "Cannot allocate memory")
    monkeypatch.setattr(_direct, "_SPARE", [])
    monkeypatch.setattr(_direct.mmap, "mmap", no_memory)
    before = sorted(os.listdir("/proc/self/fd"))
    with pytest.raises(OSError, match="Cannot allocate memory"):
        DirectFile(str(tmp_path / "f.bin"))
    assert sorted(os.listdir("/proc/self/fd")) == before


def _mount_type(path: str) -> str:
    """The filesystem type of ``path``'s mount (/proc/mounts: the longest prefix)."""
    best, kind = "", ""
    with open("/proc/mounts") as fh:
        for line in fh:
            _, point, fstype = line.split()[:3]
            if (path == point or path.startswith(point.rstrip("/") + "/")) \
                    and len(point) > len(best):
                best, kind = point, fstype
    return kind


def test_only_a_device_counts_as_one(tmp_path):
    """tmpfs takes O_DIRECT (Linux 6.6+), but writing there is a copy by the CPU: the
    CSV writer's ring must not grow for it (``to_device`` False)."""
    if not os.path.exists("/proc/mounts"):
        pytest.skip("no /proc/mounts to tell filesystems apart")
    places = [str(tmp_path)] + (["/dev/shm"] if os.path.isdir("/dev/shm") else [])
    for place in places:
        path = os.path.join(place, f"cdrexp-test-{os.getpid()}.bin")
        f = _direct.DirectFile(path)
        try:
            in_memory = _mount_type(os.path.realpath(place)) in ("tmpfs", "ramfs")
            assert f.to_device == (f.direct and not in_memory), place
        finally:
            f.close()
            os.unlink(path)


def _vm_flags(address: int) -> list[str]:
    """The VmFlags of this process's mapping that holds ``address`` (/proc/self/smaps)."""
    current, flags = None, {}
    with open("/proc/self/smaps") as fh:
        for line in fh:
            head = line.split()[0]
            if "-" in head and not head.endswith(":"):
                lo, hi = (int(x, 16) for x in head.split("-"))
                current = (lo, hi)
            elif head == "VmFlags:" and current and current[0] <= address < current[1]:
                return line.split()[1:]
    raise AssertionError(f"no mapping holds {address:#x}")


@pytest.mark.skipif(not os.path.exists("/proc/self/smaps"), reason="no /proc/self/smaps")
def test_buffers_start_on_a_huge_page_advised_huge_and_their_tail_small():
    """A 2 MB O_DIRECT write from 4 KB pages is 512 segments for the device (a virtio
    disk here took it as three requests, ~580 MB/s; from huge pages ~900 MB/s in the
    same run): buffers start on a 2 MB boundary, advised huge pages for their whole
    2 MB pages, small pages past them (a line's slack must not fault in 2 MB more)."""
    buf = _direct._new_buffer(STAGE_BYTES + 5000)
    assert buf.ctypes.data % (2 << 20) == 0
    assert buf.size >= STAGE_BYTES + 5000 and buf.size % 4096 == 0
    buf[:] = 1
    thp = "/sys/kernel/mm/transparent_hugepage/enabled"
    if not os.path.exists(thp) or "[never]" in open(thp).read():
        pytest.skip("transparent huge pages are off in this kernel: nothing to advise")
    assert "hg" in _vm_flags(buf.ctypes.data)
    assert "hg" in _vm_flags(buf.ctypes.data + STAGE_BYTES - 1)
    assert "nh" in _vm_flags(buf.ctypes.data + STAGE_BYTES)


def test_take_buffer_gives_the_smallest_spare_that_fits(monkeypatch):
    monkeypatch.setattr(_direct, "_SPARE", [])
    big, small = _direct.take_buffer(3 * STAGE_BYTES), _direct.take_buffer(STAGE_BYTES)
    _direct.give_back(small)
    _direct.give_back(big)
    assert _direct.take_buffer(4096) is small
    assert _direct.take_buffer(STAGE_BYTES + 1) is big
    assert _direct.take_buffer(STAGE_BYTES).size >= STAGE_BYTES      # a new one


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_process_writing_into_an_inherited_spare_leaves_the_parents(monkeypatch):
    """Spares outlive the files that used them, and the workers are forked: a worker
    that takes a spare its parent held must get its own copy (shared anonymous memory
    would let two workers write the same buffer)."""
    monkeypatch.setattr(_direct, "_SPARE", [])
    buf = _direct.take_buffer(4 * 4096)
    buf[:] = 7
    _direct.give_back(buf)
    pid = os.fork()
    if pid == 0:            # the child: scribble over every spare it inherited
        code = 1
        try:
            for spare in _direct._SPARE:
                spare[:] = 9
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert (buf == 7).all()
