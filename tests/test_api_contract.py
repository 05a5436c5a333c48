"""schemathesis against the worker's own OpenAPI document: every operation, generated valid and
invalid requests (coverage, fuzzing and stateful phases), with and without the bearer token.

It runs the schemathesis command in its own process against the real worker process, as an
operator would. One check is left out: `positive_data_acceptance` expects 2xx for any body the
schema allows, and a schema cannot say "decodable audio", so random bytes rightly get 422.
"""

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from helpers.worker import LiveWorker

TOKEN = "tok-contract-test"
EXAMPLES_PER_OPERATION = 50


@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    token_file = tmp_path_factory.mktemp("auth") / "token"
    token_file.write_text(TOKEN)
    live = LiveWorker({"ENHANCEMENT_SERVICE__AUTH_TOKEN_FILE": str(token_file), "ENHANCEMENT_SERVICE__QUEUE_CAPACITY": "64"}).start()
    yield live
    live.terminate()


def test_schemathesis_finds_no_server_error_and_no_contract_violation(worker, tmp_path):
    report = tmp_path / "schemathesis.json"
    schemathesis = Path(sys.executable).with_name("schemathesis")
    run = subprocess.run(
        [
            str(schemathesis),
            "run",
            worker.url + "/openapi.json",
            "-H",
            f"Authorization: Bearer {TOKEN}",
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
            "--max-examples",
            str(EXAMPLES_PER_OPERATION),
            "--seed",
            "20261123",
            "--no-color",
            "--generation-database",
            "none",
            "--request-timeout",
            "60",
            "--report",
            "json",
            "--report-json-path",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,  # its example cache stays out of the tree
    )
    summary = json.loads(report.read_text())
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert summary["operations"]["tested"] == summary["operations"]["total"] >= 6
    assert summary["test_cases"]["generated"] >= 300 and not summary["failures"] and not summary["errors"]

    # The worker's own count of what it answered: every request schemathesis sent, and no 5xx among them.
    metrics = httpx.get(worker.url + "/metrics").text
    codes: Counter = Counter()
    for family in text_string_to_metric_families(metrics):
        for sample in family.samples:
            if sample.name == "enhancement_http_responses_total":
                codes[sample.labels["code"]] += sample.value
    assert sum(codes.values()) >= summary["test_cases"]["generated"] / 2
    assert not [code for code in codes if code.startswith("5")], codes
    assert {"401", "422"} <= set(codes), "the run should have reached auth refusals and audio rejections"
