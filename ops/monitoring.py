"""The one configuration every monitoring artefact is rendered from, as kubernetes-mixin's config is.

The rule generator (``deploy/prometheus/generate.py``), the Grafana dashboards
(``deploy/grafana/dashboards.py``) and the webhook receiver read these values;
nothing else spells them. To point runbook links at your own copy of the
runbook, or to scrape the worker under another job name, change them here and
run ``make generate``.
"""

from __future__ import annotations

# Where docs/runbook.md is published; every alert's runbook_url is this plus "#<alertname in lower case>".
RUNBOOK_URL_BASE = "https://github.com/enhancement-worker/enhancement-worker/blob/main/docs/runbook.md"
# The scrape job of the worker, and the label matchers that pick its series out of everything scraped.
WORKER_JOB = "enhancement-worker"
WORKER_SELECTOR = f'job="{WORKER_JOB}"'
# The `service` label every alert and SLO record carries, for routing and inhibition.
SERVICE = "enhancement-worker"


def runbook_url(alertname: str) -> str:
    """The absolute runbook link of one alert: the section of docs/runbook.md named after it."""
    return f"{RUNBOOK_URL_BASE}#{alertname.lower()}"
