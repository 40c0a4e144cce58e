"""What the benchmarks read from /proc about a process (not a benchmark itself)."""

from __future__ import annotations


def rss_mb(pid: int | str = "self") -> float:
    """Resident memory of `pid` in MiB; 0.0 for a process that is gone."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0
