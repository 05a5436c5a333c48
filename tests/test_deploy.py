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


def compose_config(**env: str) -> dict:
    """The compose file as docker-compose resolves it, with these environment variables set."""
    binary = shutil.which("docker-compose") or pytest.fail("docker-compose is required: scripts/install-system-deps installs it")
    resolved = subprocess.run(
        [binary, "-f", str(ROOT / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("ENHANCEMENT_")}, **env},
        timeout=60,
    )
    assert resolved.returncode == 0, resolved.stderr
    return yaml.safe_load(resolved.stdout)


def published(config: dict) -> dict[str, list[str]]:
    return {name: [str(p) for p in service.get("ports", [])] for name, service in config["services"].items() if service.get("ports")}


def test_compose_file_validates_and_publishes_every_port_on_loopback_only_by_default():
    ports = published(compose_config())
    assert set(ports) == {"worker", "prometheus", "alertmanager-1", "alertmanager-2", "grafana", "jaeger"}
    for name, mappings in ports.items():
        assert all(m.startswith("127.0.0.1:") for m in mappings), f"{name} publishes {mappings}"
    opened = published(compose_config(ENHANCEMENT_BIND_ADDRESS="0.0.0.0"))
    assert all(m.startswith("0.0.0.0:") for mappings in opened.values() for m in mappings), "one variable opens them all"
    assert not any(":9094:9094" in m or m.endswith(":9094/tcp") for mappings in ports.values() for m in mappings), "gossip stays inside"


def test_secrets_are_files_never_environment_values():
    services = COMPOSE["services"]
    assert set(COMPOSE["secrets"]) == {"grafana_admin_password", "worker_api_token"}
    grafana = services["grafana"]
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/run/secrets/grafana_admin_password"
    assert grafana["secrets"] == ["grafana_admin_password"]
    assert services["worker"]["environment"]["ENHANCEMENT_SERVICE__AUTH_TOKEN_FILE"] == "/run/secrets/worker_api_token"
    assert "--token-file=/run/secrets/worker_api_token" in services["loadgen"]["command"]
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            assert not re.search(r"PASSWORD|TOKEN|SECRET|KEY", key) or key.endswith("_FILE"), f"{name} passes {key} by value"


def test_make_secrets_writes_random_readable_files_in_a_private_folder_and_keeps_them(tmp_path):
    target = tmp_path / "secrets"
    for _ in range(2):
        subprocess.run([str(ROOT / "scripts" / "make-secrets"), str(target)], check=True, capture_output=True, timeout=30)
    assert sorted(p.name for p in target.iterdir()) == sorted(COMPOSE["secrets"])
    assert target.stat().st_mode & 0o777 == 0o700
    values = {p.read_text().strip() for p in target.iterdir()}
    assert len(values) == 2 and all(len(v) >= 24 for v in values)
    assert all(COMPOSE["secrets"][name]["file"] == f"./secrets/{name}" for name in COMPOSE["secrets"])


def test_every_service_restarts_has_limits_and_a_pinned_image():
    for name, service in COMPOSE["services"].items():
        assert service.get("restart") == "unless-stopped", name
        limits = service.get("deploy", {}).get("resources", {}).get("limits", {})
        assert {"cpus", "memory"} <= set(limits), f"{name} needs cpu and memory limits"
        image = service.get("image", "")
        assert re.fullmatch(r"[\w./-]+:[\w.${}:-]+", image) and not image.endswith(":latest"), f"{name}: pin its image ({image})"
        if "healthcheck" in service:
            assert "start_period" in service["healthcheck"], name
        for dependency in service.get("depends_on", {}).values():
            assert "condition" in dependency, name
    for name in ("worker", "prometheus", "alertmanager-1", "alertmanager-2", "grafana", "jaeger", "receiver"):
        assert "healthcheck" in COMPOSE["services"][name], name
    assert set(COMPOSE["volumes"]) == {"prometheus-data", "alertmanager-1-data", "alertmanager-2-data", "grafana-data"}


def test_monitoring_starts_whatever_the_worker_state_and_healthchecks_probe_liveness():
    services = COMPOSE["services"]
    for name in ("prometheus", "alertmanager-1", "alertmanager-2", "grafana", "receiver", "jaeger"):
        assert "worker" not in services[name].get("depends_on", {}), f"{name} must not wait for the worker"
        assert not any(d["condition"] == "service_healthy" for d in services[name].get("depends_on", {}).values()), name
    probe = " ".join(services["worker"]["healthcheck"]["test"])
    assert "/healthz" in probe and "/readyz" not in probe, "a worker without its model is alive, and must stay up to say why"
    for name in ("prometheus", "alertmanager-1", "alertmanager-2"):
        assert "/-/healthy" in " ".join(services[name]["healthcheck"]["test"]), name


def test_lifecycle_api_is_off_jaeger_is_bounded_and_the_load_generator_is_opt_in():
    services = COMPOSE["services"]
    assert not any("--web.enable-lifecycle" in flag for s in services.values() for flag in s.get("command") or [])
    assert int(services["jaeger"]["environment"]["MEMORY_MAX_TRACES"]) > 0
    assert services["loadgen"]["profiles"] == ["load"]
    assert all("profiles" not in s for name, s in services.items() if name != "loadgen")


def test_two_alertmanagers_peer_each_other_and_prometheus_sends_to_both_directly():
    services = COMPOSE["services"]
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    [alerting] = config["alerting"]["alertmanagers"]
    assert alerting["static_configs"][0]["targets"] == ["alertmanager-1:9093", "alertmanager-2:9093"]
    for name, peer in (("alertmanager-1", "alertmanager-2"), ("alertmanager-2", "alertmanager-1")):
        command = services[name]["command"]
        assert f"--cluster.peer={peer}:9094" in command and "--cluster.listen-address=0.0.0.0:9094" in command
        assert services[name]["image"] == services["alertmanager-1"]["image"]
        assert f"{name}-data:/alertmanager" in services[name]["volumes"], "each replica keeps its own silences and log"


def test_compose_pins_the_versions_the_tests_run():
    installer = (ROOT / "scripts" / "install-system-deps").read_text()
    prometheus = re.search(r"^PROMETHEUS_VERSION=(\S+)", installer, re.MULTILINE).group(1)
    alertmanager = re.search(r"^ALERTMANAGER_VERSION=(\S+)", installer, re.MULTILINE).group(1)
    assert COMPOSE["services"]["prometheus"]["image"] == f"prom/prometheus:v{prometheus}"
    assert COMPOSE["services"]["alertmanager-1"]["image"] == f"prom/alertmanager:v{alertmanager}"
    for binary, expected in (("prometheus", prometheus), ("promtool", prometheus), ("prometheus-alertmanager", alertmanager)):
        shown = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
        assert f"version {expected}" in (shown.stdout + shown.stderr), f"{binary} is not {expected}: scripts/install-system-deps"


def test_the_worker_image_tag_and_build_argument_name_its_weights():
    services = COMPOSE["services"]
    tag = "enhancement-worker:0.1.0-${ENHANCEMENT_MODEL_SOURCE:-shipped}"
    assert services["worker"]["image"] == services["receiver"]["image"] == services["loadgen"]["image"] == tag
    assert services["worker"]["build"]["args"]["MODEL_SOURCE"] == "${ENHANCEMENT_MODEL_SOURCE:-shipped}"
    assert compose_config(ENHANCEMENT_MODEL_SOURCE="official")["services"]["worker"]["image"] == "enhancement-worker:0.1.0-official"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "ARG MODEL_SOURCE=shipped" in dockerfile and "FETCH_OFFICIAL" not in dockerfile


def dockerfile_model_step(model_source: str) -> subprocess.CompletedProcess:
    """The Dockerfile's RUN that picks the weights, run by sh with the build argument set."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    step = re.search(r'^RUN (case "\$MODEL_SOURCE" in.*?esac)$', dockerfile, re.MULTILINE | re.DOTALL).group(1)
    return subprocess.run(
        ["sh", "-c", step.replace("\\\n", " ")],
        env={"MODEL_SOURCE": model_source, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_the_image_build_says_which_weights_it_chose_and_refuses_an_unknown_choice():
    shipped = dockerfile_model_step("shipped")
    assert shipped.returncode == 0 and "MODEL_SOURCE=shipped" in shipped.stdout
    unknown = dockerfile_model_step("latest")
    assert unknown.returncode == 1 and "shipped or official" in unknown.stderr


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"ENHANCEMENT_IMAGE_MODEL_SOURCE": "official"}, "/opt/models/metricgan-plus-voicebank"),
        ({"ENHANCEMENT_IMAGE_MODEL_SOURCE": "shipped"}, ""),
        ({"ENHANCEMENT_IMAGE_MODEL_SOURCE": "official", "ENHANCEMENT_MODEL__SOURCE": "/models/mine"}, "/models/mine"),
    ],
)
def test_the_entrypoint_runs_the_weights_the_image_was_built_with_unless_told_otherwise(env, expected):
    shown = subprocess.run(
        ["sh", str(ROOT / "scripts" / "docker-entrypoint"), "sh", "-c", 'printf %s "$ENHANCEMENT_MODEL__SOURCE"'],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert shown.returncode == 0 and shown.stdout == expected


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
    known_ports = {"worker": 8080, "prometheus": 9090, "alertmanager-1": 9093, "alertmanager-2": 9093, "jaeger": 14269, "receiver": 9095}
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
