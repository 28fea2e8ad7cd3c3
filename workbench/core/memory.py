"""Estimate before allocating: the memory this process may still use, and one check that refuses a request
that would not fit with a message naming the sizes, the estimate and the limit.

The limit is the smallest of: the cgroup's (v2 `memory.max` - `memory.current`, or v1 `limit_in_bytes` -
`usage_in_bytes`), the address-space rlimit (RLIMIT_AS) less what this process has mapped, and the
host's MemAvailable. A Binder or a container caps memory by its cgroup, which /proc/meminfo does not show.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

from workbench.core.declare import Real, Text, declare

__all__ = ["available_bytes", "require"]

CGROUP_FILES = (
    ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
    ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
)
HEADROOM = 0.8  # share of the free memory a single request may take


def _read_int(path: str) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # "max" (no limit) reads as None


def _meminfo(field: str) -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _mapped_bytes() -> int:
    """Virtual memory this process has mapped (what RLIMIT_AS counts)."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


def _free_memory() -> tuple[int, str]:
    """(bytes this process may still allocate, the limit that sets it): the smallest of the cgroup's, the
    address-space rlimit's and the host's."""
    limits = []
    for limit_file, usage_file in CGROUP_FILES:
        limit, usage = _read_int(limit_file), _read_int(usage_file)
        if limit is not None and usage is not None and limit < 2**60:
            limits.append((limit - usage, f"cgroup {Path(limit_file).name} {limit / 2**30:.2f} GiB"))
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        limits.append((soft - _mapped_bytes(), f"RLIMIT_AS {soft / 2**30:.2f} GiB"))
    host = _meminfo("MemAvailable")
    host = host if host is not None else os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    limits.append((host, "host MemAvailable"))
    have, source = min(limits)
    return max(0, have), source


@declare()
def available_bytes() -> int:
    """Bytes this process may still allocate: the smallest of the cgroup, rlimit and host limits."""
    return _free_memory()[0]


@declare(need=Real(0.0), what=Text(max_len=200), sizes=Text(max_len=1000), advice=Text(max_len=1000))
def require(need: float, what: str, sizes: str, advice: str = "use smaller sizes") -> None:
    """Raise ValueError before allocating when `need` bytes would not fit in the memory left."""
    have, source = _free_memory()
    if need > HEADROOM * have:
        raise ValueError(
            f"{what}: {sizes} needs about {need / 2**30:.2f} GiB but only {have / 2**30:.2f} GiB "
            f"of memory is free ({source}; a request may take {HEADROOM:.0%} of it); {advice}"
        )
