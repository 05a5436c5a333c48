"""deploy/kubernetes/: generated from deploy/ without drift, every overlay rendered by kubectl kustomize,
built-in kinds validated strictly, custom resources against their CRD schemas, checkov clean; and each
check shown failing on a resource that breaks it."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
KUBERNETES = ROOT / "deploy" / "kubernetes"


def load_script(name: str, path: Path) -> ModuleType:
    """A script beside the manifests, under its own module name: deploy/ has other check.py and generate.py."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


check = load_script("kubernetes_check", KUBERNETES / "check.py")
generate = load_script("kubernetes_generate", KUBERNETES / "generate.py")


@pytest.fixture(scope="module")
def bin_dir() -> Path:
    return check.tools()


@pytest.fixture(scope="module")
def packages() -> Path:
    return check.node_packages()


@pytest.fixture(scope="module")
def rendered(bin_dir) -> dict[str, tuple[list[dict], list[dict]]]:
    return {overlay: check.split(check.render(overlay, bin_dir)) for overlay in check.OVERLAYS}


def find(resources: list[dict], kind: str, name: str | None = None) -> dict:
    [found] = [r for r in resources if r["kind"] == kind and (name is None or r["metadata"]["name"] == name)]
    return found


def test_the_generated_files_are_exactly_what_the_generator_writes():
    result = subprocess.run([sys.executable, str(KUBERNETES / "generate.py"), "--check"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    for name, text in generate.render().items():
        assert (KUBERNETES / name).read_text() == text, name


def test_the_overlays_are_cpu_gpu_and_the_redis_fleet_with_either_autoscaler(rendered):
    assert set(rendered) == {"cpu", "gpu", "fleet", "fleet-hpa", "batch"}
    for overlay, (built_in, custom) in rendered.items():
        assert all(r["metadata"].get("namespace") == "enhancement" for r in built_in + custom), overlay


def test_every_built_in_resource_passes_strict_validation(rendered, bin_dir):
    for overlay, (built_in, _) in rendered.items():
        result = check.validate_built_in(built_in, bin_dir)
        assert result.returncode == 0, f"{overlay}: {result.stdout}{result.stderr}"


def test_strict_validation_refuses_an_unknown_field(rendered, bin_dir):
    deployment = json.loads(json.dumps(find(rendered["cpu"][0], "Deployment", generate.NAME)))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {"httpGet": {"path": "/healthz", "port": 8080}}
    result = check.validate_built_in([deployment], bin_dir)
    assert result.returncode != 0 and "livenesProbe" in result.stdout + result.stderr


def test_every_custom_resource_passes_its_crd_schema(rendered, packages):
    for overlay, (_, custom) in rendered.items():
        if not custom:
            continue  # the batch Job has none
        result = check.validate_custom(custom, packages)
        assert result.returncode == 0, f"{overlay}: {result.stdout}{result.stderr}"
        assert result.stdout.count("valid ") == len(custom)
    kinds = {r["kind"] for _, custom in rendered.values() for r in custom}
    assert kinds == {"ServiceMonitor", "PrometheusRule", "AlertmanagerConfig", "ScaledObject"}


@pytest.mark.parametrize(
    ("kind", "breakage", "complaint"),
    [
        ("ScaledObject", lambda r: r["spec"].update(minReplicaCount="two"), "minReplicaCount must be integer"),
        ("PrometheusRule", lambda r: r["spec"]["groups"][0]["rules"][0].pop("expr"), "expr"),
        ("ServiceMonitor", lambda r: r["spec"]["endpoints"][0].update(interval=5), "interval"),
        ("AlertmanagerConfig", lambda r: r["spec"]["route"].update(groupWait=30), "groupWait"),
    ],
)
def test_the_crd_check_refuses_a_broken_resource(rendered, packages, kind, breakage, complaint):
    resource = json.loads(json.dumps(next(r for r in rendered["fleet"][1] if r["kind"] == kind)))
    breakage(resource)
    result = check.validate_custom([resource], packages)
    assert result.returncode != 0 and complaint in result.stdout, result.stdout


def test_every_alert_and_recording_rule_is_in_a_prometheus_rule_and_every_dashboard_in_a_sidecar_config_map(rendered):
    wanted_rules = {
        rule.get("alert") or rule.get("record")
        for path in (ROOT / "deploy" / "prometheus" / "rules").glob("*.yml")
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    }
    wanted_boards = {path.name for path in (ROOT / "deploy" / "grafana" / "dashboards").glob("*.json")}
    for overlay, (built_in, custom) in rendered.items():
        if overlay == "batch":
            continue
        rules = {
            rule.get("alert") or rule.get("record")
            for r in custom
            if r["kind"] == "PrometheusRule"
            for group in r["spec"]["groups"]
            for rule in group["rules"]
        }
        assert rules == wanted_rules, overlay
        boards = {
            name
            for r in built_in
            if r["kind"] == "ConfigMap" and r["metadata"]["labels"].get("grafana_dashboard") == "1"
            for name in r["data"]
        }
        assert boards == wanted_boards, overlay


def test_the_alertmanager_config_mirrors_the_compose_routing(rendered):
    compose = yaml.safe_load((ROOT / "deploy" / "alertmanager" / "alertmanager.yml").read_text())
    mirrored = find(rendered["cpu"][1], "AlertmanagerConfig")["spec"]

    def receivers(route: dict) -> list[str]:
        return [route["receiver"]] + [name for child in route.get("routes", []) for name in receivers(child)]

    assert receivers(mirrored["route"]) == receivers(compose["route"])
    assert [r["name"] for r in mirrored["receivers"]] == [r["name"] for r in compose["receivers"]]
    assert len(mirrored["inhibitRules"]) == len(compose["inhibit_rules"])
    critical = next(r for r in mirrored["route"]["routes"] if r["receiver"] == "webhook-critical")
    assert critical["matchers"] == [{"name": "severity", "matchType": "=", "value": "critical"}]
    assert critical["groupWait"] == "5s"
    templates = find(rendered["cpu"][0], "ConfigMap", f"{generate.NAME}-alertmanager-templates")
    assert set(templates["data"]) == {p.name for p in (ROOT / "deploy" / "alertmanager" / "templates").glob("*.tmpl")}


def test_the_worker_deployment_probes_drains_and_runs_locked_down(rendered):
    deployment = find(rendered["cpu"][0], "Deployment", generate.NAME)
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120, "the model loads before liveness counts"
    assert pod["terminationGracePeriodSeconds"] > 60 + 60, "longer than the drain: open requests, then the queue"
    security = container["securityContext"]
    assert security["runAsNonRoot"] and security["readOnlyRootFilesystem"] and security["capabilities"]["drop"] == ["ALL"]
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"] and pod["volumes"][0]["emptyDir"]
    assert container["resources"]["requests"]["memory"] == generate.MEMORY_REQUEST
    assert {c["topologyKey"] for c in pod["topologySpreadConstraints"]} == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    assert find(rendered["cpu"][0], "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    monitor = find(rendered["cpu"][1], "ServiceMonitor")
    assert monitor["spec"]["selector"]["matchLabels"] == find(rendered["cpu"][0], "Service", generate.NAME)["spec"]["selector"]


def test_the_gpu_overlay_requests_a_gpu_and_runs_the_model_on_cuda(rendered):
    [container] = find(rendered["gpu"][0], "Deployment", generate.NAME)["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert {"name": "ENHANCEMENT_MODEL__DEVICE", "value": "cuda"} in container["env"]


def test_the_fleet_shares_redis_and_scales_on_its_backlog(rendered):
    for overlay in ("fleet", "fleet-hpa"):
        built_in, custom = rendered[overlay]
        [container] = find(built_in, "Deployment", generate.NAME)["spec"]["template"]["spec"]["containers"]
        assert {"name": "ENHANCEMENT_JOBS__BACKEND", "value": "redis"} in container["env"]
        assert find(built_in, "StatefulSet")["spec"]["template"]["spec"]["containers"][0]["image"].startswith("redis:")
    trigger = find(rendered["fleet"][1], "ScaledObject")["spec"]["triggers"][0]
    assert "enhancement_jobs_backlog" in trigger["metadata"]["query"] and trigger["metadata"]["threshold"] == "8"
    metric = find(rendered["fleet-hpa"][0], "HorizontalPodAutoscaler")["spec"]["metrics"][0]
    assert metric["external"]["target"]["averageValue"] == "8"


def test_checkov_passes_on_the_manifests_the_dockerfile_and_compose(rendered, bin_dir, tmp_path):
    paths = []
    for overlay, (built_in, custom) in rendered.items():
        path = tmp_path / f"{overlay}.yaml"
        path.write_text(yaml.safe_dump_all([*built_in, *custom], sort_keys=False))
        paths.append(path)
    result = check.checkov([*paths, ROOT / "Dockerfile", ROOT / "docker-compose.yml"], bin_dir)
    assert result.returncode == 0, result.stdout


def test_checkov_fails_on_a_privileged_container_and_a_hard_coded_secret(rendered, bin_dir, tmp_path):
    deployment = json.loads(json.dumps(find(rendered["cpu"][0], "Deployment", generate.NAME)))
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]["privileged"] = True
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(yaml.safe_dump(deployment))
    compose = tmp_path / "docker-compose.yml"
    compose.write_text('services:\n  x:\n    environment:\n      AWS_SECRET_ACCESS_KEY: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"\n')
    for path in (manifest, compose):
        result = check.checkov([path], bin_dir)
        assert result.returncode != 0 and "FAILED" in result.stdout, result.stdout


def test_every_skipped_check_says_why():
    skips = []
    for path in KUBERNETES.rglob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            for key, value in ((doc or {}).get("metadata", {}).get("annotations") or {}).items():
                if key.startswith("checkov.io/skip"):
                    skips.append(value)
    skips += [line.split(":", 2)[2] for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("# checkov:skip=")]
    assert skips
    for skip in skips:
        check_id, _, reason = skip.partition("=") if "=" in skip else ("", "", skip)
        assert len(reason.strip()) > 20, f"skip without a reason: {skip}"


def test_the_batch_job_gives_each_pod_its_shard_of_a_million_files(rendered):
    job = find(rendered["batch"][0], "Job")
    assert find(rendered["batch"][0], "NetworkPolicy")["spec"]["policyTypes"] == ["Ingress"], "it serves nothing"
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed" and spec["completions"] * 1000 >= 1_000_000
    args = spec["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--shard") + 1] == str(spec["completions"]), "the index comes from JOB_COMPLETION_INDEX"
    assert "$(JOB_COMPLETION_INDEX)" in args[args.index("--report") + 1], "one report per shard"
