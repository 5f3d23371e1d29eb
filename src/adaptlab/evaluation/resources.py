"""Peak memory of a stretch of work, sampled while it runs."""

from __future__ import annotations

import resource
import threading


def current_rss_mb() -> float:
    """Resident memory of this process now, in MiB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB; peak, not current


def release_memory() -> None:
    """Hand memory freed by finished work back to the system: collect garbage, then ask glibc's allocator to return
    its free pages (`malloc_trim`), so the next contender's peak RSS starts from what is in use, not from what the
    ones before it left cached. Does nothing where glibc is not the allocator."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class PeakRss:
    """Context manager sampling RSS every 20 ms; `.peak_mb` is the highest seen inside it."""

    def __init__(self, interval: float = 0.02):
        self.interval = interval
        self.peak_mb = 0.0
        self._stop = threading.Event()

    def _sample(self):
        while not self._stop.wait(self.interval):
            self.peak_mb = max(self.peak_mb, current_rss_mb())

    def __enter__(self):
        self.peak_mb = current_rss_mb()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, current_rss_mb())
