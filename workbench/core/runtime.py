"""Facts about the machine a kernel runs on, for sizing thread pools on small containers (Binder)."""

from __future__ import annotations

import math
import os
from pathlib import Path

from workbench.core.declare import declare

__all__ = ["available_cpus"]


@declare()
def available_cpus() -> int:
    """CPUs this process may use: the cgroup CPU quota (v2 cpu.max or v1 cfs quota) and the affinity
    mask, whichever is smaller; os.cpu_count() reports the host's CPUs inside containers."""
    limits = [len(os.sched_getaffinity(0))] if hasattr(os, "sched_getaffinity") else [os.cpu_count() or 1]
    v2 = Path("/sys/fs/cgroup/cpu.max")
    v1q, v1p = Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us")
    try:
        if v2.exists():
            quota, period = v2.read_text().split()[:2]
            if quota != "max":
                limits.append(math.ceil(int(quota) / int(period)))
        elif v1q.exists() and int(v1q.read_text()) > 0:
            limits.append(math.ceil(int(v1q.read_text()) / int(v1p.read_text())))
    except (OSError, ValueError):
        pass
    return max(1, min(limits))
