"""`manage.py bot_instance_manifest`: one clinic's AstrBot as Kubernetes objects, validated like deploy/."""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command

from anmei.bots.models import BotInstance
from anmei.bots.services.instances import bot_secret
from anmei.common.crypto import hash_token
from tests.test_deploy_k8s import KUBECTL, TOOLS_VENV

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.django_db


def render(*args: str) -> tuple[list[dict], str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("bot_instance_manifest", *args, stdout=out, stderr=err)
    return [doc for doc in yaml.safe_load_all(out.getvalue()) if doc], out.getvalue()


def by_kind(objects: list[dict]) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for obj in objects:
        found.setdefault(obj["kind"], []).append(obj)
    return found


def test_a_new_clinic_gets_its_bot_created_and_every_object_in_its_own_namespace(tenant_a, tenant_b):
    objects, _ = render("alpha")
    kinds = by_kind(objects)
    assert sorted(kinds) == sorted(
        ["Namespace", "ResourceQuota", "LimitRange", "Secret", "Service", "StatefulSet", "NetworkPolicy"]
    )
    assert {o["metadata"].get("namespace", o["metadata"]["name"]) for o in objects} == {"anmei-bot-alpha"}
    # The bot exists for tenant A only, called back on the instance's Service
    (bot,) = BotInstance.objects.all()
    assert (bot.tenant_id, bot.name, bot.callback_url) == (
        tenant_a.id,
        "astrbot",
        "http://astrbot.anmei-bot-alpha.svc:6196",
    )
    # The Secret carries the credentials that authenticate as that bot
    (secret,) = kinds["Secret"]
    assert hash_token(secret["stringData"]["bot_token"]) == bot.token_hash
    assert secret["stringData"]["bot_secret"] == bot_secret(bot)
    # One AstrBot per data volume; the plugin is copied into its plugins/ before it starts
    (statefulset,) = kinds["StatefulSet"]
    assert statefulset["spec"]["replicas"] == 1
    assert statefulset["spec"]["volumeClaimTemplates"][0]["spec"]["accessModes"] == ["ReadWriteOnce"]
    (init,) = statefulset["spec"]["template"]["spec"]["initContainers"]
    assert "cp -r /app/astrbot_plugin_anmei /AstrBot/data/plugins/astrbot_plugin_anmei" in init["command"][-1]
    assert {e["name"] for e in init["env"] if "valueFrom" in e} == {"BOT_TOKEN", "BOT_SECRET"}
    # Only the platform's pods may call in
    policies = {p["metadata"]["name"]: p["spec"] for p in kinds["NetworkPolicy"]}
    assert policies["astrbot-default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    (ingress,) = policies["astrbot-platform-only"]["ingress"]
    assert ingress["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "anmei"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "anmei"}},
        }
    ]


def test_an_existing_bot_needs_rotate_and_then_the_old_token_stops(tenant_a):
    render("alpha")
    (bot,) = BotInstance.objects.all()
    old_hash = bot.token_hash
    # When rendered again without --rotate: refused, nothing changed
    with pytest.raises(CommandError, match="--rotate"):
        render("alpha")
    bot.refresh_from_db()
    assert bot.token_hash == old_hash
    # With --rotate: new credentials, in the Secret
    objects, _ = render("alpha", "--rotate")
    (secret,) = by_kind(objects)["Secret"]
    bot.refresh_from_db()
    assert bot.token_hash != old_hash
    assert hash_token(secret["stringData"]["bot_token"]) == bot.token_hash
    assert BotInstance.objects.count() == 1


def test_an_unknown_tenant_is_refused():
    with pytest.raises(CommandError, match="no tenant"):
        render("nope")
    assert BotInstance.objects.count() == 0


@pytest.mark.skipif(KUBECTL is None, reason="kubectl (Debian's kubernetes-client) is not installed")
def test_the_manifest_passes_the_schema_and_policy_checks(tenant_a, tmp_path):
    if not (TOOLS_VENV / "bin" / "checkov").exists():
        pytest.skip(f"the deploy tools are not built in {TOOLS_VENV}: .ci/validate-deploy builds them (CI runs it)")
    _, text = render("alpha")
    (tmp_path / "bot.yaml").write_text(text)
    done = subprocess.run(
        [str(ROOT / ".ci" / "validate-deploy")],
        capture_output=True,
        text=True,
        env={**os.environ, "DEPLOY_TOOLS_VENV": str(TOOLS_VENV), "BOT_MANIFEST_YAML": str(tmp_path / "bot.yaml")},
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-3000:]
    assert "bot-instance.yaml" in done.stdout
    assert done.stdout.count("Failed checks: 0") == 2
