"""The deployment of several replicas (docker-compose.yml and deploy/Caddyfile) read as Docker Compose and Caddy
would read them, without Docker: the parts are there and wired to each other, every variable the replicas get
is one of Parley's settings, and their settings load (webhook mode, PostgreSQL) with the placeholders filled."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from parley.config import declared, load_settings
from parley.config.parsers import Address
from tests.test_config import REQUIRED

ROOT = Path(__file__).resolve().parent.parent
REPLICAS = ("parley-a", "parley-b")
FILLED = {
    "POSTGRES_PASSWORD": "s3cret-pw",
    "PUBLIC_HOSTNAME": "bot.example.com",
    "PARLEY_WEBHOOK_SECRET": "a" * 32,
}
"""What an operator's .env gives the compose file's ${…} placeholders."""


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text())  # merge keys (<<: *parley) resolved
    assert isinstance(loaded, dict)
    return loaded


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${NAME}, ${NAME:?error} and ${NAME:-default}, as `docker compose config` fills them."""

    def one(match: re.Match[str]) -> str:
        name, operator, rest = match.group(1), match.group(2), match.group(3)
        if name in env:
            return env[name]
        if operator == ":-":
            return rest or ""
        raise AssertionError(f"{name} must be set: {rest}")

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:[?-])([^}]*))?\}", one, value)


def seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+)(s|m)", duration)
    assert match, duration
    return int(match.group(1)) * (60 if match.group(2) == "m" else 1)


def test_compose_has_postgres_two_replicas_and_a_proxy(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", *REPLICAS, "proxy"}
    assert services["postgres"]["image"].startswith("postgres:")
    assert "healthcheck" in services["postgres"] and "postgres-data" in compose["volumes"]
    for name in REPLICAS:
        replica = services[name]
        assert replica["build"] == "." and replica["command"] == ["run", "--webhook"]
        assert replica["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert "ports" not in replica  # reached only through the proxy
        assert replica["stop_signal"] == "SIGTERM"
        # Docker's SIGKILL comes after the grace period: later than Parley's own deadline for replies.
        shutdown = float(replica["environment"]["PARLEY_SHUTDOWN_SECONDS"])
        assert seconds(replica["stop_grace_period"]) >= shutdown + 5
    assert services["parley-a"]["environment"] == services["parley-b"]["environment"]
    proxy = services["proxy"]
    assert proxy["image"].startswith("caddy:")
    assert set(proxy["ports"]) == {"80:80", "443:443"}
    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in proxy["volumes"]


def test_every_variable_a_replica_gets_is_a_parley_setting_and_loads(compose: dict[str, Any]) -> None:
    names = {spec.env for spec in declared()}
    for name in REPLICAS:
        environment = compose["services"][name]["environment"]
        assert set(environment) <= names, set(environment) - names
        env = {key: interpolate(str(value), FILLED) for key, value in environment.items()}
        settings = load_settings(REQUIRED | env, webhook=True)
        operations = settings.operations
        assert operations.webhook and operations.webhook_url == "https://bot.example.com/telegram"
        assert operations.database == "postgresql://parley:s3cret-pw@postgres:5432/parley"
        assert operations.listen == Address("0.0.0.0", 8080)
        assert operations.metrics_listen == Address("0.0.0.0", 9090)  # the proxy's health checks reach it
    postgres = compose["services"]["postgres"]["environment"]
    assert (postgres["POSTGRES_USER"], postgres["POSTGRES_DB"]) == ("parley", "parley")
    with pytest.raises(AssertionError, match="POSTGRES_PASSWORD"):  # a missing secret stops `docker compose up`
        interpolate(compose["services"]["parley-a"]["environment"]["DATABASE_URL"], {})


def test_the_proxy_sends_the_webhook_path_to_both_replicas_when_ready(compose: dict[str, Any]) -> None:
    caddyfile = (ROOT / "deploy" / "Caddyfile").read_text()
    code = "\n".join(line.split("#", 1)[0].rstrip() for line in caddyfile.splitlines())
    assert code.count("{") == code.count("}")
    assert "{$PUBLIC_HOSTNAME} {" in code
    [upstreams] = re.findall(r"handle /telegram \{\s*reverse_proxy ([^{]+)\{", code)
    assert upstreams.split() == [f"{name}:8080" for name in REPLICAS]
    assert re.search(r"health_uri /readyz\s", code) and re.search(r"health_port 9090\s", code)
    assert re.search(r"lb_try_duration \d+s", code)
    webhook = compose["services"]["parley-a"]["environment"]["PARLEY_WEBHOOK_URL"]
    assert interpolate(webhook, FILLED).endswith("/telegram")
