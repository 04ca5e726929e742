"""docker-compose.yml for both uses, checked without a Docker engine: valid against the Compose
specification's JSON schema, the dev profile a working development stack around the sandbox
service, the prod profile production-shaped (it refuses development secrets), health checks,
the mapping and keys mounted."""

from __future__ import annotations

import importlib.resources
import json
import os
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import ValidationError

from wizesync.config import DEV_ADMIN_TOKEN, DEV_WIZEHIRE_SECRET, ConfigError, Settings
from wizesync.mapping import load_mapping
from wizesync_sandbox import defaults

ROOT = Path(__file__).parents[1]
COMPOSE = ROOT / "docker-compose.yml"
REFUSED = (ValidationError, ConfigError)  # a validator's ConfigError arrives wrapped
INTERPOLATION = re.compile(r"\$\{([A-Z_]+)(?::-([^}]*))?\}")


def compose_schema() -> dict[str, Any]:
    """The Compose specification's schema (compose-spec/compose-spec, schema/compose-spec.json)
    as the `check-jsonschema` package ships it, so nothing is fetched at test time."""
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    return dict(json.loads((vendor / "compose-spec.json").read_text()))


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text()))


def services_for(profile: str | None) -> dict[str, Any]:
    """What `docker compose [--profile P] up` starts: services without profiles always."""
    return {
        name: s
        for name, s in compose()["services"].items()
        if not s.get("profiles") or (profile is not None and profile in s["profiles"])
    }


def interpolated(value: str) -> str:
    """`${VAR:-default}` as Compose resolves it with nothing set."""
    return INTERPOLATION.sub(lambda m: m.group(2) or "", value)


def command(service: dict[str, Any]) -> str:
    value = service.get("command", "")
    return " ".join(value) if isinstance(value, list) else str(value)


def test_the_file_is_valid_against_the_compose_specification() -> None:
    schema = compose_schema()
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(compose()), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_the_schema_check_catches_a_broken_file() -> None:
    broken = compose()
    broken["services"]["api"]["depends_on"] = {"migrate": {"condition": "when_it_feels_like"}}
    broken["services"]["worker"]["healthcheck"]["interval"] = ["30s"]
    errors = list(jsonschema.Draft202012Validator(compose_schema()).iter_errors(broken))
    assert len(errors) >= 2


def test_dev_runs_postgres_an_api_a_worker_and_the_sandbox_as_its_own_service() -> None:
    dev = services_for("dev")
    assert {"postgres", "sandbox"} <= set(dev)
    apis = [n for n, s in dev.items() if command(s).startswith("serve")]
    workers = [n for n, s in dev.items() if command(s) == "worker"]
    assert apis == ["dev-api"] and workers == ["dev-worker"]
    sandbox = dev["sandbox"]
    assert command(sandbox).startswith("sandbox --host 0.0.0.0 --port 8010")
    assert "--service-url http://dev-api:8000" in command(sandbox)
    for name in ("dev-api", "dev-worker"):
        env = dev[name]["environment"]
        assert env["GHL_API_URL"] == "http://sandbox:8010/ghl", name
        assert env["WIZEHIRE_API_URL"] == "http://sandbox:8010/wizehire", name
        assert env["GHL_LOCATION_ID"] == defaults.DEFAULT_LOCATION_ID, name
        assert env["GHL_PRIVATE_TOKEN"] == defaults.DEFAULT_PRIVATE_TOKEN, name
        assert dev[name]["depends_on"]["sandbox"]["condition"] == "service_healthy", name
    assert dev["dev-api"]["environment"]["WORKER"] == "off"  # the worker service works the queue
    # The sandbox package is only in the image's development target.
    for name in ("sandbox", "dev-migrate", "dev-api", "dev-worker"):
        assert dev[name]["build"]["target"] == "development", name
    for name in ("migrate", "api", "worker"):
        assert services_for("prod")[name]["build"]["target"] == "production", name
    # Nothing of production starts in development.
    assert not {"migrate", "api", "worker"} & set(dev)


def _settings_from(
    env: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, dotenv: str = ""
) -> Settings:
    for name in list(os.environ):
        if re.match(
            r"^(WIZESYNC_|WIZEHIRE_|GHL_|DATABASE_URL|ADMIN_TOKEN|MAPPING_FILE|WORKER"
            r"|TOKEN_ENCRYPTION_KEY|SLACK_WEBHOOK_URL|LOG_|METRICS_TOKEN)",
            name,
        ):
            monkeypatch.delenv(name)
    for key, value in env.items():
        monkeypatch.setenv(key, interpolated(str(value)))
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(dotenv)
    return Settings()


def test_dev_settings_work_out_of_the_box(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    dev = services_for("dev")
    for name in ("dev-migrate", "dev-api", "dev-worker"):
        env = dict(dev[name]["environment"])
        # The container's /etc/wizesync is the mounted deploy/dev.
        env["GHL_WEBHOOK_PUBLIC_KEY"] = str(
            ROOT / "deploy/dev" / Path(env["GHL_WEBHOOK_PUBLIC_KEY"]).name
        )
        settings = _settings_from(env, monkeypatch, tmp_path)
        assert settings.wizesync_env == "development", name
        assert settings.database_url.endswith("@postgres:5432/wizesync"), name
    mount = next(v for v in dev["dev-api"]["volumes"] if v.endswith(":/etc/wizesync:ro"))
    mapped_dir = ROOT / mount.split(":", 1)[0]
    assert dev["dev-api"]["environment"]["MAPPING_FILE"] == "/etc/wizesync/mapping.yaml"
    mapping = load_mapping(str(mapped_dir / "mapping.yaml"))
    assert mapping.locations.default == defaults.DEFAULT_LOCATION_ID
    assert mapping.products["JOB-BOOST-30"].price_id == defaults.BOOST_PRICE_ID
    assert mapping.products["HIRING-PLAN-MONTHLY"].price_id == defaults.PLAN_PRICE_ID
    assert mapping.refunds.gateways == defaults.SANDBOX_GATEWAYS


def test_dev_services_get_everything_the_sandbox_says_a_service_needs() -> None:
    """`wizesync sandbox` prints what a service needs to talk to it; the dev profile gives it
    (the signing key as a mounted PEM file), and may bind 0.0.0.0 inside its container."""
    dev = services_for("dev")
    needed = defaults.service_env("http://sandbox:8010")
    mount = next(v for v in dev["dev-api"]["volumes"] if v.endswith(":/etc/wizesync:ro"))
    mapped_dir = ROOT / mount.split(":", 1)[0]
    for name in ("dev-api", "dev-worker"):
        env = {k: str(v) for k, v in dev[name]["environment"].items()}
        for key, value in needed.items():
            if key == "GHL_WEBHOOK_PUBLIC_KEY":
                pem = mapped_dir / Path(env[key]).relative_to("/etc/wizesync")
                assert pem.read_text() == value, name
            elif key != "GHL_AUTHORIZE_URL":  # PIT mode: no OAuth in the dev profile
                assert env.get(key) == value, (name, key)
        assert env["WIZESYNC_EXPOSE_DEVELOPMENT"] == "1"


def test_prod_is_production_shaped_and_refuses_development_secrets(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    prod = services_for("prod")
    assert set(prod) == {"postgres", "migrate", "api", "worker"}
    assert "sandbox" not in prod
    for name in ("migrate", "api", "worker"):
        service = prod[name]
        assert service["environment"]["WIZESYNC_ENV"] == "production", name
        assert service["environment"]["MAPPING_FILE"] == "/etc/wizesync/mapping.yaml", name
        assert any(v.endswith(":/etc/wizesync:ro") for v in service["volumes"]), name
        assert ".env" in json.dumps(service["env_file"]), name
        # `.env.example` as `.env` (it says WIZESYNC_ENV=development): the service's own
        # WIZESYNC_ENV wins, and production refuses what is missing.
        example = (ROOT / ".env.example").read_text()
        with pytest.raises(REFUSED, match="refusing to start in production: ADMIN_TOKEN is"):
            _settings_from(service["environment"], monkeypatch, tmp_path, example)
        development_secrets = (
            f"ADMIN_TOKEN={DEV_ADMIN_TOKEN}\n"
            f"WIZEHIRE_WEBHOOK_SECRET={DEV_WIZEHIRE_SECRET}\n"
            "WIZEHIRE_API_URL=https://api.wizehire.example\n"
        )
        with pytest.raises(REFUSED, match="ADMIN_TOKEN is a development placeholder"):
            _settings_from(service["environment"], monkeypatch, tmp_path, development_secrets)


def test_prod_mounts_the_config_dir_for_the_mapping_and_pem_keys() -> None:
    api = services_for("prod")["api"]
    (mount,) = [v for v in api["volumes"] if "/etc/wizesync" in v]
    assert interpolated(mount) == "./config:/etc/wizesync:ro"
    assert "WIZESYNC_CONFIG_DIR" in mount


def test_workers_and_apis_are_health_checked() -> None:
    services = compose()["services"]
    for name in ("worker", "dev-worker"):
        assert services[name]["healthcheck"]["test"] == ["CMD", "wizesync", "worker", "--check"]
        assert "stop_grace_period" in services[name]
    for name in ("api", "dev-api"):
        assert "/health" in " ".join(services[name]["healthcheck"]["test"])
    assert "/_sandbox/config" in " ".join(services["sandbox"]["healthcheck"]["test"])
    assert services["worker"]["environment"]["WORKER_METRICS_PORT"] == "9100"
