"""Where `top` reads from: a worker's own /metrics, or a Prometheus server for a fleet.

Both give the same thing, the raw samples of each replica (``Samples``), so one piece of code
turns them into what the screen shows. Reading /metrics is an ordinary scrape: it changes
nothing a worker reports to any other scraper (a test checks it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families

from ops import monitoring

Labels = tuple[tuple[str, str], ...]
# Every sample of one replica: sample name -> [(labels, value)].
Samples = dict[str, list[tuple[dict[str, str], float]]]

# The series top reads from Prometheus: the worker's own families and the process collector's.
PROMETHEUS_SERIES = (
    f'{{{monitoring.WORKER_SELECTOR}, __name__=~"enhancement_.+|process_cpu_seconds_total|process_resident_memory_bytes|up"}}'
)
# Recording rules the fleet line shows, from deploy/prometheus/src/recording.yml.
FLEET_RULES = {
    "clips_per_s": "sum(job:enhancement_requests:rate5m)",
    "success_ratio": "min(job:enhancement_requests_success:ratio_rate5m)",
    "p95_s": "max(job:enhancement_request_duration_seconds:p95_5m)",
    "rtf": "max(job:enhancement_real_time_factor:mean5m)",
}


@dataclass
class Reading:
    """One refresh: each replica's samples, and whatever else the source knows."""

    replicas: dict[str, Samples]
    ready: dict[str, bool | None] = field(default_factory=dict)
    fleet: dict[str, float] = field(default_factory=dict)
    error: str | None = None


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
    return samples


class _HttpSource:
    def __init__(self, url: str, timeout_s: float) -> None:
        self.url = url.rstrip("/")
        self._client = httpx.Client(timeout=timeout_s)

    @property
    def name(self) -> str:
        return self.url


class MetricsSource(_HttpSource):
    """A single worker, read from its /metrics and /readyz."""

    def __init__(self, url: str, timeout_s: float = 5.0) -> None:
        super().__init__(url, timeout_s)

    def read(self) -> Reading:
        try:
            metrics = self._client.get(self.url + "/metrics", headers={"accept": "text/plain"})
            metrics.raise_for_status()
            ready = self._client.get(self.url + "/readyz").status_code == 200
        except httpx.HTTPError as exc:
            return Reading({}, error=f"{self.url}: {exc}")
        return Reading({self.url: parse(metrics.text)}, ready={self.url: ready})


class PrometheusSource(_HttpSource):
    """Every replica Prometheus scrapes under the worker's job, plus the fleet's recording rules."""

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        super().__init__(url, timeout_s)

    def _query(self, expr: str) -> list[dict]:
        response = self._client.get(self.url + "/api/v1/query", params={"query": expr})
        response.raise_for_status()
        return response.json()["data"]["result"]

    def read(self) -> Reading:
        try:
            series = self._query(PROMETHEUS_SERIES)
            fleet = {name: float(result[0]["value"][1]) for name, expr in FLEET_RULES.items() if (result := self._query(expr))}
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            return Reading({}, error=f"{self.url}: {exc}")
        replicas: dict[str, Samples] = {}
        for item in series:
            labels = dict(item["metric"])
            name = labels.pop("__name__")
            instance = labels.get("instance", "?")
            replicas.setdefault(instance, {}).setdefault(name, []).append((labels, float(item["value"][1])))
        ready = {instance: _up(samples) for instance, samples in replicas.items()}
        return Reading(replicas, ready=ready, fleet=fleet)


def _up(samples: Samples) -> bool | None:
    """Prometheus's view of readiness: scraped, and the model loaded."""
    up = [value for _, value in samples.get("up", [])]
    loaded = [value for _, value in samples.get("enhancement_model_loaded", [])]
    if not up:
        return None
    return bool(up[0]) and bool(loaded) and min(loaded) == 1


def active_alerts(alertmanager_url: str, timeout_s: float = 5.0) -> list[dict] | str:
    """The alerts Alertmanager would notify now (not silenced or inhibited), or why it could not say."""
    try:
        response = httpx.get(
            alertmanager_url.rstrip("/") + "/api/v2/alerts",
            params={"active": "true", "silenced": "false", "inhibited": "false"},
            timeout=timeout_s,
        )
        response.raise_for_status()
    except httpx.HTTPError as exc:
        return f"{alertmanager_url}: {exc}"
    return sorted(response.json(), key=lambda alert: (alert["labels"].get("severity", ""), alert["labels"].get("alertname", "")))
