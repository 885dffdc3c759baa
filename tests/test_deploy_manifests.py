"""The deployment files are checked offline: Kubernetes manifests against the Kubernetes
schemas (kubernetes-validate ships them), the compose file against the compose schema
(Debian's docker-compose validates without a Docker engine), and both against the image
they run: every role they start is one the entrypoint knows, every probe path answers.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
COMPOSE = ROOT / "deploy" / "docker-compose.yml"
KUBERNETES_VERSION = "1.33.0"  # oldest minor still supported upstream when written
# Applied by hand, in the order kustomization.yaml's header explains, never by `apply -k`.
NOT_IN_KUSTOMIZATION = {"kustomization.yaml", "secret.example.yaml", "migrate-job.yaml"}


def _manifests() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc.get("spec", {})
    pod = spec.get("jobTemplate", {}).get("spec", spec).get("template", {}).get("spec", {})
    return [*pod.get("initContainers", []), *pod.get("containers", [])]


def _entrypoint_roles() -> set[str]:
    text = (ROOT / "deploy" / "entrypoint.sh").read_text()
    return set(re.findall(r"^\s{4}([a-z-]+)\)\s*$", text, flags=re.MULTILINE))


@pytest.mark.parametrize("path", _manifests(), ids=lambda p: p.name)
def test_k8s_manifest_validates_strictly_against_the_kubernetes_schema(path: Path) -> None:
    documents = _documents(path)

    assert documents, f"{path.name} holds no resource"
    for doc in documents:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_k8s_kustomization_lists_every_manifest_that_exists() -> None:
    [kustomization] = _documents(K8S / "kustomization.yaml")
    listed = set(kustomization["resources"])

    assert all((K8S / name).is_file() for name in listed), listed
    assert listed == {p.name for p in K8S.glob("*.yaml")} - NOT_IN_KUSTOMIZATION


def test_k8s_containers_run_roles_the_entrypoint_knows() -> None:
    roles = _entrypoint_roles()
    started = {
        (path.name, container["args"][0])
        for path in _manifests()
        for doc in _documents(path)
        for container in _containers(doc)
        if "groundwork" in container.get("image", "") and container.get("args")
    }

    assert started, "no Groundwork container found"
    assert {role for _, role in started} <= roles, (started, roles)


def test_k8s_probe_paths_answer_on_the_app(client: Any) -> None:
    paths = {
        probe["httpGet"]["path"]
        for path in _manifests()
        for doc in _documents(path)
        for container in _containers(doc)
        for kind in ("livenessProbe", "readinessProbe", "startupProbe")
        if (probe := container.get(kind, {})).get("httpGet")
    }

    assert paths, "no HTTP probe found"
    for path in sorted(paths):
        assert client.get(path).status_code == 200, path


def test_compose_file_validates_against_the_compose_schema() -> None:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail("docker-compose is not installed: run deploy/install-system-deps.sh as root", pytrace=False)
    required = set(re.findall(r"\$\{([A-Z_]+):\?", COMPOSE.read_text()))
    env = {**os.environ, **dict.fromkeys(required, "set-for-validation")}

    result = subprocess.run([binary, "-f", str(COMPOSE), "config", "--quiet"], env=env,
                            capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr


def test_compose_services_run_roles_the_entrypoint_knows() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    roles = {
        service["command"][0]
        for service in services.values()
        if str(service.get("image", "")).startswith("groundwork") and service.get("command")
    }

    assert roles and roles <= _entrypoint_roles(), roles
