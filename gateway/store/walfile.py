"""The WAL and its -shm as files, read without SQLite (https://www.sqlite.org/fileformat.html
section 4): what SQLite's recovery would take of the WAL and what it would drop, and the frames the
-shm says were committed. `gateway.store.walcheck` judges; this only reads.

A WAL is a 32-byte header (magic, whose low bit says whether checksums read the words big-endian,
version, page size, checkpoint sequence, two salts, the header's checksum) and frames of a 24-byte
header (page number, database size after a commit or 0, the salts, the cumulative checksum) and one
page. Recovery stops at the first frame whose salts differ (an earlier generation's) or whose
checksum fails, and keeps the frames up to the last commit before it.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

WAL_HEADER = 32
FRAME_HEADER = 24
WAL_MAGIC_LE = 0x377F0682  # checksums over little-endian words
WAL_MAGIC_BE = 0x377F0683  # ... over big-endian words
WAL_VERSION = 3007000
SHM_HEADER = 48  # one copy of the wal-index header; two copies lead the -shm
_MASK = 0xFFFFFFFF


def wal_path(db: Path) -> Path:
    return Path(f"{db}-wal")


def shm_path(db: Path) -> Path:
    return Path(f"{db}-shm")


# ---- the WAL file -------------------------------------------------------------------------------


def checksum(data: bytes, s0: int, s1: int, big_endian: bool) -> tuple[int, int]:
    """SQLite's WAL checksum of `data` (a multiple of 8 bytes), continued from (s0, s1): about half a
    millisecond a frame in Python, so the frames SQLite's own recovery vouches for are not summed
    again (`recovered_frames`)."""
    words = struct.unpack(f"{'>' if big_endian else '<'}{len(data) // 4}I", data)
    for i in range(0, len(words), 2):
        s0 = (s0 + words[i] + s1) & _MASK
        s1 = (s1 + words[i + 1] + s0) & _MASK
    return s0, s1


@dataclass
class WalScan:
    """What the WAL holds, as SQLite's recovery would read it, and what it would drop."""

    size: int = 0  # bytes; 0 also for a missing file
    header_ok: bool = False
    salts: bytes = b""  # the header's 8 salt bytes
    committed: int = 0  # frames up to the last commit frame SQLite would take
    damaged: int | None = None  # 1-based index of the first frame with the salts failing its checksum
    committed_after: int = 0  # intact commit frames with the salts after the damaged one

    @property
    def frames_present(self) -> bool:
        return self.size >= WAL_HEADER + FRAME_HEADER


def scan_wal(path: Path, trusted: Callable[[int], int] | None = None) -> WalScan:
    """Read the WAL at `path` frame by frame (a missing file reads as empty).

    `trusted(page_size)`: how many frames from the start SQLite's recovery found valid and committed
    (`recovered_frames`); those are not summed again, only the frames after them."""
    try:
        f = path.open("rb")
    except FileNotFoundError:
        return WalScan()
    with f:
        size = os.fstat(f.fileno()).st_size
        scan = WalScan(size=size)
        header = f.read(WAL_HEADER)
        if len(header) < WAL_HEADER:
            return scan
        magic, version, page_size = struct.unpack(">III", header[:12])
        if magic not in (WAL_MAGIC_LE, WAL_MAGIC_BE) or version != WAL_VERSION:
            return scan
        if page_size < 512 or page_size > 65536 or page_size & (page_size - 1):
            return scan
        big = magic == WAL_MAGIC_BE
        s0, s1 = checksum(header[:24], 0, 0, big)
        if (s0, s1) != struct.unpack(">II", header[24:32]):
            return scan
        scan.header_ok = True
        scan.salts = header[16:24]
        frame_size = FRAME_HEADER + page_size
        index = 0
        stored = (s0, s1)  # the checksum stored in the frame before (the header's, for the first)
        if trusted is not None and (valid := trusted(page_size)) > 0:
            f.seek(WAL_HEADER + (valid - 1) * frame_size)
            last = f.read(FRAME_HEADER)
            if len(last) == FRAME_HEADER and last[8:16] == scan.salts and last[4:8] != bytes(4):
                index = scan.committed = valid
                stored = s0, s1 = struct.unpack(">II", last[16:24])
                f.seek(WAL_HEADER + valid * frame_size)
            else:  # not what SQLite should have found: sum it all
                f.seek(WAL_HEADER)
        while len(frame := f.read(frame_size)) == frame_size:
            index += 1
            if frame[8:16] != scan.salts:
                if scan.damaged is None:
                    break  # a frame of an earlier generation: the end of the log, as SQLite reads it
                stored = struct.unpack(">II", frame[16:24])
                continue
            commit = struct.unpack(">I", frame[4:8])[0] != 0
            own = struct.unpack(">II", frame[16:24])
            if scan.damaged is None:
                s0, s1 = checksum(frame[:8] + frame[FRAME_HEADER:], s0, s1, big)
                if (s0, s1) == own:
                    if commit:
                        scan.committed = index
                else:
                    scan.damaged = index
            elif commit and checksum(frame[:8] + frame[FRAME_HEADER:], *stored, big) == own:
                scan.committed_after += 1
            stored = own
        return scan


# ---- the -shm's header ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ShmHeader:
    max_frame: int  # frames of the WAL committed, as SQLite last wrote it
    salts: bytes  # the WAL header's salt bytes it goes with; zero: rebuilt from an empty log
    # Frames a checkpoint has copied into the database file (nBackfill, after the two header copies):
    # SQLite raises it only once the copy is in the file (synced, at synchronous NORMAL or FULL).
    backfill: int = 0


def read_shm(path: Path) -> ShmHeader | None:
    """The wal-index header of the -shm at `path`, when both of its copies agree and check out."""
    try:
        with path.open("rb") as f:
            data = f.read(2 * SHM_HEADER + 4)
    except OSError:
        return None
    if len(data) < 2 * SHM_HEADER or data[:SHM_HEADER] != data[SHM_HEADER : 2 * SHM_HEADER]:
        return None
    version, _, _, is_init, big, _, max_frame = struct.unpack("=IIIBBHI", data[:20])
    if version != WAL_VERSION or is_init != 1:
        return None
    if checksum(data[:40], 0, 0, bool(big)) != struct.unpack("=II", data[40:48]):
        return None
    backfill = struct.unpack("=I", data[2 * SHM_HEADER :])[0] if len(data) == 2 * SHM_HEADER + 4 else 0
    return ShmHeader(max_frame=max_frame, salts=data[32:40], backfill=backfill)
