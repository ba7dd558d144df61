"""CPU seconds of processes, read from Linux's /proc: one process (its finished threads included), and the browser a
benchmark launched (every chromium process descended from it, no one else's)."""

from __future__ import annotations

import os
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process, its finished threads included (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def parent_pid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def is_descendant(pid: int, ancestor: int) -> bool:
    while pid > 1:
        pid = parent_pid(pid)
        if pid == ancestor:
            return True
    return False


def browser_pids() -> list[int]:
    """The processes of the browser this benchmark launched (through Playwright's driver), not anyone else's."""
    pids = []
    for process in Path("/proc").glob("[0-9]*"):
        try:
            pid = int(process.name)
            if "chromium" in (process / "cmdline").read_text().split("\0")[0] and is_descendant(pid, os.getpid()):
                pids.append(pid)
        except (OSError, ValueError, IndexError):
            continue  # it ended meanwhile
    return pids


def browser_cpu_seconds() -> float:
    total = 0.0
    for pid in browser_pids():
        try:
            total += cpu_seconds(pid)
        except (OSError, IndexError):
            continue
    return total
