"""Render the Kustomize subset deploy/k8s uses, in Python, so `make test` validates the manifests
on machines without the kubectl/kustomize binaries (no registry we reach ships them).

Supported: `resources` (files and directories), `components`, `configMapGenerator` (files,
literals; content-hash name suffix and the references to it, as Kustomize computes them),
`labels` (metadata only), `namespace`, `images`, `replicas` and JSON 6902 `patches` with a
kind/name target. Anything else in a kustomization.yaml is refused, so a manifest change that
needs more cannot pass unnoticed; where kubectl is installed the tests compare both renderings.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

Obj = dict[str, Any]
KNOWN = {"apiVersion", "kind", "resources", "components", "configMapGenerator", "labels", "namespace",
         "images", "replicas", "patches"}
CLUSTER_SCOPED = {"Namespace", "PersistentVolume", "ClusterRole", "ClusterRoleBinding", "StorageClass",
                  "CustomResourceDefinition", "PriorityClass", "IngressClass"}


class Unsupported(Exception):
    pass


def render(root: Path) -> list[Obj]:
    objs, generated = _build(root)
    return _finish(objs, generated)


def _load_docs(p: Path) -> list[Obj]:
    return [d for d in yaml.safe_load_all(p.read_text(encoding="utf-8")) if d]


def _build(d: Path, into: list[Obj] | None = None) -> tuple[list[Obj], set[int]]:
    k = yaml.safe_load((d / "kustomization.yaml").read_text(encoding="utf-8")) or {}
    unknown = set(k) - KNOWN
    if unknown:
        raise Unsupported(f"{d}/kustomization.yaml: {sorted(unknown)} not supported by kustomize_lite")
    objs: list[Obj] = [] if into is None else into
    generated: set[int] = set()
    mine: list[Obj] = []
    for r in k.get("resources", []):
        p = (d / r).resolve()
        if p.is_dir():
            sub, gen = _build(p)
            mine += sub
            generated |= gen
        else:
            mine += _load_docs(p)
    for g in k.get("configMapGenerator", []):
        data: dict[str, str] = {}
        for f in g.get("files", []):
            key, _, path = f.rpartition("=")
            data[key or Path(path).name] = (d / path).read_text(encoding="utf-8")
        for lit in g.get("literals", []):
            key, _, value = lit.partition("=")
            data[key] = value
        cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": g["name"]}, "data": data}
        mine.append(cm)
        generated.add(id(cm))
    objs += mine
    for c in k.get("components", []):
        _, gen = _build((d / c).resolve(), into=objs)  # a component acts on everything so far
        generated |= gen
    scope = objs if into is not None else objs
    for pairs in (lp.get("pairs", {}) for lp in k.get("labels", [])):
        if any(lp.get("includeSelectors") or lp.get("includeTemplates") for lp in k.get("labels", [])):
            raise Unsupported("labels: includeSelectors/includeTemplates")
        for o in scope:
            o.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)
    for p in k.get("patches", []):
        t = p.get("target", {})
        if "path" in p or set(t) - {"kind", "name"}:
            raise Unsupported("patches: only inline JSON 6902 with a kind/name target")
        ops = yaml.safe_load(p["patch"])
        hits = [o for o in scope if o["kind"] == t.get("kind", o["kind"]) and o["metadata"]["name"] == t.get("name", o["metadata"]["name"])]
        if not hits:
            raise Unsupported(f"patch target {t} matches nothing")
        for o in hits:
            for op in ops:
                _json_patch(o, op)
    for r in k.get("replicas", []):
        for o in scope:
            if o["kind"] in ("Deployment", "StatefulSet", "ReplicaSet") and o["metadata"]["name"] == r["name"]:
                o["spec"]["replicas"] = r["count"]
    for im in k.get("images", []):
        for o in scope:
            for c in _containers(o):
                name, tag = _split_image(c["image"])
                if name == im["name"]:
                    c["image"] = im.get("newName", name) + (f":{im['newTag']}" if "newTag" in im else (f":{tag}" if tag else ""))
    if "namespace" in k:
        for o in scope:
            if o["kind"] not in CLUSTER_SCOPED:
                o["metadata"]["namespace"] = k["namespace"]
    return objs, generated


def _split_image(image: str) -> tuple[str, str]:
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        return image.rsplit(":", 1)[0], image.rsplit(":", 1)[1]
    return image, ""


def _containers(o: Obj) -> list[Obj]:
    spec = o.get("spec", {}).get("template", {}).get("spec", {})
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


def _pointer(path: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in path.lstrip("/").split("/")]


def _json_patch(doc: Obj, op: Obj) -> None:
    *parents, last = _pointer(op["path"])
    node: Any = doc
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    kind = op["op"]
    if isinstance(node, list):
        if kind == "add":
            node.insert(len(node) if last == "-" else int(last), copy.deepcopy(op["value"]))
        elif kind == "replace":
            node[int(last)] = copy.deepcopy(op["value"])
        elif kind == "remove":
            del node[int(last)]
        else:
            raise Unsupported(f"JSON patch op {kind}")
    else:
        if kind in ("add", "replace"):
            if kind == "replace" and last not in node:
                raise KeyError(f"replace of a missing path {op['path']}")
            node[last] = copy.deepcopy(op["value"])
        elif kind == "remove":
            del node[last]
        else:
            raise Unsupported(f"JSON patch op {kind}")


def _go_json(v: Any) -> str:
    """encoding/json.Marshal: sorted keys, no spaces, HTML characters escaped."""
    s = json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return (s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def configmap_hash(cm: Obj) -> str:
    """Kustomize's name suffix of a generated ConfigMap (api/hasher: sha256 of kind, name and
    data as Go JSON, first 10 hex digits with 0 1 3 a e mapped to g h k m t). The generator
    hashes the object before its name is set, so the name in the hash is empty (checked
    against kubectl 1.32 / Kustomize 5.5: `a=b` in ConfigMap `x` gives `x-4h2mbtbbt6`)."""
    m: Obj = {"kind": "ConfigMap", "name": "", "data": cm.get("data", {})}
    if cm.get("binaryData"):
        m["binaryData"] = cm["binaryData"]
    digest = hashlib.sha256(_go_json(m).encode()).hexdigest()[:10]
    return digest.translate(str.maketrans({"0": "g", "1": "h", "3": "k", "a": "m", "e": "t"}))


def _finish(objs: list[Obj], generated: set[int]) -> list[Obj]:
    renamed: dict[str, str] = {}
    for o in objs:
        if id(o) in generated:
            old = o["metadata"]["name"]
            o["metadata"]["name"] = f"{old}-{configmap_hash(o)}"
            renamed[old] = o["metadata"]["name"]
    for o in objs:
        spec = o.get("spec", {}).get("template", {}).get("spec", {})
        for v in spec.get("volumes", []):
            if "configMap" in v and v["configMap"]["name"] in renamed:
                v["configMap"]["name"] = renamed[v["configMap"]["name"]]
        for c in _containers(o):
            for ef in c.get("envFrom", []):
                ref = ef.get("configMapRef")
                if ref and ref["name"] in renamed:
                    ref["name"] = renamed[ref["name"]]
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("configMapKeyRef")
                if ref and ref["name"] in renamed:
                    ref["name"] = renamed[ref["name"]]
    return [copy.deepcopy(o) for o in objs]
