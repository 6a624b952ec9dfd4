"""What the numbers were measured on: printed beside every result so they can be compared."""

from __future__ import annotations

import os
import platform


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return None


def idle_info() -> dict[str, object]:
    """How an idle CPU waits: a virtual CPU that halts at once must be woken through the hypervisor
    at every hand-off (on this VM that was ~25 µs of a 80 µs round trip); guest halt polling
    (haltpoll's guest_halt_poll_ns, used when the cpuidle governor is haltpoll) keeps it spinning
    that long first."""
    cpuidle = "/sys/devices/system/cpu/cpuidle/"
    governor = _read(cpuidle + "current_governor") or _read(cpuidle + "current_governor_ro") or "none"
    poll_ns = _read("/sys/module/haltpoll/parameters/guest_halt_poll_ns") if governor == "haltpoll" else None
    return {"driver": _read(cpuidle + "current_driver") or "none", "governor": governor,
            "halt_poll_ns": int(poll_ns) if poll_ns and poll_ns.isdigit() else None}


def machine_info() -> dict[str, object]:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": platform.platform(),
        "idle": idle_info(),
    }
