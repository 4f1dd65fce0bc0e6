"""Kubernetes objects for one tenant's AstrBot instance (`manage.py bot_instance_manifest`).

Each clinic's bot runs in its own namespace with a quota: a single-replica StatefulSet (one AstrBot
process per data directory, on its own volume), the Anmei plugin (`astrbot_plugin_anmei/` of the
platform image) copied into the data directory's `plugins/` by an init container that also writes
the plugin's config from the Secret, a Service for the platform's calls, and NetworkPolicies that let
only the platform in (docs/operations.md, "A clinic's bot").
"""

from __future__ import annotations

from dataclasses import dataclass

PLUGIN = "astrbot_plugin_anmei"
LISTEN_PORT = 6196
DATA_DIR = "/AstrBot/data"


@dataclass(frozen=True)
class BotInstanceSpec:
    tenant_slug: str
    bot_name: str
    platform: str
    namespace: str
    anmei_url: str
    anmei_namespace: str
    anmei_image: str
    astrbot_image: str
    token: str
    secret: str
    storage: str = "5Gi"


def callback_url(namespace: str) -> str:
    return f"http://astrbot.{namespace}.svc:{LISTEN_PORT}"


def _labels(spec: BotInstanceSpec) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "astrbot",
        "app.kubernetes.io/part-of": "anmei",
        "anmei.io/tenant": spec.tenant_slug,
    }


_SECURITY = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}

# Writes the plugin's AstrBot config (data/config/<plugin>_config.json) from the Secret's values.
_WRITE_CONFIG = (
    "import json, os, pathlib; "
    f"p = pathlib.Path('{DATA_DIR}/config/{PLUGIN}_config.json'); p.parent.mkdir(parents=True, exist_ok=True); "
    "c = json.loads(p.read_text()) if p.exists() else {}; "
    "c.update(anmei_base_url=os.environ['ANMEI_BASE_URL'], bot_token=os.environ['BOT_TOKEN'], "
    f"bot_secret=os.environ['BOT_SECRET'], listen_host='0.0.0.0', listen_port={LISTEN_PORT}, "
    "platform=os.environ['BOT_PLATFORM']); "
    "p.write_text(json.dumps(c, ensure_ascii=False, indent=2)); p.chmod(0o600)"
)


def bot_instance_objects(spec: BotInstanceSpec) -> list[dict]:
    """The objects, in apply order: namespace, quota, limits, Secret, Service, StatefulSet, policies."""
    labels = _labels(spec)
    selector = {"app.kubernetes.io/name": "astrbot", "anmei.io/tenant": spec.tenant_slug}
    meta = {"namespace": spec.namespace, "labels": labels}
    secret_env = [
        {"name": "BOT_TOKEN", "valueFrom": {"secretKeyRef": {"name": "astrbot-credentials", "key": "bot_token"}}},
        {"name": "BOT_SECRET", "valueFrom": {"secretKeyRef": {"name": "astrbot-credentials", "key": "bot_secret"}}},
        {"name": "ANMEI_BASE_URL", "value": spec.anmei_url},
        {"name": "BOT_PLATFORM", "value": spec.platform},
    ]
    resources = {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
    pod_security = {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "fsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    statefulset = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "astrbot", **meta},
        "spec": {
            # One AstrBot process per data directory: never two replicas on one volume.
            "replicas": 1,
            "serviceName": "astrbot",
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": pod_security,
                    "terminationGracePeriodSeconds": 30,
                    "initContainers": [
                        {
                            "name": "install-plugin",
                            "image": spec.anmei_image,
                            "imagePullPolicy": "Always",
                            "command": [
                                "sh",
                                "-c",
                                f"mkdir -p {DATA_DIR}/plugins && rm -rf {DATA_DIR}/plugins/{PLUGIN} && "
                                f'cp -r /app/{PLUGIN} {DATA_DIR}/plugins/{PLUGIN} && python -c "{_WRITE_CONFIG}"',
                            ],
                            "env": secret_env,
                            "securityContext": _SECURITY,
                            "resources": {
                                "requests": {"cpu": "50m", "memory": "64Mi"},
                                "limits": {"cpu": "500m", "memory": "256Mi"},
                            },
                            "volumeMounts": [{"name": "data", "mountPath": DATA_DIR}],
                        }
                    ],
                    "containers": [
                        {
                            "name": "astrbot",
                            "image": spec.astrbot_image,
                            "imagePullPolicy": "Always",
                            "ports": [{"name": "plugin", "containerPort": LISTEN_PORT}],
                            "securityContext": _SECURITY,
                            "resources": resources,
                            # The plugin's own health route (API.md, the AstrBot plugin).
                            "livenessProbe": {
                                "httpGet": {"path": "/astrbot-api/v1/health", "port": "plugin"},
                                "initialDelaySeconds": 30,
                                "periodSeconds": 20,
                            },
                            "readinessProbe": {
                                "httpGet": {"path": "/astrbot-api/v1/health", "port": "plugin"},
                                "periodSeconds": 10,
                            },
                            "volumeMounts": [
                                {"name": "data", "mountPath": DATA_DIR},
                                {"name": "tmp", "mountPath": "/tmp"},
                            ],
                        }
                    ],
                    "volumes": [{"name": "tmp", "emptyDir": {}}],
                },
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data", "labels": labels},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": spec.storage}}},
                }
            ],
        },
    }
    return [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": spec.namespace,
                "labels": {**labels, "pod-security.kubernetes.io/enforce": "restricted"},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": "astrbot-quota", **meta},
            "spec": {
                "hard": {
                    "requests.cpu": "1",
                    "requests.memory": "1Gi",
                    "limits.cpu": "2",
                    "limits.memory": "2Gi",
                    "pods": "3",
                    "persistentvolumeclaims": "2",
                    "requests.storage": "20Gi",
                    "services.loadbalancers": "0",
                    "services.nodeports": "0",
                }
            },
        },
        {
            "apiVersion": "v1",
            "kind": "LimitRange",
            "metadata": {"name": "astrbot-limits", **meta},
            "spec": {
                "limits": [
                    {
                        "type": "Container",
                        "default": {"cpu": "500m", "memory": "512Mi"},
                        "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
                        "max": {"cpu": "1", "memory": "1Gi"},
                    }
                ]
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "astrbot-credentials", **meta},
            "type": "Opaque",
            "stringData": {"bot_token": spec.token, "bot_secret": spec.secret},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "astrbot", **meta},
            "spec": {"selector": selector, "ports": [{"name": "plugin", "port": LISTEN_PORT, "targetPort": "plugin"}]},
        },
        statefulset,
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "astrbot-default-deny", **meta},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "astrbot-platform-only", **meta},
            "spec": {
                "podSelector": {"matchLabels": selector},
                "policyTypes": ["Ingress", "Egress"],
                # In: only the platform's pods (delivery, config pushes, LLM calls) on the plugin port.
                "ingress": [
                    {
                        "from": [
                            {
                                "namespaceSelector": {
                                    "matchLabels": {"kubernetes.io/metadata.name": spec.anmei_namespace}
                                },
                                "podSelector": {"matchLabels": {"app.kubernetes.io/name": "anmei"}},
                            }
                        ],
                        "ports": [{"protocol": "TCP", "port": LISTEN_PORT}],
                    }
                ],
                # Out: DNS, the platform's web tier, and public HTTPS (the IM platform's API).
                "egress": [
                    {
                        "to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                    },
                    {
                        "to": [
                            {
                                "namespaceSelector": {
                                    "matchLabels": {"kubernetes.io/metadata.name": spec.anmei_namespace}
                                },
                                "podSelector": {"matchLabels": {"app.kubernetes.io/component": "web"}},
                            }
                        ],
                        "ports": [{"protocol": "TCP", "port": 8000}],
                    },
                    {
                        "to": [
                            {
                                "ipBlock": {
                                    "cidr": "0.0.0.0/0",
                                    "except": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"],
                                }
                            }
                        ],
                        "ports": [{"protocol": "TCP", "port": 443}],
                    },
                ],
            },
        },
    ]
