"""The arithmetic behind `enhancement-worker top`: rates, quantiles and restarts, as Prometheus does them."""

import math

import pytest
from rich.console import Console

from ops.stack import free_port
from ops.top import app
from ops.top.render import alerts, sparkline
from ops.top.snapshot import difference, quantile, view
from ops.top.sources import MetricsSource, parse

METRICS = """\
# TYPE enhancement_requests_total counter
enhancement_requests_total{{outcome="success"}} {success}
enhancement_requests_total{{outcome="failed"}} {failed}
# TYPE enhancement_stage_duration_seconds histogram
enhancement_stage_duration_seconds_bucket{{stage="decode",le="0.1"}} {fast}
enhancement_stage_duration_seconds_bucket{{stage="decode",le="1.0"}} {all}
enhancement_stage_duration_seconds_bucket{{stage="decode",le="+Inf"}} {all}
enhancement_stage_duration_seconds_count{{stage="decode"}} {all}
enhancement_stage_duration_seconds_sum{{stage="decode"}} {sum}
# TYPE enhancement_queue_depth gauge
enhancement_queue_depth {depth}
"""


def samples(success=0, failed=0, fast=0, all_=0, sum_=0.0, depth=0):
    return parse(METRICS.format(success=success, failed=failed, fast=fast, all=all_, sum=sum_, depth=depth))


def test_quantiles_interpolate_inside_the_bucket_like_histogram_quantile():
    buckets = {0.1: 50.0, 1.0: 100.0, math.inf: 100.0}
    assert quantile(0.5, buckets) == pytest.approx(0.1)
    assert quantile(0.75, buckets) == pytest.approx(0.55)
    assert quantile(0.99, {0.1: 0.0, math.inf: 10.0}) == pytest.approx(0.1), "the +Inf bucket answers its lower bound"
    assert quantile(0.5, {0.1: 0.0, math.inf: 0.0}) is None and quantile(0.5, {}) is None


def test_two_readings_give_the_increase_and_gauges_stay_as_read():
    before = samples(success=10, failed=1, fast=5, all_=11, sum_=2.0, depth=3)
    after = samples(success=16, failed=1, fast=7, all_=17, sum_=3.5, depth=1)
    v = view("w", after, before, seconds=30.0, ready=True)
    assert v.outcomes["success"] == 6 and v.outcomes["failed"] == 0
    assert v.clips_per_minute == pytest.approx(12.0)
    assert v.queue_depth == 1
    [decode] = v.stages
    assert decode.share == pytest.approx(1.0) and decode.p50_s == pytest.approx(0.1 + 0.9 * (3 - 2) / 4), (
        "rank 3 of 6: one into the 0.1-1 s bucket of 4"
    )


def test_a_counter_that_went_down_means_a_restart_and_counts_from_zero():
    before = samples(success=100, all_=100)
    after = samples(success=4, all_=4)
    assert {labels["outcome"]: v for labels, v in difference(after, before)["enhancement_requests_total"]} == {"success": 4, "failed": 0}


def test_without_a_previous_reading_everything_is_since_start_and_no_rate_is_invented():
    v = view("w", samples(success=3, failed=0, fast=3, all_=3, sum_=0.1), None, seconds=None, ready=None)
    assert v.clips == 3 and v.clips_per_minute is None and v.success_ratio == 1.0 and v.cpu_cores is None


def test_sparklines_scale_between_the_lowest_and_highest_value_and_leave_gaps_blank():
    assert sparkline([0, 5, 10]) == "▁▄█"
    assert sparkline([1, None, 1]) == "▁ ▁"
    assert sparkline([None]) == ""


def test_an_unreachable_worker_is_said_once_with_a_non_zero_exit(capsys):
    url = f"http://127.0.0.1:{free_port()}"
    assert MetricsSource(url).read().error
    assert app.main(url, None, None, 3.0, once=True) == 1
    assert "cannot read" in capsys.readouterr().out


@pytest.mark.parametrize(("url", "prometheus", "interval"), [(None, None, 3.0), ("http://a", "http://b", 3.0), ("http://a", None, 0.0)])
def test_a_wrong_command_line_is_refused_with_a_message(url, prometheus, interval, capsys):
    assert app.main(url, prometheus, None, interval, once=True) == 2
    assert capsys.readouterr().err.startswith("top:")


def test_the_alerts_section_leaves_the_watchdog_out_and_says_what_fires():
    def shown(active) -> str:
        console = Console(width=120, color_system=None, record=True)
        console.print(alerts(active))
        return console.export_text()

    watchdog = {"labels": {"alertname": "Watchdog", "severity": "info"}}
    page = {"labels": {"alertname": "EnhancementCapacityLow", "severity": "critical"}, "annotations": {"summary": "Capacity is low."}}
    assert "none firing  (Watchdog heartbeat present)" in shown([watchdog])
    text = shown([watchdog, page])
    assert "EnhancementCapacityLow" in text and "Capacity is low." in text and "Watchdog" not in text
    assert "cannot read alerts: refused" in shown("refused")
    assert "no Alertmanager given" in shown(None)
