"""No Docker engine runs here, so check what can be checked of docker/: the compose file
parses, its services, ports and variables match the hub, the Dockerfile copies what exists."""

from __future__ import annotations

import re
import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any

import yaml

from hub.config import Settings

ROOT = Path(__file__).resolve().parent.parent
HUB_VARIABLES = {f"HUB_{f.name.upper()}" for f in fields(Settings)} | {"HUB_CONFIG"}


def _compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


def test_compose_services_ports_and_health() -> None:
    services = _compose()["services"]
    assert isinstance(services, dict)
    assert {"postgres", "hub"} <= set(services)
    hub = services["hub"]
    assert hub["ports"] == ["8080:8080"]
    assert "/readyz" in " ".join(hub["healthcheck"]["test"])
    assert hub["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert hub["build"]["dockerfile"] == "docker/Dockerfile"
    assert (
        (ROOT / "docker" / hub["build"]["context"] / hub["build"]["dockerfile"]).resolve().exists()
    )
    assert services["nats"]["profiles"] == ["cluster"]


def test_the_example_prometheus_scrapes_the_hubs_metrics() -> None:
    prometheus = _compose()["services"]["prometheus"]
    assert prometheus["profiles"] == ["metrics"]
    mounted, inside, _ = prometheus["volumes"][0].split(":")
    assert inside == "/etc/prometheus/prometheus.yml"
    config = yaml.safe_load((ROOT / "docker" / mounted).read_text())
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    port = _compose()["services"]["hub"]["ports"][0].split(":")[1]
    assert job["static_configs"][0]["targets"] == [f"hub:{port}"]


def test_compose_variables_are_the_hubs_own() -> None:
    hub = _compose()["services"]["hub"]
    env = hub["environment"]
    assert set(env) <= HUB_VARIABLES, set(env) - HUB_VARIABLES
    assert env["HUB_PORT"] == "8080" and env["HUB_HOST"] == "0.0.0.0"
    dsn = env["HUB_DATABASE_URL"]
    postgres = _compose()["services"]["postgres"]
    # The hub connects as the ordinary role the init script creates, not the superuser.
    assert postgres["environment"]["POSTGRES_USER"] != "hub"
    assert dsn.startswith("postgresql://hub:") and dsn.endswith("@postgres:5432/hub")
    assert "./initdb:/docker-entrypoint-initdb.d:ro" in postgres["volumes"]
    script = (ROOT / "docker" / "initdb" / "10-hub-role.sh").read_text()
    assert "CREATE ROLE hub LOGIN NOSUPERUSER" in script
    assert "CREATE DATABASE hub OWNER hub" in script and "$HUB_DB_PASSWORD" in script
    # Passwords are required, never an example value the hub would refuse.
    assert "${HUB_DB_PASSWORD:?" in dsn
    assert "${HUB_DB_PASSWORD:?" in postgres["environment"]["HUB_DB_PASSWORD"]
    assert "${HUB_DB_ADMIN_PASSWORD:?" in postgres["environment"]["POSTGRES_PASSWORD"]


def test_dockerfile_matches_the_hub() -> None:
    text = (ROOT / "docker" / "Dockerfile").read_text()
    for source in re.findall(r"^COPY (\S+)", text, flags=re.M):
        assert (ROOT / source).exists(), source
    for name in re.findall(r"COPY [^\n]*", text):
        for part in name.split()[1:-1]:
            assert (ROOT / part).exists(), part
    assert "EXPOSE 8080" in text and 'CMD ["hub", "serve"]' in text
    assert "/readyz" in text
    for variable in re.findall(r"\b(HUB_[A-Z_]+)=", text):
        assert variable in HUB_VARIABLES, variable


def test_the_image_installs_the_hub_with_uvloop() -> None:
    """`hub serve` runs on uvloop when it is installed; on Linux it is a plain dependency,
    so the image (and `make run`) gets it without an extra."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(d.startswith("uvloop") and "win32" in d for d in project["dependencies"])
    text = (ROOT / "docker" / "Dockerfile").read_text()
    installs = re.findall(r"pip install '?\.(?:\[([a-z,]+)\])?", text)
    assert installs, "the image installs the hub from its source"
    extras = set(project.get("optional-dependencies", {}))
    for wanted in installs:
        assert not wanted or set(wanted.split(",")) <= extras, wanted


def test_the_cluster_profile_balances_two_nodes_on_the_bus() -> None:
    services = _compose()["services"]
    hub, hub2, balancer = services["hub"], services["hub2"], services["balancer"]
    assert hub2["profiles"] == balancer["profiles"] == services["nats"]["profiles"] == ["cluster"]
    # The second node is the first one's twin on the bus, sharing its files.
    assert hub2["build"] == hub["build"] and hub2["volumes"] == hub["volumes"]
    assert set(hub2["environment"]) == set(hub["environment"])
    same = {"HUB_DATABASE_URL", "HUB_HOST", "HUB_PORT", "HUB_DATA_DIR", "HUB_METRICS_TOKEN"}
    assert all(hub2["environment"][k] == hub["environment"][k] for k in same)
    assert hub2["environment"]["HUB_BUS_URL"] == "nats://nats:4222"
    assert "nats" in hub2["depends_on"] and "/readyz" in " ".join(hub2["healthcheck"]["test"])
    mounted, inside, _ = balancer["volumes"][0].split(":")
    assert inside == "/etc/caddy/Caddyfile"
    caddyfile = (ROOT / "docker" / mounted).read_text()
    listen = balancer["ports"][0].split(":")[1]
    assert re.search(rf"^:{listen} {{", caddyfile, re.M)
    port = hub["environment"]["HUB_PORT"]
    assert re.search(rf"reverse_proxy hub:{port} hub2:{port} {{", caddyfile)
    assert "health_uri /readyz" in caddyfile
    assert hub2["environment"]["HUB_PUBLIC_URL"].endswith(f":{listen}}}")
