"""docker-compose.yml, the Dockerfile and the Grafana provisioning, checked statically."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ops import monitoring

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
GRAFANA = ROOT / "deploy" / "grafana"


def test_compose_file_validates_with_docker_compose():
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail("docker-compose is required: scripts/install-system-deps installs Debian's docker-compose")
    checked = subprocess.run(
        [binary, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        env={**os.environ, "GRAFANA_ADMIN_PASSWORD": "test-only"},
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr


def test_grafana_password_must_come_from_the_environment():
    binary = shutil.which("docker-compose") or pytest.fail("docker-compose is required")
    env = {k: v for k, v in os.environ.items() if k != "GRAFANA_ADMIN_PASSWORD"}
    checked = subprocess.run(
        [binary, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"], capture_output=True, text=True, env=env, timeout=60
    )
    assert checked.returncode != 0 and "GRAFANA_ADMIN_PASSWORD" in checked.stderr
    assert COMPOSE["services"]["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD:?")


def test_services_images_health_and_order():
    services = COMPOSE["services"]
    assert {"worker", "loadgen", "prometheus", "alertmanager", "grafana", "jaeger", "receiver"} <= set(services)
    for name, service in services.items():
        image = service.get("image", "")
        assert re.fullmatch(r"[\w./-]+:[\w.-]+", image) and not image.endswith(":latest"), f"{name}: pin its image ({image})"
        if "healthcheck" in service:
            assert "start_period" in service["healthcheck"], name
        for dependency in service.get("depends_on", {}).values():
            assert "condition" in dependency, name
    for name in ("worker", "prometheus", "alertmanager", "grafana", "jaeger", "receiver"):
        assert "healthcheck" in services[name], name
    assert set(COMPOSE["volumes"]) == {"prometheus-data", "alertmanager-data", "grafana-data"}


def test_every_mounted_path_exists_and_config_is_read_only():
    for name, service in COMPOSE["services"].items():
        for volume in service.get("volumes", []):
            source, target, *mode = volume.split(":")
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
                assert mode == ["ro"], f"{name} must mount {source} read-only"


def test_every_scrape_target_is_a_compose_service_and_port():
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    services = COMPOSE["services"]
    known_ports = {"worker": 8080, "prometheus": 9090, "alertmanager": 9093, "jaeger": 14269, "receiver": 9095}
    for job in config["scrape_configs"]:
        for static in job["static_configs"]:
            for target in static["targets"]:
                host, port = target.split(":")
                service = "prometheus" if host == "localhost" else host
                assert service in services, f"{job['job_name']} scrapes {target}: no such service"
                assert int(port) == known_ports[service], f"{target} is not {service}'s port"
    assert services["worker"]["environment"]["ENHANCEMENT_SERVICE__PORT"] == "8080"
    webhooks = {
        h["url"]
        for r in yaml.safe_load((ROOT / "deploy/alertmanager/alertmanager.yml").read_text())["receivers"]
        for h in r.get("webhook_configs", [])
    }
    assert webhooks == {"http://receiver:9095/alerts", "http://receiver:9095/escalations", "http://receiver:9095/heartbeat"}
    assert "--enable-feature=exemplar-storage" in services["prometheus"]["command"]
    assert "--rules.alert.resend-delay=15s" in services["prometheus"]["command"]
    # 90 days (three SLO windows), and alerts without the HA `replica` label so a pair deduplicates.
    assert "--storage.tsdb.retention.time=90d" in services["prometheus"]["command"]
    assert {"action": "labeldrop", "regex": "replica"} in config["alerting"]["alert_relabel_configs"]
    [worker_job] = [job for job in config["scrape_configs"] if job["job_name"] == monitoring.WORKER_JOB]
    assert worker_job["static_configs"][0]["labels"]["service"] == monitoring.SERVICE


def test_worker_image_runs_as_non_root():
    dockerfile = (ROOT / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.MULTILINE)
    assert users and users[-1] not in ("root", "0")


def test_dashboards_are_exactly_what_the_generator_writes(tmp_path):
    sys.path.insert(0, str(GRAFANA))
    try:
        import dashboards
    finally:
        sys.path.remove(str(GRAFANA))
    for name, text in dashboards.render().items():
        assert (GRAFANA / "dashboards" / name).read_text() == text, f"regenerate {name}: python deploy/grafana/dashboards.py"


def test_dashboards_have_fixed_uids_variables_and_known_datasources():
    datasources = yaml.safe_load((GRAFANA / "provisioning/datasources/datasources.yml").read_text())["datasources"]
    uids = {d["uid"] for d in datasources}
    assert uids == {"prometheus", "jaeger", "alertmanager"}
    prometheus = next(d for d in datasources if d["uid"] == "prometheus")
    assert prometheus["jsonData"]["exemplarTraceIdDestinations"] == [{"name": "trace_id", "datasourceUid": "jaeger"}]
    seen = set()
    for path in sorted((GRAFANA / "dashboards").glob("*.json")):
        board = json.loads(path.read_text())
        seen.add(board["uid"])
        assert "instance" in {v["name"] for v in board["templating"]["list"]}
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids))
        for panel in board["panels"]:
            if panel["type"] == "row":
                continue
            assert panel["datasource"]["uid"] in uids, panel["title"]
            assert panel["targets"], panel["title"]
            for target in panel["targets"]:
                assert target["datasource"]["uid"] in uids and target["expr"], panel["title"]
    assert seen == {"enhancement-overview", "enhancement-slo", "enhancement-resources"}
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/dashboards.yml").read_text())["providers"][0]
    mounts = COMPOSE["services"]["grafana"]["volumes"]
    assert f"./deploy/grafana/dashboards:{provider['options']['path']}:ro" in mounts


def test_overview_latency_panels_show_exemplars():
    board = json.loads((GRAFANA / "dashboards" / "overview.json").read_text())
    latency = [p for p in board["panels"] if "exemplars" in p["title"]]
    assert len(latency) == 2 and all(t["exemplar"] for p in latency for t in p["targets"])
