"""deploy/prometheus and deploy/grafana: rules unit-tested by promtool, every query on a metric the app
exports, and a real Prometheus (Debian's package) that sees the stuck-jobs alert fire and resolve.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.fixtures_automation import free_port, subprocess_env, wait_for

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
RULES = PROMETHEUS_DIR / "anmei.rules.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "anmei-dashboard.json"
SCALED_OBJECTS = ROOT / "deploy" / "k8s" / "keda" / "scaledobjects.yaml"
PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")
AMTOOL = shutil.which("amtool")

needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian's prometheus package) is not installed")

PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "or", "and", "unless", "bool", "offset"}


@needs_promtool
def test_rules_are_valid_and_pass_their_promtool_unit_tests():
    checked = subprocess.run([PROMTOOL, "check", "rules", str(RULES)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run(
        [PROMTOOL, "test", "rules", "anmei.test.yml"], cwd=PROMETHEUS_DIR / "tests", capture_output=True, text=True
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


@needs_promtool
@pytest.mark.skipif(AMTOOL is None, reason="amtool (Debian's prometheus-alertmanager package) is not installed")
def test_prometheus_and_alertmanager_configs_are_valid():
    prometheus = subprocess.run(
        [PROMTOOL, "check", "config", "--syntax-only", str(PROMETHEUS_DIR / "prometheus.yml")],
        capture_output=True,
        text=True,
    )
    assert prometheus.returncode == 0, prometheus.stdout + prometheus.stderr
    alertmanager = subprocess.run(
        [AMTOOL, "check-config", str(PROMETHEUS_DIR / "alertmanager.yml")], capture_output=True, text=True
    )
    assert alertmanager.returncode == 0, alertmanager.stdout + alertmanager.stderr
    # Every alert the rules raise has a severity the routes know.
    rules = yaml.safe_load(RULES.read_text())
    alerts = [rule for group in rules["groups"] for rule in group["rules"] if "alert" in rule]
    assert {rule["labels"]["severity"] for rule in alerts} == {"critical", "warning"}


def metric_names(expr: str) -> set[str]:
    """The metric (and recorded series) names a PromQL expression reads."""
    expr = re.sub(r'"[^"]*"', "", expr)  # label values
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)  # grouping labels
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        following = expr[match.end() :].lstrip()
        if following.startswith("(") or match.group() in PROMQL_WORDS:
            continue  # a function or a keyword
        names.add(match.group())
    return names


def exported_names() -> set[str]:
    """Every series name web's /metrics can export (recorded at run time, or computed at scrape time)."""
    import prometheus_client

    from anmei.common import metrics

    names = {"up"}
    for value in vars(metrics).values():
        if isinstance(value, prometheus_client.Histogram):
            names |= {f"{value._name}_bucket", f"{value._name}_count", f"{value._name}_sum"}
        elif isinstance(value, prometheus_client.Counter):
            names |= {f"{value._name}_total"}
        elif isinstance(value, prometheus_client.Gauge):
            names.add(value._name)
    names |= {family.name for family in metrics.LiveFigures().collect()}
    return names


@pytest.mark.django_db
def test_every_dashboard_rule_and_scaler_query_reads_a_metric_the_app_exports():
    rules = yaml.safe_load(RULES.read_text())
    recorded = {rule["record"] for group in rules["groups"] for rule in group["rules"] if "record" in rule}
    known = exported_names() | recorded
    queries = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    dashboard = json.loads(DASHBOARD.read_text())
    queries += [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    scalers = [doc for doc in yaml.safe_load_all(SCALED_OBJECTS.read_text()) if doc]
    queries += [trigger["metadata"]["query"] for doc in scalers for trigger in doc["spec"]["triggers"]]
    read = {name: query for query in queries for name in metric_names(query)}
    unknown = {name: query for name, query in read.items() if name not in known}
    assert unknown == {}
    # And the figures the issue names are all on the dashboard.
    on_dashboard = {name for p in dashboard["panels"] for t in p["targets"] for name in metric_names(t["expr"])}
    assert {
        "anmei_queue_work",
        "anmei_jobs_due_not_running",
        "anmei:welcome_seconds:p95_10m",
        "anmei:asr_failures:ratio_rate15m",
        "anmei_bots_stale",
        "anmei:bot_delivery_failures:increase15m",
        "anmei_queue_oldest_due_seconds",
        "anmei:http_5xx:ratio_rate5m",
        "anmei_dependency_up",
    } <= on_dashboard


# --- a real Prometheus over a running stack ------------------------------------------------------


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def _alert_state(base: str, name: str) -> str:
    """ "firing", "pending", or "inactive" for the alert `name` in Prometheus's /api/v1/alerts."""
    try:
        alerts = _get_json(f"{base}/api/v1/alerts")["data"]["alerts"]
    except OSError:
        return "unreachable"
    states = {alert["state"] for alert in alerts if alert["labels"]["alertname"] == name}
    return "firing" if "firing" in states else "pending" if "pending" in states else "inactive"


def _start_worker() -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "celery_config", "worker", "--pool=solo", "-Q", "default"]
        + ["-n", "prom@%h", "--without-mingle", "--without-gossip", "--loglevel=WARNING"],
        cwd=ROOT,
        env=subprocess_env(LOG_LEVEL="WARNING"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _kill(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=15)


def _schedule_probe(key: str) -> int:
    from anmei.jobs.services import job_schedule

    return job_schedule(
        kind="probe", key=key, task="workers.diagnostics.job_probe", payload={"marker": f"test:prom:{key}"}
    ).id


@pytest.mark.skipif(PROMETHEUS is None, reason="prometheus (Debian's package) is not installed")
@pytest.mark.django_db(transaction=True)
def test_real_prometheus_fires_stuck_jobs_when_the_worker_dies_and_resolves_when_it_is_back(tmp_path):
    from anmei.jobs.models import Job
    from tests.fixtures_browser import LiveServer

    token = "prometheus-test-token"
    web = LiveServer(subprocess_env(METRICS_TOKEN=token, JOBS_STUCK_AFTER_SECONDS="1", LOG_LEVEL="WARNING"))
    # The production rules, with every `for:` shortened so the test waits seconds, not minutes.
    rules = yaml.safe_load(RULES.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = "1s"
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules))
    (tmp_path / "token").write_text(token)
    (tmp_path / "prometheus.yml").write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(tmp_path / "rules.yml")],
                "scrape_configs": [
                    {
                        "job_name": "anmei",
                        "authorization": {"type": "Bearer", "credentials_file": str(tmp_path / "token")},
                        "static_configs": [{"targets": [f"127.0.0.1:{web.port}"]}],
                    }
                ],
            }
        )
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    worker = _start_worker()
    web.start()
    prometheus = subprocess.Popen(
        [PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'data'}"]
        + [f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # Given a stack that works: Prometheus scrapes web, the worker finishes a job, no alert
        def target_up():
            try:
                targets = _get_json(f"{base}/api/v1/targets")["data"]["activeTargets"]
            except OSError:
                return False
            return [t["health"] for t in targets] == ["up"]

        wait_for(target_up, timeout=60)
        first = _schedule_probe("before")
        wait_for(lambda: Job.objects.get(pk=first).state == Job.State.DONE, timeout=60)
        assert _alert_state(base, "AnmeiJobsStuck") == "inactive"
        # When the worker is killed and work keeps arriving
        _kill(worker)
        stuck = _schedule_probe("while-down")
        # Then the stuck-jobs alert fires, naming the pipeline
        wait_for(lambda: _alert_state(base, "AnmeiJobsStuck") == "firing", timeout=90)
        firing = [a for a in _get_json(f"{base}/api/v1/alerts")["data"]["alerts"] if a["state"] == "firing"]
        assert [(a["labels"]["alertname"], a["labels"]["kind"]) for a in firing] == [("AnmeiJobsStuck", "probe")]
        # When the worker is back, it takes the job and the alert resolves
        worker = _start_worker()
        wait_for(lambda: Job.objects.get(pk=stuck).state == Job.State.DONE, timeout=90)
        wait_for(lambda: _alert_state(base, "AnmeiJobsStuck") == "inactive", timeout=60)
    finally:
        prometheus.terminate()
        prometheus.wait(timeout=15)
        _kill(worker)
        web.stop()
