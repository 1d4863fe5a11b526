"""The Kubernetes path's Helm values stay true to the code: the module they serve, the settings they pass,
and no secret written inline. (Rendering them needs `helm` and a cluster, which CI does not have.)"""

from __future__ import annotations

import importlib
import re
import tomllib
from pathlib import Path

import yaml

from engagement_assets.deploy import PRODUCTION_INSTANCE
from engagement_assets.deploy.executors import executor_for
from engagement_assets.settings import Settings

K8S = PRODUCTION_INSTANCE.parent.parent / "k8s"
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
SECRET_NAMES = re.compile(r"KEY|SECRET|PASSWORD|TOKEN", re.IGNORECASE)


def values() -> dict:
    return yaml.safe_load((K8S / "values.yaml").read_text())


def code_location(config: dict) -> dict:
    (deployment,) = config["dagster-user-deployments"]["deployments"]
    return deployment


def test_the_code_server_serves_our_definitions_module():
    args = code_location(values())["dagsterApiGrpcArgs"]
    module = args[args.index("--module-name") + 1]
    assert module == tomllib.loads(PYPROJECT.read_text())["tool"]["dagster"]["module_name"]
    assert importlib.import_module(module).defs is not None


def test_code_location_and_run_pods_get_the_same_valid_settings():
    config = values()
    location_env = {item["name"]: item["value"] for item in code_location(config)["env"]}
    launcher_env = dict(
        item.split("=", 1) for item in config["runLauncher"]["config"]["k8sRunLauncher"]["envVars"]
    )
    assert location_env == launcher_env
    settings = Settings.from_env(location_env)  # refuses unknown choices
    assert settings.executor == "k8s"
    assert executor_for(settings.executor).name == "k8s"
    assert settings.storage_url.startswith("s3://")


def test_secrets_are_only_referenced():
    config = values()
    inline = [
        name for name in {item["name"] for item in code_location(config)["env"]} if SECRET_NAMES.search(name)
    ]
    assert inline == []
    assert code_location(config)["envSecrets"]
    assert config["generatePostgresqlPasswordSecret"] is False
    assert "postgresqlPassword" not in config["postgresql"]


def test_the_image_installs_the_kubernetes_extra():
    dockerfile = (K8S / "Dockerfile").read_text()
    assert re.search(r"pip install .*\[production,k8s\]", dockerfile)
    assert "USER 10001" in dockerfile
