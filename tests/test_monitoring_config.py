"""The monitoring config as the real tools see it: promtool, amtool, and the rules' own contract."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ops import monitoring

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS = ROOT / "deploy" / "prometheus"
RULES = sorted((PROMETHEUS / "rules").glob("*.yml"))
ALERTMANAGER = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
RUNBOOK = ROOT / "docs" / "runbook.md"


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is required: scripts/install-system-deps installs it from Debian")
    return path


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


def rules_of(kind: str):
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if kind in rule:
                    yield path, rule


def test_prometheus_config_and_rules_pass_promtool_check():
    checked = run(tool("promtool"), "check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(RULES)} rule files found" in checked.stdout
    rules = run(tool("promtool"), "check", "rules", *map(str, RULES))
    assert rules.returncode == 0, rules.stdout + rules.stderr


@pytest.mark.parametrize("rule_file", RULES, ids=lambda p: p.name)
def test_each_rule_file_has_its_promtool_test_and_it_passes(rule_file):
    test_file = PROMETHEUS / "tests" / f"{rule_file.stem}-test.yml"
    assert test_file.exists(), f"{rule_file.name} needs {test_file.name}"
    result = run(tool("promtool"), "test", "rules", str(test_file))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_recording_rule_has_a_promql_expr_test():
    for path, rule in rules_of("record"):
        tests = yaml.safe_load((PROMETHEUS / "tests" / f"{path.stem}-test.yml").read_text())["tests"]
        exprs = [t["expr"] for case in tests for t in case.get("promql_expr_test", [])]
        assert any(rule["record"] in e for e in exprs), f"{rule['record']} ({path.name}) has no promql_expr_test"


def test_every_alert_is_tested_both_before_and_after_its_for():
    for path, rule in rules_of("alert"):
        tests = yaml.safe_load((PROMETHEUS / "tests" / f"{path.stem}-test.yml").read_text())["tests"]
        checks = [c for case in tests for c in case.get("alert_rule_test", []) if c["alertname"] == rule["alert"]]
        assert any(not c["exp_alerts"] for c in checks), f"{rule['alert']}: no not-yet-firing case"
        firing = [a for c in checks for a in c["exp_alerts"]]
        assert firing, f"{rule['alert']}: no firing case"
        for alert in firing:
            assert set(alert["exp_annotations"]) == {"summary", "description", "runbook_url"}
            assert alert["exp_labels"]["severity"] == rule["labels"]["severity"]


def test_every_alert_follows_the_contract():
    runbook = RUNBOOK.read_text()
    sections = {line[3:].strip().lower() for line in runbook.splitlines() if line.startswith("## ")}
    alerts = list(rules_of("alert"))
    assert len(alerts) >= 35
    for _, rule in alerts:
        name = rule["alert"]
        assert rule.get("for"), f"{name} has no for"
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        annotations = rule["annotations"]
        assert annotations["summary"].endswith("."), name
        assert "{{" in annotations["description"], f"{name}: description must be templated"
        assert annotations["runbook_url"] == monitoring.runbook_url(name), name
        assert name.lower() in sections, f"docs/runbook.md lacks a section for {name}"


def test_every_threshold_alert_explains_its_threshold():
    lines = (PROMETHEUS / "rules" / "alerts.yml").read_text().splitlines()
    for index, line in enumerate(lines):
        if line.strip().startswith("- alert:"):
            block = []
            for following in lines[index + 1 :]:
                if following.strip().startswith("- alert:"):
                    break
                block.append(following)
            assert any(b.strip().startswith("#") for b in block), f"{line.strip()} has no comment saying why"


def test_every_rule_file_is_exactly_what_the_generator_writes():
    checked = run(sys.executable, str(PROMETHEUS / "generate.py"), "--check")
    assert checked.returncode == 0, checked.stderr


def test_no_rule_reads_a_worker_series_without_the_shared_selector():
    worker_series = re.compile(r"(?<![:\w])(enhancement_[a-z0-9_]+|process_[a-z_]+)(\{[^}]*\}|\b)")
    targets = re.compile(r"(?<![:\w])up(\{[^}]*\}|\b)")
    for path, rule in rules_of("expr"):
        where = f"{path.name}: {rule.get('alert') or rule.get('record')}"
        for match in worker_series.finditer(rule["expr"]):
            assert monitoring.WORKER_SELECTOR in match.group(2), f"{where} reads {match.group(0)}"
        for match in targets.finditer(rule["expr"]):
            assert "job=" in match.group(1), f"{where} reads up without naming a job"


def _runbook_anchors() -> set[str]:
    """GitHub's anchors for the runbook's headings: lower case, punctuation dropped, spaces as hyphens."""
    headings = [line.lstrip("#").strip() for line in RUNBOOK.read_text().splitlines() if line.startswith("#")]
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def _runbook_links() -> dict[str, list[str]]:
    """Every runbook link anywhere the project writes one: rules, rule tests, dashboards, the receiver."""
    from ops import receiver

    places = [
        *PROMETHEUS.glob("rules/*.yml"),
        *PROMETHEUS.glob("tests/*.yml"),
        *(ROOT / "deploy" / "grafana").glob("dashboards/*.json"),
        Path(receiver.__file__),
    ]
    link = re.compile(re.escape(monitoring.RUNBOOK_URL_BASE) + r"(#[\w-]*)?")
    found = {str(path.relative_to(ROOT)): [m.group(0) for m in link.finditer(path.read_text())] for path in places}
    found["ops/receiver.py (rendered)"] = [monitoring.runbook_url(receiver.MISSING_HEARTBEAT_ALERT)]
    return found


def test_every_runbook_link_is_absolute_and_resolves_to_a_section():
    assert monitoring.RUNBOOK_URL_BASE.startswith("https://") and monitoring.RUNBOOK_URL_BASE.endswith("docs/runbook.md")
    anchors = _runbook_anchors()
    links = _runbook_links()
    assert sum(map(len, links.values())) > 30 and all(links[p] for p in links if "rules/" in p and "recording" not in p)
    for place, urls in links.items():
        for url in urls:
            anchor = url.partition("#")[2]
            assert not anchor or anchor in anchors, f"{place}: {url} names no section of docs/runbook.md"
    relative = [path for path in (ROOT / "deploy").rglob("*") if path.is_file() and "runbook_url: docs/" in path.read_text(errors="ignore")]
    assert not relative, f"relative runbook links in {relative}"


def test_slo_rules_have_the_three_sloth_groups_and_windows():
    groups = yaml.safe_load((PROMETHEUS / "rules" / "slo.yml").read_text())["groups"]
    assert [g["name"] for g in groups] == ["enhancement-slo-sli", "enhancement-slo-objectives", "enhancement-slo-alerts"]
    records = {r["record"] for r in groups[0]["rules"]}
    for window in ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"):
        assert f"slo:sli_error:ratio_rate{window}" in records
    assert all(g["interval"] == "1m" for g in groups), "SLO groups evaluate once a minute"
    thirty_days = next(r for r in groups[0]["rules"] if r["record"] == "slo:sli_error:ratio_rate30d")
    assert "slo:sli_error:ratio_rate5m" in thirty_days["expr"] and "enhancement_" not in thirty_days["expr"]
    slos = {r["labels"]["slo"] for r in groups[1]["rules"]}
    assert slos == {"availability", "latency", "quality"}
    alerts = {a["alert"]: a for a in groups[2]["rules"]}
    assert set(alerts) == {
        "EnhancementSLOAvailabilityBurnPage",
        "EnhancementSLOAvailabilityBurnTicket",
        "EnhancementSLOLatencyBurnPage",
        "EnhancementSLOLatencyBurnTicket",
        "EnhancementSLOQualityBurnTicket",
    }, "one alert per SLO and severity; quality never pages"
    for alert in alerts.values():
        assert alert["expr"].count("slo:sli_total:increase") == 2, f"{alert['alert']} lacks a minimum-traffic guard on a window"
    assert alerts["EnhancementSLOQualityBurnTicket"]["expr"].count("slo:sli_errors:increase") == 2, "quality needs bad events too"
    factors = sorted({float(m) for a in alerts.values() for m in re.findall(r"([0-9.]+)x", a["annotations"]["summary"])})
    assert factors == [1.0, 3.0, 6.0, 14.4]


def test_latency_slo_threshold_sits_on_a_bucket_boundary():
    from exporter.metrics import RESPONSE_TIME_RATIO_BUCKETS

    text = (PROMETHEUS / "rules" / "slo.yml").read_text()
    thresholds = set(re.findall(r'enhancement_response_time_ratio_bucket\{[^}]*le="([0-9.]+)"\}', text))
    assert thresholds and all(float(t) in RESPONSE_TIME_RATIO_BUCKETS for t in thresholds)


def test_alertmanager_config_passes_amtool():
    checked = run(tool("amtool"), "check-config", str(ALERTMANAGER))
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize(
    "labels, receivers",
    [
        (["severity=critical"], "webhook-critical"),
        (["severity=warning"], "webhook"),
        (["severity=info"], "webhook-info"),
        (["severity=critical", "notify_pagerduty=enabled"], "pagerduty,webhook-critical"),
        (["severity=warning", "notify_slack=enabled", "notify_email=enabled"], "slack,email,webhook"),
        (["severity=info", "notify_pagerduty=enabled"], "webhook-info"),
        (["alertname=Watchdog", "severity=info", "notify_pagerduty=enabled"], "heartbeat"),
        (["alertname=EnhancementCriticalUnresolved", "severity=critical", "escalate=true"], "escalation"),
    ],
    ids=[
        "critical",
        "warning",
        "info",
        "critical with pagerduty on",
        "warning with slack and email on",
        "info never pages",
        "the watchdog goes only to the heartbeat",
        "an unresolved critical escalates to the second receiver",
    ],
)
def test_each_severity_is_routed_where_it_should_go(labels, receivers):
    if not any(label.startswith("alertname=") for label in labels):
        labels = ["alertname=EnhancementCircuitBreakerOpen", *labels]
    routed = run(tool("amtool"), "config", "routes", "test", f"--config.file={ALERTMANAGER}", "service=enhancement-worker", *labels)
    assert routed.stdout.strip() == receivers, routed.stdout + routed.stderr


def test_alertmanager_groups_inhibits_and_reads_secrets_from_files():
    config = yaml.safe_load(ALERTMANAGER.read_text())
    assert config["route"]["group_by"] == ["alertname", "service"]
    inhibit = config["inhibit_rules"]
    # A page explains the worker's warnings (an SLO page its ticket too), never the watchers',
    # nor the one that names the cause (a model that will not load).
    assert {
        "source_matchers": ['severity="critical"'],
        "target_matchers": ['severity="warning"', 'alertname=~"Enhancement.*"', 'alertname!="EnhancementModelNotLoaded"'],
        "equal": ["service"],
    } in inhibit
    assert {
        "source_matchers": ['alertname="EnhancementCircuitBreakerOpen"'],
        "target_matchers": ['alertname=~"EnhancementLowSuccessRate|EnhancementHighFallbackRate"'],
        "equal": ["service"],
    } in inhibit
    assert any('alertname="EnhancementWorkerDown"' in r["source_matchers"] and r["equal"] == ["instance"] for r in inhibit)
    repeats = {r["receiver"]: r.get("repeat_interval") for r in config["route"]["routes"] if "repeat_interval" in r}
    assert repeats == {"escalation": "1h", "heartbeat": "30s", "webhook-critical": "1h", "webhook": "4h", "webhook-info": "24h"}
    text = ALERTMANAGER.read_text()
    assert "routing_key_file" in text and "api_url_file" in text and "smtp_auth_password_file" in text
    assert not re.search(r"(routing_key|api_url|auth_password):\s", text), "secrets must come from files"
