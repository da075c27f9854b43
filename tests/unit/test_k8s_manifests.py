"""The Kubernetes manifests (deploy/k8s): every overlay renders, validates against the Kubernetes
schemas (offline, kubernetes-validate, strict: a misspelt field fails), and is wired together —
selectors find their pods, the config the pods read is a valid switchboard config, secrets are
documented, shutdown gives in-flight work time, the Ingress keeps the widget's WebSocket open."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from bot.config import ENV_REF, WebSettings, parse_settings
from bot.errors import ConfigError

from .kustomize_lite import Unsupported, render

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
TARGETS = ["base", "overlays/staging", "overlays/production"]
# The oldest Kubernetes minor we support and the newest whose schemas the package ships.
VERSIONS = ["1.30.0", kubernetes_validate.latest_version()]
CRD_GROUPS = ("keda.sh/",)  # no schemas in kubernetes-validate: checked by test_keda_*
SECRET = "switchboard-secrets"
Obj = dict[str, Any]


def rendered(target: str) -> list[Obj]:
    return render(K8S / target)


def by_kind(objs: list[Obj], kind: str) -> dict[str, Obj]:
    return {o["metadata"]["name"]: o for o in objs if o["kind"] == kind}


def pod_spec(o: Obj) -> Obj:
    return o["spec"]["template"]["spec"]


def secret_keys() -> set[str]:
    keys = set()
    for line in (K8S / "secrets.example.env").read_text().splitlines():
        line = line.lstrip("# ").strip()
        if re.fullmatch(r"[A-Z][A-Z0-9_]*=.*", line):
            keys.add(line.split("=", 1)[0])
    return keys


def k8s_settings(monkeypatch: pytest.MonkeyPatch, **env: str):  # type: ignore[no-untyped-def]
    for k in ("SWITCHBOARD_REDIS_URL", "SWITCHBOARD_DATABASE_URL", "SWITCHBOARD_RASA_URL", "SWITCHBOARD_WIDGET_ORIGIN"):
        monkeypatch.delenv(k, raising=False)
    env.setdefault("SWITCHBOARD_METRICS_TOKEN", "t" * 32)  # a Secret key (see secrets.example.env)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    raw = yaml.safe_load((K8S / "base" / "config.yaml").read_text())
    return parse_settings(raw, base_dir=Path("/etc/switchboard"))


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("target", TARGETS)
def test_manifests_validate_against_the_kubernetes_schemas(target: str, version: str) -> None:
    objs = rendered(target)
    kinds = {o["kind"] for o in objs}
    assert {"Deployment", "Service", "Ingress", "ConfigMap", "PodDisruptionBudget"} <= kinds
    for o in objs:
        if o["apiVersion"].startswith(CRD_GROUPS):
            continue
        try:
            kubernetes_validate.validate(o, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            pytest.fail(f"{target}: {o['kind']}/{o['metadata']['name']} ({version}): {e.message} at {list(e.path)}")


def test_a_misspelt_field_fails_validation() -> None:
    web = by_kind(rendered("base"), "Deployment")["web"]
    pod_spec(web)["containers"][0]["readinessProbes"] = pod_spec(web)["containers"][0].pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError, match="readinessProbes"):
        kubernetes_validate.validate(web, VERSIONS[0], strict=True)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed: nothing to compare with")
@pytest.mark.parametrize("target", TARGETS)
def test_python_rendering_equals_kubectl_kustomize(target: str) -> None:
    out = subprocess.run(["kubectl", "kustomize", str(K8S / target)], capture_output=True, text=True, check=True, timeout=60)
    real = [o for o in yaml.safe_load_all(out.stdout) if o]

    def key(o: Obj) -> tuple[str, str]:
        return (o["kind"], o["metadata"]["name"])

    assert sorted(rendered(target), key=key) == sorted(real, key=key)


def test_renderer_refuses_what_it_does_not_implement(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("commonLabels: {a: b}\nresources: []\n")
    with pytest.raises(Unsupported, match="commonLabels"):
        render(tmp_path)


def test_container_config_is_a_valid_switchboard_config(monkeypatch: pytest.MonkeyPatch) -> None:
    s = k8s_settings(monkeypatch, SWITCHBOARD_REDIS_URL="redis://:pw@redis:6379/0",
                     SWITCHBOARD_DATABASE_URL="postgresql+asyncpg://sb:pw@postgres:5432/sb")
    assert s.web.host == "0.0.0.0" and s.web.port == 8080
    assert s.nlu.urls == ["http://rasa:5005"] and not s.nlu.manage and not s.redis.start_if_unreachable
    assert s.logging.format == "json"
    # The paths point into the image's tree (/app = the repo's root).
    for p in (s.router.answers_dir, s.handoff.canned_file, s.nlu.project_dir, s.data_dir):
        assert Path(p).is_absolute() and p.startswith("/app/"), p
        if p != s.data_dir:
            assert (ROOT / Path(p).relative_to("/app")).exists(), p
    # A missing secret stops the start with the key named, instead of running on a default.
    with pytest.raises(ConfigError, match="database.url: environment variable SWITCHBOARD_DATABASE_URL"):
        k8s_settings(monkeypatch, SWITCHBOARD_REDIS_URL="redis://redis:6379/0")


def test_every_required_secret_is_documented() -> None:
    text = (K8S / "base" / "config.yaml").read_text()
    required = {m.group(1) for m in ENV_REF.finditer(text) if m.group(2) is None}
    assert required and required <= secret_keys()
    for target in TARGETS:
        for o in rendered(target):
            if o["kind"] == "TriggerAuthentication":
                for ref in o["spec"]["secretTargetRef"]:
                    assert ref["name"] == SECRET and ref["key"] in secret_keys()
            if o["kind"] == "Deployment":
                for c in pod_spec(o)["containers"]:
                    for ef in c.get("envFrom", []):
                        assert ef["secretRef"]["name"] == SECRET


@pytest.mark.parametrize("target", TARGETS)
def test_services_budgets_and_config_find_their_targets(target: str) -> None:
    objs = rendered(target)
    deployments = by_kind(objs, "Deployment")
    assert set(deployments) == {"router", "web", "rasa"}
    pod_labels = {n: d["spec"]["template"]["metadata"]["labels"] for n, d in deployments.items()}

    def matches(selector: dict[str, str]) -> set[str]:
        return {n for n, lab in pod_labels.items() if selector.items() <= lab.items()}

    for name, svc in by_kind(objs, "Service").items():
        if svc["spec"].get("type") == "ExternalName":
            continue
        assert matches(svc["spec"]["selector"]) == {name}
        ports = {p["name"] for c in pod_spec(deployments[name])["containers"] for p in c.get("ports", [])}
        assert {p["targetPort"] for p in svc["spec"]["ports"]} <= ports
    for name, pdb in by_kind(objs, "PodDisruptionBudget").items():
        assert matches(pdb["spec"]["selector"]["matchLabels"]) == {name}
    for d in deployments.values():
        assert d["spec"]["selector"]["matchLabels"].items() <= d["spec"]["template"]["metadata"]["labels"].items()
    services = by_kind(objs, "Service")
    for rule in by_kind(objs, "Ingress")["web"]["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            assert backend["port"]["name"] in {p["name"] for p in services[backend["name"]]["spec"]["ports"]}
    configmaps = by_kind(objs, "ConfigMap")
    for name in ("router", "web"):
        spec = pod_spec(deployments[name])
        vol = next(v for v in spec["volumes"] if "configMap" in v)
        assert "config.yaml" in configmaps[vol["configMap"]["name"]]["data"]
        c = spec["containers"][0]
        mount = next(m for m in c["volumeMounts"] if m["name"] == vol["name"])
        env = {e["name"]: e.get("value") for e in c["env"]}
        assert env["SWITCHBOARD_CONFIG"] == f"{mount['mountPath']}/config.yaml"
        assert c["args"] == ["run", "--role", name]
    # Network policies: each selects its role's pods; Rasa admits the roles that call it; web
    # admits its own port (the Ingress controller's traffic).
    policies = by_kind(objs, "NetworkPolicy")
    assert set(policies) == {"router", "web", "rasa"}
    for name, pol in policies.items():
        assert matches(pol["spec"]["podSelector"]["matchLabels"]) == {name}
    (rule,) = policies["rasa"]["spec"]["ingress"]
    (expr,) = rule["from"][0]["podSelector"]["matchExpressions"]
    assert expr["key"] == "app.kubernetes.io/name" and expr["operator"] == "In"
    assert {n for n, lab in pod_labels.items() if lab.get(expr["key"]) in expr["values"]} == {"router", "web"}
    web_ports = {p["name"] for p in pod_spec(deployments["web"])["containers"][0]["ports"]}
    assert {p["port"] for p in policies["web"]["spec"]["ingress"][0]["ports"]} <= web_ports
    assert policies["router"]["spec"]["ingress"] == []
    pvcs = by_kind(objs, "PersistentVolumeClaim")
    for d in deployments.values():
        for v in pod_spec(d)["volumes"]:
            if "persistentVolumeClaim" in v:
                assert v["persistentVolumeClaim"]["claimName"] in pvcs


@pytest.mark.parametrize("target", TARGETS)
def test_pods_run_hardened_with_resources_and_probes(target: str) -> None:
    deployments = by_kind(rendered(target), "Deployment")
    for name, d in deployments.items():
        spec = pod_spec(d)
        assert spec["securityContext"]["runAsNonRoot"] is True
        for c in spec["containers"]:
            res = c["resources"]
            assert {"cpu", "memory"} <= set(res["requests"]) and "memory" in res["limits"], name
            assert c["securityContext"]["readOnlyRootFilesystem"] and c["securityContext"]["allowPrivilegeEscalation"] is False
            assert "/tmp" in {m["mountPath"] for m in c["volumeMounts"]}, f"{name}: read-only root needs a /tmp volume"
            if target != "base":
                assert re.fullmatch(r"[a-z0-9.-]+/[a-z0-9/-]+:[\w.-]+", c["image"]), f"{name}: image {c['image']} not pinned"
    web = pod_spec(deployments["web"])["containers"][0]
    assert web["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert web["startupProbe"]["httpGet"]["path"] == "/healthz"
    rasa = pod_spec(deployments["rasa"])["containers"][0]
    assert rasa["readinessProbe"]["httpGet"]["path"] == "/status"
    ports = {p["name"]: p["containerPort"] for p in web["ports"]}
    assert ports[web["readinessProbe"]["httpGet"]["port"]] == 8080


def test_shutdown_leaves_time_for_work_in_flight(monkeypatch: pytest.MonkeyPatch) -> None:
    s = k8s_settings(monkeypatch, SWITCHBOARD_REDIS_URL="redis://redis:6379/0", SWITCHBOARD_DATABASE_URL="postgresql+asyncpg://x@postgres/x")
    deployments = by_kind(rendered("overlays/production"), "Deployment")

    def pre_stop_s(d: Obj) -> int:
        cmd = pod_spec(d)["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
        assert cmd[0] == "sleep"
        return int(cmd[1])

    # web: out of the endpoints first, then uvicorn's graceful stop (5 s) and the senders' (5 s).
    web = deployments["web"]
    assert pod_spec(web)["terminationGracePeriodSeconds"] >= pre_stop_s(web) + 5 + 5 + 5
    rasa = deployments["rasa"]
    assert pod_spec(rasa)["terminationGracePeriodSeconds"] >= pre_stop_s(rasa) + 10
    # router: a message in flight may wait for one NLU call and one retry.
    assert pod_spec(deployments["router"])["terminationGracePeriodSeconds"] >= 4 * s.nlu.timeout_s
    # Rolling updates never take away the last serving web or Rasa pod.
    for name in ("web", "rasa"):
        assert deployments[name]["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_ingress_keeps_the_widget_websocket_open(monkeypatch: pytest.MonkeyPatch) -> None:
    s = k8s_settings(monkeypatch, SWITCHBOARD_REDIS_URL="redis://redis:6379/0", SWITCHBOARD_DATABASE_URL="postgresql+asyncpg://x@postgres/x")
    web = s.channel("web")
    assert web is not None
    ann = by_kind(rendered("overlays/production"), "Ingress")["web"]["metadata"]["annotations"]
    for k in ("proxy-read-timeout", "proxy-send-timeout"):
        assert int(ann[f"nginx.ingress.kubernetes.io/{k}"]) >= 10 * web.ping_interval_s  # type: ignore[attr-defined]
    body = ann["nginx.ingress.kubernetes.io/proxy-body-size"]
    assert int(body.rstrip("m")) * 1024 * 1024 > web.max_attachment_bytes  # type: ignore[attr-defined]


def test_keda_scales_the_router_on_the_inbound_lag(monkeypatch: pytest.MonkeyPatch) -> None:
    s = k8s_settings(monkeypatch, SWITCHBOARD_REDIS_URL="redis://redis:6379/0", SWITCHBOARD_DATABASE_URL="postgresql+asyncpg://x@postgres/x")
    objs = rendered("overlays/production")
    so = by_kind(objs, "ScaledObject")["router"]
    assert so["apiVersion"] == "keda.sh/v1alpha1"
    target = so["spec"]["scaleTargetRef"]["name"]
    assert target in by_kind(objs, "Deployment")
    # KEDA owns the replica count: a fixed one would fight it on every apply.
    assert "replicas" not in by_kind(objs, "Deployment")[target]["spec"]
    assert 1 <= so["spec"]["minReplicaCount"] <= so["spec"]["maxReplicaCount"]
    (trigger,) = so["spec"]["triggers"]
    assert trigger["type"] == "redis-streams"
    meta = trigger["metadata"]
    assert meta["stream"] == s.queue.inbound_stream and meta["consumerGroup"] == s.queue.group
    assert int(meta["lagCount"]) > 0
    assert trigger["authenticationRef"]["name"] in by_kind(objs, "TriggerAuthentication")
    # Staging keeps fixed replicas (no KEDA there).
    assert "ScaledObject" not in {o["kind"] for o in rendered("overlays/staging")}


def test_web_sees_users_addresses_and_prometheus_can_scrape(monkeypatch: pytest.MonkeyPatch) -> None:
    """Behind the Ingress, the per-IP widget limit must see the users' addresses (from
    X-Forwarded-For, believed only from the Ingress controller) and Prometheus, another pod, must
    be allowed to read /metrics. Which settings do that depends on the web role's version: with
    `web.trusted_proxies` / `web.metrics_token` (hardening, #17) they must be set in the
    Kubernetes config; before that, uvicorn's FORWARDED_ALLOW_IPS does it and /metrics is open."""
    s = k8s_settings(monkeypatch, SWITCHBOARD_REDIS_URL="redis://redis:6379/0", SWITCHBOARD_DATABASE_URL="postgresql+asyncpg://x@postgres/x")
    web = pod_spec(by_kind(rendered("overlays/production"), "Deployment")["web"])["containers"][0]
    env = {e["name"]: e.get("value") for e in web.get("env", [])}
    if "trusted_proxies" in WebSettings.model_fields:
        assert s.web.trusted_proxies, "deploy/k8s/base/config.yaml: set web.trusted_proxies (the Ingress controller's pods)"
    else:
        assert env.get("FORWARDED_ALLOW_IPS")
    if "metrics_token" in WebSettings.model_fields:
        assert s.web.metrics_token is not None, "deploy/k8s/base/config.yaml: web.metrics_token: ${SWITCHBOARD_METRICS_TOKEN}"
        assert "SWITCHBOARD_METRICS_TOKEN" in secret_keys()
