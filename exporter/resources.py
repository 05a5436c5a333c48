"""Host and GPU resources, read at scrape time.

Every read here is stateless and non-blocking: host CPU time is exported as
cumulative counters (``rate()`` turns them into a busy share), so no scrape
changes what another scraper sees, and NVML answers from the driver in
microseconds. Without a GPU, or without the NVML library, the GPU series are
simply absent.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import psutil
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)


# Linux counts guest time inside user and nice already: leaving it out keeps sum() over modes the total.
GUEST_MODES = frozenset({"guest", "guest_nice"})


class SystemCollector(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        memory = psutil.virtual_memory()
        cpu = CounterMetricFamily(
            "enhancement_system_cpu_seconds",
            "CPU time the host has spent in each mode, all cores summed, in seconds.",
            labels=["mode"],
        )
        for mode, seconds in psutil.cpu_times()._asdict().items():
            if mode not in GUEST_MODES:
                cpu.add_metric([mode], seconds)
        yield cpu
        yield GaugeMetricFamily("enhancement_system_memory_total_bytes", "Physical memory of the host, in bytes.", value=memory.total)
        yield GaugeMetricFamily(
            "enhancement_system_memory_available_bytes", "Memory available to new processes on the host, in bytes.", value=memory.available
        )


class GpuCollector(Collector):
    """NVML-backed GPU memory and utilisation; silent where there is no GPU."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._handles: list[tuple[str, object]] = []
        try:
            import pynvml

            pynvml.nvmlInit()
            self._nvml = pynvml
            for index in range(pynvml.nvmlDeviceGetCount()):
                self._handles.append((str(index), pynvml.nvmlDeviceGetHandleByIndex(index)))
        except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ImportError...
            logger.info("no GPU metrics: NVML unavailable (%s)", exc)
            self._nvml = None

    @property
    def gpu_count(self) -> int:
        return len(self._handles)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if not self._handles:
            return
        used = GaugeMetricFamily("enhancement_gpu_memory_used_bytes", "GPU memory in use, in bytes.", labels=["gpu"])
        total = GaugeMetricFamily("enhancement_gpu_memory_total_bytes", "GPU memory installed, in bytes.", labels=["gpu"])
        busy = GaugeMetricFamily(
            "enhancement_gpu_utilization_ratio", "Share of the last sample period the GPU was busy, from 0 to 1.", labels=["gpu"]
        )
        with self._lock:
            for gpu, handle in self._handles:
                try:
                    memory = self._nvml.nvmlDeviceGetMemoryInfo(handle)
                    rates = self._nvml.nvmlDeviceGetUtilizationRates(handle)
                except Exception:
                    logger.exception("NVML read failed for GPU %s", gpu)
                    continue
                used.add_metric([gpu], memory.used)
                total.add_metric([gpu], memory.total)
                busy.add_metric([gpu], rates.gpu / 100.0)
        yield used
        yield total
        yield busy
