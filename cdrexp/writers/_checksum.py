"""The checksum of every written file (``output.checksum``), computed as the bytes go out.

XXH128 by default (``xxhsum -H2`` checks it): the manifest's checksums guard against
truncated, corrupted or mixed-up files, which a 128-bit non-cryptographic hash does, at
~15-45 GB/s a core. On a 1M-subscriber csv run to disk (3.4 GB) BLAKE3 (3.7 GB/s a core
here) was 12 % of the run's CPU and sha256 (1.7 GB/s) ~19 %; on this VM every CPU-second
also slows the disk (docs/parallel.md, "The disk"). ``blake3`` (``b3sum``) and ``sha256``
(``sha256sum``) remain for who wants a cryptographic digest. All three release the GIL on
large buffers, so hashing overlaps formatting.
"""
from __future__ import annotations

import hashlib

from ..config import CHECKSUMS


def new_hash(algorithm: str):
    """A hash object (``update``, ``hexdigest``) of one of ``CHECKSUMS``."""
    if algorithm == "xxh128":
        import xxhash
        return xxhash.xxh3_128()
    if algorithm == "blake3":
        from blake3 import blake3
        return blake3()
    if algorithm == "sha256":
        return hashlib.sha256()
    raise ValueError(f"unknown checksum {algorithm!r}; one of {', '.join(CHECKSUMS)}")


def checksum_of(data, algorithm: str) -> str:
    h = new_hash(algorithm)
    h.update(data)
    return h.hexdigest()
