"""deploy/k8s: the rendered production overlay has the shape the platform needs (docs/operations.md).

Schema validation and the checkov policy scan are `.ci/validate-deploy` (run by CI before the suite);
`test_validator_passes` runs it here too when its cached tools are built.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.urls import resolve

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
KUBECTL = shutil.which("kubectl")
TOOLS_VENV = Path(os.environ.get("DEPLOY_TOOLS_VENV", "/work/cache/deploy-tools-venv"))

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl (Debian's kubernetes-client) is not installed")

# Settings that are secrets: they must come from the Secret, never from the ConfigMap.
SECRET_SETTINGS = {
    "SECRET_KEY",
    "FIELD_ENCRYPTION_KEY",
    "FIELD_ENCRYPTION_OLD_KEYS",
    "DATABASE_URL",
    "REDIS_URL",
    "FLOWER_BASIC_AUTH",
    "METRICS_TOKEN",
    "MEDIA_S3_ACCESS_KEY",
    "MEDIA_S3_SECRET_KEY",
    "ASR_API_KEY",
}
WORKER_QUEUES = {"worker-default": "default", "worker-asr": "asr", "worker-replies": "replies"}


def render(overlay: str, tmp_path: Path) -> list[dict]:
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy)
    shutil.copy(K8S / "secrets.env.example", copy / "overlays" / overlay / "secrets.env")
    out = subprocess.run(
        [KUBECTL, "kustomize", str(copy / "overlays" / overlay)], capture_output=True, text=True, check=True
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


@pytest.fixture(scope="module")
def objects(tmp_path_factory) -> list[dict]:
    return render("production", tmp_path_factory.mktemp("render"))


def of_kind(objects: list[dict], kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def container(deployment: dict) -> dict:
    (main,) = deployment["spec"]["template"]["spec"]["containers"]
    return main


def env_of(main: dict) -> dict[str, str]:
    return {item["name"]: item.get("value") for item in main.get("env", [])}


def test_one_deployment_per_process_kind_and_queue_group(objects):
    deployments = of_kind(objects, "Deployment")
    assert sorted(deployments) == sorted(
        f"anmei-{n}" for n in ("web", "ws", "mcp", "flower", "beat", "worker-default", "worker-asr", "worker-replies")
    )
    # Every queue Celery knows is consumed by exactly one worker group, and no group takes two.
    from celery_config import app

    known = {queue.name for queue in app.conf.task_queues}
    consumed = {}
    for group, queue in WORKER_QUEUES.items():
        command = container(deployments[f"anmei-{group}"])["command"]
        consumed[group] = command[command.index("-Q") + 1]
        assert consumed[group] == queue
    assert sorted(consumed.values()) == sorted(known)
    # Every container runs the release image from the overlay.
    images = {c["image"] for d in deployments.values() for c in d["spec"]["template"]["spec"]["containers"]} | {
        c["image"] for d in deployments.values() for c in d["spec"]["template"]["spec"]["initContainers"]
    }
    assert images == {"registry.example.com/anmei:1.0.0"}


def test_worker_grace_period_is_above_the_soft_shutdown_which_is_above_the_longest_task(objects):
    deployments = of_kind(objects, "Deployment")
    longest = {
        # the ASR task's hard time limit (workers/asr.py)
        "worker-asr": settings.ASR_TIME_LIMIT_SECONDS + 30,
        # every other task runs inside a durable job whose lease bounds it
        "worker-default": max(s for s in settings.TASK_LEASES_SECONDS if s != settings.ASR_TIME_LIMIT_SECONDS + 60),
        "worker-replies": max(s for s in settings.TASK_LEASES_SECONDS if s != settings.ASR_TIME_LIMIT_SECONDS + 60),
    }
    for group, task_seconds in longest.items():
        deployment = deployments[f"anmei-{group}"]
        env = env_of(container(deployment))
        soft = float(env["CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT"])
        grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert env["REMAP_SIGTERM"] == "SIGQUIT", group
        assert task_seconds < soft < grace, (group, task_seconds, soft, grace)


def test_soft_shutdown_setting_reaches_celery(settings):
    from celery_config import app

    assert app.conf.worker_soft_shutdown_timeout == settings.CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT


def test_no_secret_is_in_a_configmap_and_every_secret_comes_from_the_secret(objects):
    (config,) = of_kind(objects, "ConfigMap").values()
    (secret,) = of_kind(objects, "Secret").values()
    assert SECRET_SETTINGS.isdisjoint(config["data"])
    assert set(secret["data"]) == SECRET_SETTINGS
    # No value in the ConfigMap looks like a credential either.
    for key, value in config["data"].items():
        assert not re.search(r"(password|secret|token|://[^/]*:[^/]*@)", value, re.I), key
    pods = [d["spec"]["template"]["spec"] for d in of_kind(objects, "Deployment").values()]
    pods += [j["spec"]["template"]["spec"] for j in of_kind(objects, "Job").values()]
    for pod in pods:
        for c in pod["containers"] + pod.get("initContainers", []):
            sources = {next(iter(s)): next(iter(s.values()))["name"] for s in c["envFrom"]}
            assert sources == {"configMapRef": config["metadata"]["name"], "secretRef": secret["metadata"]["name"]}
            assert SECRET_SETTINGS.isdisjoint(env_of(c))


def test_http_tiers_probe_the_live_and_ready_routes(objects):
    deployments = of_kind(objects, "Deployment")
    for name in ("anmei-web", "anmei-ws"):
        main = container(deployments[name])
        assert main["livenessProbe"]["httpGet"]["path"] == "/api/v1/health/live"
        assert main["readinessProbe"]["httpGet"]["path"] == "/api/v1/health/ready"
    assert resolve("/api/v1/health/live").url_name == "health-live"
    assert resolve("/api/v1/health/ready").url_name == "health-ready"
    for deployment in deployments.values():  # every process is probed and has requests and limits
        main = container(deployment)
        assert "livenessProbe" in main and "readinessProbe" in main, deployment["metadata"]["name"]
        assert set(main["resources"]) == {"requests", "limits"}


def test_beat_is_a_single_leader(objects):
    beat = of_kind(objects, "Deployment")["anmei-beat"]
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    scalers = ("ScaledObject", "HorizontalPodAutoscaler")
    targets = [o["spec"]["scaleTargetRef"]["name"] for o in objects if o["kind"] in scalers]
    assert "anmei-beat" not in targets


def test_migrations_run_in_a_job_and_gate_every_new_pod(objects):
    (job,) = of_kind(objects, "Job").values()
    assert container(job)["command"] == ["python", "manage.py", "migrate", "--noinput"]
    for deployment in of_kind(objects, "Deployment").values():
        (init,) = deployment["spec"]["template"]["spec"]["initContainers"]
        assert "migrate --check" in init["command"][-1]


def test_every_pod_has_a_disruption_budget_and_only_public_tiers_take_outside_traffic(objects):
    deployments = of_kind(objects, "Deployment")
    budgets = of_kind(objects, "PodDisruptionBudget")
    components = {d["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] for d in deployments.values()}
    assert {b["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] for b in budgets.values()} == components
    policies = of_kind(objects, "NetworkPolicy")
    assert policies["anmei-default-deny"]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    from_ingress = policies["anmei-ingress-public"]["spec"]["podSelector"]["matchExpressions"][0]["values"]
    assert sorted(from_ingress) == ["mcp", "web", "ws"]
    # No policy lets anything in to a worker or beat.
    for policy in policies.values():
        if "Ingress" not in policy["spec"]["policyTypes"] or not policy["spec"].get("ingress"):
            continue
        selector = policy["spec"]["podSelector"]
        selected = set(selector.get("matchExpressions", [{}])[0].get("values", [])) | {
            selector.get("matchLabels", {}).get("app.kubernetes.io/component")
        }
        assert selected.isdisjoint({"worker-default", "worker-asr", "worker-replies", "beat"}), policy


def test_workers_scale_on_queue_work_through_keda_prometheus_triggers(objects):
    scaled = of_kind(objects, "ScaledObject")
    assert sorted(scaled) == sorted(f"anmei-{g}" for g in WORKER_QUEUES)
    allowed = {"scaleTargetRef", "pollingInterval", "cooldownPeriod", "minReplicaCount", "maxReplicaCount"}
    allowed |= {"advanced", "fallback", "triggers", "idleReplicaCount", "initialCooldownPeriod"}
    for name, obj in scaled.items():
        group = name.removeprefix("anmei-")
        spec = obj["spec"]
        assert set(spec) <= allowed
        assert spec["scaleTargetRef"] == {"name": name}
        (trigger,) = spec["triggers"]
        assert trigger["type"] == "prometheus"
        assert trigger["metadata"]["query"] == f'max(anmei_queue_work{{queue="{WORKER_QUEUES[group]}"}})'
        assert int(trigger["metadata"]["threshold"]) >= 1
        # an absent figure (broker unreadable at scrape) must reach `fallback`, not read as 0
        assert trigger["metadata"]["ignoreNullValues"] == "false" and spec["fallback"]["replicas"] >= 1
        assert spec["minReplicaCount"] >= 1 and spec["maxReplicaCount"] > spec["minReplicaCount"]
    assert scaled["anmei-worker-asr"]["spec"]["minReplicaCount"] == 1  # one warm model


def test_validator_passes():
    if not (TOOLS_VENV / "bin" / "checkov").exists():
        pytest.skip(f"the deploy tools are not built in {TOOLS_VENV}: .ci/validate-deploy builds them (CI runs it)")
    done = subprocess.run(
        [str(ROOT / ".ci" / "validate-deploy")],
        capture_output=True,
        text=True,
        env={**os.environ, "DEPLOY_TOOLS_VENV": str(TOOLS_VENV)},
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Failed checks: 0" in done.stdout
