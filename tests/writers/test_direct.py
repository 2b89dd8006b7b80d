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
