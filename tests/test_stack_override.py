"""The local stack's one override: addresses only, the same rules and routes as compose."""

import pytest
import yaml

from ops.stack import ALERTMANAGER_DIR, PROMETHEUS_DIR, compose_flags, local_alertmanager_config, local_prometheus_config

PORTS = {"worker": 18080, "prometheus": 19090, "alertmanager-1": 19093, "alertmanager-2": 19193}


def test_prometheus_override_changes_only_addresses_and_paths(tmp_path):
    compose = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    local = local_prometheus_config(compose, PORTS, tmp_path / "workers.json")
    assert local["global"] == compose["global"]
    assert local["rule_files"] == [str(PROMETHEUS_DIR / "rules" / "*.yml")]
    # Both Alertmanagers, each by its own address: never one, never a balancer in front.
    assert local["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["127.0.0.1:19093", "127.0.0.1:19193"]
    assert local["alerting"]["alert_relabel_configs"] == compose["alerting"]["alert_relabel_configs"]
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in local["scrape_configs"] if "static_configs" in job}
    assert targets == {"prometheus": ["127.0.0.1:19090"], "alertmanager": ["127.0.0.1:19093", "127.0.0.1:19193"]}
    worker = next(j for j in local["scrape_configs"] if j["job_name"] == "enhancement-worker")
    original = next(j for j in compose["scrape_configs"] if j["job_name"] == "enhancement-worker")
    # Compose finds the replicas by DNS; the local stack by a file it writes with their addresses.
    assert worker["file_sd_configs"] == [{"files": [str(tmp_path / "workers.json")], "refresh_interval": "5s"}]
    assert "dns_sd_configs" not in worker
    assert worker["scrape_interval"] == original["scrape_interval"]
    assert worker["relabel_configs"] == original["relabel_configs"]
    assert original["dns_sd_configs"][0]["names"] == ["worker"], "the input is not modified"


def test_nginx_override_changes_only_the_upstreams_the_listen_address_and_paths(tmp_path):
    from ops.stack import NGINX_CONFIG, local_nginx_config

    compose = NGINX_CONFIG.read_text()
    local = local_nginx_config(compose, listen_port=18080, worker_ports=[1, 2, 3], workdir=tmp_path, user="nobody nogroup")
    servers = [line.strip() for line in local.splitlines() if line.strip().startswith("server 127.0.0.1:")]
    assert servers == [f"server 127.0.0.1:{port} max_fails=1 fail_timeout=5s;" for port in (1, 2, 3)]
    assert "listen 127.0.0.1:18080;" in local and "worker:8080" not in local
    assert local.startswith(f"pid {tmp_path / 'nginx' / 'nginx.pid'};") and "user nobody nogroup;" in local
    kept = [line for line in compose.splitlines() if "worker:8080" not in line and "listen 8080" not in line]
    assert all(line in local.splitlines() for line in kept), "every other line is compose's own"


def test_alertmanager_override_changes_only_the_webhook_and_template_paths():
    compose = yaml.safe_load((ALERTMANAGER_DIR / "alertmanager.yml").read_text())
    local = local_alertmanager_config(compose, "http://127.0.0.1:19095")
    assert local["route"] == compose["route"] and local["inhibit_rules"] == compose["inhibit_rules"]
    assert local["templates"] == [str(ALERTMANAGER_DIR / "templates" / "*.tmpl")]
    hooks = {h["url"] for r in local["receivers"] for h in r.get("webhook_configs", [])}
    assert hooks == {"http://127.0.0.1:19095/alerts", "http://127.0.0.1:19095/escalations", "http://127.0.0.1:19095/heartbeat"}
    assert [r["name"] for r in local["receivers"]] == [r["name"] for r in compose["receivers"]]


def test_a_webhook_that_is_not_the_compose_receiver_is_refused_rather_than_silently_kept():
    compose = yaml.safe_load((ALERTMANAGER_DIR / "alertmanager.yml").read_text())
    compose["receivers"][0]["webhook_configs"][0]["url"] = "http://elsewhere:1234/alerts"
    with pytest.raises(ValueError, match="elsewhere"):
        local_alertmanager_config(compose, "http://127.0.0.1:19095")


def test_the_local_stack_passes_the_same_server_flags_as_compose_less_paths_and_addresses():
    flags = compose_flags("prometheus")
    assert "--rules.alert.resend-delay=15s" in flags and "--enable-feature=exemplar-storage" in flags
    assert not [f for f in flags if f.startswith(("--config.file", "--storage.tsdb.path"))]
    # Cluster addresses are local ones; everything else (peer timeout, settle) would carry over.
    assert compose_flags("alertmanager-1") == compose_flags("alertmanager-2") == []
