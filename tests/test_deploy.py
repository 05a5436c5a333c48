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
sys.path.insert(0, str(ROOT / "deploy" / "grafana" / "schema"))
import check as schema_check  # noqa: E402  (a script beside the dashboards, not a package)

sys.path[0] = str(ROOT / "deploy" / "grafana")
import dashboards  # noqa: E402  (the generator, a script beside its output)

sys.path.pop(0)
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
    assert set(ports) == {"nginx", "prometheus", "alertmanager-1", "alertmanager-2", "grafana", "jaeger"}
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
        for key in service.get("environment") or {}:
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
    for name in ("worker", "nginx", "redis", "prometheus", "alertmanager-1", "alertmanager-2", "grafana", "jaeger", "receiver"):
        assert "healthcheck" in COMPOSE["services"][name], name
    assert set(COMPOSE["volumes"]) == {"redis-data", "prometheus-data", "alertmanager-1-data", "alertmanager-2-data", "grafana-data"}


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
        for dns in job.get("dns_sd_configs", []):
            assert dns["names"] == ["worker"] and dns["port"] == known_ports["worker"], "every worker replica, by compose's DNS"
        for static in job.get("static_configs", []):
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
    assert {"target_label": "service", "replacement": monitoring.SERVICE} in worker_job["relabel_configs"]


def test_the_fleet_is_replicas_behind_nginx_sharing_redis():
    services = COMPOSE["services"]
    worker = services["worker"]
    assert worker["deploy"]["replicas"] == 3 and "ports" not in worker, "replicas are reached through nginx only"
    assert worker["environment"]["ENHANCEMENT_JOBS__BACKEND"] == "redis"
    assert worker["environment"]["ENHANCEMENT_JOBS__REDIS_URL"] == "redis://redis:6379/0"
    assert worker["depends_on"]["redis"]["condition"] == "service_started", "a worker starts without Redis and says so"
    assert "--url=http://nginx:8080" in services["loadgen"]["command"]
    assert "./deploy/nginx/nginx.conf:/etc/nginx/nginx.conf:ro" in services["nginx"]["volumes"]
    assert "--appendonly" in services["redis"]["command"] and "noeviction" in services["redis"]["command"]
    conf = (ROOT / "deploy" / "nginx" / "nginx.conf").read_text()
    assert re.search(r"^\s*least_conn;", conf, re.MULTILINE)
    assert re.search(r"^\s*server worker:8080 max_fails=\d+ fail_timeout=\d+s;", conf, re.MULTILINE), "passive health checks"
    assert re.search(r"^\s*proxy_next_upstream error;", conf, re.MULTILINE), "retry on a connection failure only"
    assert "non_idempotent" not in conf, "a POST that reached a replica is never sent again"


def test_nginx_config_is_valid_as_nginx_reads_it(tmp_path):
    from ops.stack import local_nginx_config, nginx_binary

    config = tmp_path / "nginx.conf"
    (tmp_path / "nginx").mkdir()
    text = local_nginx_config(
        (ROOT / "deploy" / "nginx" / "nginx.conf").read_text(), listen_port=18080, worker_ports=[18081, 18082], workdir=tmp_path, user=None
    )
    config.write_text(text)
    assert "server 127.0.0.1:18081 max_fails=1 fail_timeout=5s;" in text and "listen 127.0.0.1:18080;" in text
    scratch = tmp_path / "nginx"
    checked = subprocess.run(
        [nginx_binary(), "-t", "-p", str(scratch), "-e", str(scratch / "error.log"), "-c", str(config)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr


def test_worker_image_runs_as_non_root():
    dockerfile = (ROOT / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.MULTILINE)
    assert users and users[-1] not in ("root", "0")


def test_dashboards_are_exactly_what_the_generator_writes(tmp_path):
    for name, text in dashboards.render().items():
        assert (GRAFANA / "dashboards" / name).read_text() == text, f"regenerate {name}: python deploy/grafana/dashboards.py"


def boards() -> dict[str, dict]:
    return {path.stem: json.loads(path.read_text()) for path in sorted((GRAFANA / "dashboards").glob("*.json"))}


def panels(board: dict) -> list[dict]:
    return [p for p in board["panels"] if p["type"] != "row"]


def test_dashboards_have_fixed_uids_variables_and_known_datasources():
    datasources = yaml.safe_load((GRAFANA / "provisioning/datasources/datasources.yml").read_text())["datasources"]
    uids = {d["uid"] for d in datasources}
    assert uids == {"prometheus", "jaeger", "alertmanager"}
    prometheus = next(d for d in datasources if d["uid"] == "prometheus")
    assert prometheus["jsonData"]["exemplarTraceIdDestinations"] == [{"name": "trace_id", "datasourceUid": "jaeger"}]
    seen = set()
    for board in boards().values():
        seen.add(board["uid"])
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids))
        for panel in panels(board):
            assert panel["datasource"]["uid"] in uids, panel["title"]
            assert panel.get("targets") or panel["type"] == "alertGroups", panel["title"]
            for target in panel.get("targets", []):
                assert target["datasource"]["uid"] in uids and target["expr"], panel["title"]
    assert seen == {"enhancement-overview", "enhancement-slo", "enhancement-resources"}
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/dashboards.yml").read_text())["providers"][0]
    mounts = COMPOSE["services"]["grafana"]["volumes"]
    assert f"./deploy/grafana/dashboards:{provider['options']['path']}:ro" in mounts


def test_dashboards_are_read_only_as_provisioned_and_rates_fit_the_scrape_interval():
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/dashboards.yml").read_text())["providers"][0]
    assert provider["allowUiUpdates"] is False
    assert all(board["editable"] is False for board in boards().values()), "an edit that cannot be saved must not be offered"
    datasources = yaml.safe_load((GRAFANA / "provisioning/datasources/datasources.yml").read_text())["datasources"]
    prometheus = next(d for d in datasources if d["uid"] == "prometheus")
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    [worker_job] = [job for job in config["scrape_configs"] if job["job_name"] == monitoring.WORKER_JOB]
    assert prometheus["jsonData"]["timeInterval"] == worker_job["scrape_interval"]


SCOPE_VARIABLES = {
    "enhancement-overview": {"job", "instance"},
    "enhancement-resources": {"job", "instance"},
    "enhancement-slo": {"service", "slo"},
}


def test_every_query_is_filtered_by_its_dashboard_variables_and_every_variable_is_used():
    for board in boards().values():
        names = {v["name"] for v in board["templating"]["list"]}
        scope = SCOPE_VARIABLES[board["uid"]]
        assert scope <= names, board["uid"]
        used = set()
        for panel in panels(board):
            texts = [t["expr"] for t in panel.get("targets", [])] + [panel.get("options", {}).get("labels", "")]
            for expr in filter(None, texts):
                found = set(re.findall(r"\$(\w+)", expr)) - {"__rate_interval"}
                used |= found
                # The fleet's gauges come from one replica at a time: filtering them by instance would hide them.
                needed = scope - {"instance"} if any(gauge in expr for gauge in dashboards.FLEET_GAUGES) else scope
                if panel["type"] != "alertGroups":
                    assert needed <= found, f"{board['uid']} / {panel['title']} ignores {needed - found}: {expr}"
        assert used == names, f"{board['uid']}: variables that filter nothing: {names - used}"
    instance = next(v for v in boards()["overview"]["templating"]["list"] if v["name"] == "instance")
    assert instance["multi"] and instance["includeAll"] and instance["allValue"] == ".*", "a fleet shows all replicas by default"


UNIT_BY_SUFFIX = {"_seconds": "s", "_db": "dB", "_lufs": "suffix: LUFS", "_dbtp": "suffix: dBTP", "_bytes": "bytes"}


def test_panels_carry_the_unit_of_what_they_show():
    checked = 0
    for board in boards().values():
        for panel in panels(board):
            if panel["type"] not in ("timeseries", "stat") or "histogram_quantile" not in "".join(t["expr"] for t in panel["targets"]):
                continue
            metric = re.search(r"(enhancement_\w+?)_bucket", panel["targets"][0]["expr"]).group(1)
            for suffix, unit in UNIT_BY_SUFFIX.items():
                if metric.endswith(suffix):
                    assert panel["fieldConfig"]["defaults"]["unit"] == unit, (
                        f"{panel['title']} shows {metric} as {panel['fieldConfig']['defaults']['unit']}"
                    )
                    checked += 1
    assert checked >= 7
    assert not [
        p["title"]
        for b in boards().values()
        for p in panels(b)
        if p.get("fieldConfig", {}).get("defaults", {}).get("unit") == "short" and re.search(r"dB|LUFS", p["title"])
    ]


def test_breaker_and_model_state_read_as_words_not_numbers():
    def mapped(board: dict, metric: str) -> dict:
        [panel] = [p for p in panels(board) if p["type"] == "stat" and metric in p["targets"][0]["expr"]]
        [mapping] = panel["fieldConfig"]["defaults"]["mappings"]
        return {value: result["text"] for value, result in mapping["options"].items()}

    assert mapped(boards()["overview"], "enhancement_circuit_breaker_state") == {"0": "closed", "1": "half-open", "2": "open"}
    assert mapped(boards()["resources"], "enhancement_model_loaded") == {"0": "not loaded", "1": "loaded"}


def test_overview_has_latency_heatmaps_with_exemplars_status_codes_queue_split_and_active_alerts():
    board = boards()["overview"]
    heatmaps = [p for p in panels(board) if p["type"] == "heatmap"]
    stage = [p for p in heatmaps if p.get("repeat") == "stage"]
    assert len(stage) == 1 and 'stage=~"$stage"' in stage[0]["targets"][0]["expr"], "one heatmap per stage"
    for panel in heatmaps:
        [query] = panel["targets"]
        assert query["format"] == "heatmap" and query["exemplar"] is True and "_bucket" in query["expr"], panel["title"]
    [codes] = [p for p in panels(board) if p["title"] == "HTTP answers by status code"]
    called_out = {o["matcher"]["options"] for o in codes["fieldConfig"]["overrides"]}
    assert called_out == {"429", "503"} and "by (code)" in codes["targets"][0]["expr"]
    [split] = [p for p in panels(board) if "queue" in p["title"].lower() and "processing" in p["title"].lower()]
    assert {"enhancement_queue_wait_seconds", "enhancement_request_duration_seconds"} <= set(
        re.findall(r"(enhancement_\w+?)_bucket", " ".join(t["expr"] for t in split["targets"]))
    )
    for board in (boards()["overview"], boards()["slo"]):
        [alerts] = [p for p in panels(board) if p["type"] == "alertGroups"]
        assert alerts["datasource"]["uid"] == "alertmanager" and alerts["options"]["alertmanager"] == "Alertmanager"


def test_slo_board_shows_each_sli_budget_and_burn_down():
    exprs = " ".join(t["expr"] for p in panels(boards()["slo"]) for t in p.get("targets", []))
    for series in (
        "slo:sli_error:ratio_rate30d",
        "slo:objective:ratio",
        "slo:period_error_budget_remaining:ratio",
        "slo:current_burn_rate:ratio",
    ):
        assert series in exprs
    [burn_down] = [p for p in panels(boards()["slo"]) if "burn-down" in p["title"]]
    assert burn_down["type"] == "timeseries" and "period_error_budget_remaining" in burn_down["targets"][0]["expr"]


def test_dashboards_type_check_against_grafanas_own_schema():
    checked = schema_check.type_check({f"{name}.json": board for name, board in boards().items()})
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize(
    ("breakage", "complaint"),
    [
        (lambda p: p["options"]["legend"].update(placemnt="bottom"), "placemnt"),
        (lambda p: p["options"]["tooltip"].update(mode="sometimes"), "sometimes"),
        (lambda p: p["fieldConfig"]["defaults"].update(unit=5), "'number' is not assignable to type 'string'"),
    ],
)
def test_the_schema_check_fails_on_a_misspelt_option_a_bad_enum_or_a_wrong_type(breakage, complaint):
    board = boards()["resources"]
    breakage(next(p for p in panels(board) if p["type"] == "timeseries"))
    checked = schema_check.type_check({"broken.json": board})
    assert checked.returncode != 0 and complaint in checked.stdout, checked.stdout
