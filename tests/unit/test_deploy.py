"""deploy/: the production files agree with the code they start.

- prefect.yaml parses, validates as Prefect's own `prefect deploy` validates it, and declares exactly the
  deployments of `flows.deployments.catalogue()` (entrypoint, schedule, timezone, description), each
  entrypoint being an importable Prefect flow that accepts the parameters given to it;
- the systemd units and compose.yaml start only commands that exist (`mairie …` against the real CLI,
  `prefect …` against Prefect's CLI help), with the hardening and wiring the operations guide describes;
- the environment file example documents every setting, uses only real setting names, and holds
  placeholders only: as shipped it cannot start the application in production, filled in it can;
- nothing under deploy/ looks like a real secret.
"""

from __future__ import annotations

import importlib
import inspect
import re
import secrets
import shlex
import shutil
import subprocess
import sys
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml
from pydantic import ValidationError

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNITS = DEPLOY / "systemd"
INSTALL_DIR = "/opt/mairie-connectee"
VENV_BIN = f"{INSTALL_DIR}/.venv/bin"
POOL = "mairie-connectee"
CAMPAIGN_POOL = "mairie-campagne"  # the campaign's child runs (MAIRIE_CAMPAIGN_WORK_POOL's default)
TIMEZONE = "Europe/Paris"
PLACEHOLDER = "CHANGE-ME"
REQUIRED_UNITS = {
    "mairie-prefect-server.service",
    "mairie-worker.service",
    "mairie-worker@.service",
    "mairie-web.service",
    "mairie-quote-worker.service",
    "mairie-migrate.service",
    "mairie-prefect-deploy.service",
}
LONG_RUNNING_UNITS = {
    "mairie-prefect-server.service",
    "mairie-worker.service",
    "mairie-worker@.service",
    "mairie-web.service",
    "mairie-quote-worker.service",
}


# --------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------


@cache
def prefect_yaml() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "prefect.yaml").read_text(encoding="utf-8"))


@cache
def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))


def catalogue() -> list[Any]:
    """The catalogue built from the default settings (what prefect.yaml must declare)."""
    from flows.deployments import catalogue as build
    from mairie.settings import Settings

    fields = Settings.model_fields
    return build(
        fields["renewal_month"].default,
        fields["renewal_day"].default,
        campaign_pool=fields["campaign_work_pool"].default,
        campaign_concurrency=fields["campaign_concurrency"].default,
    )


def pool_of(name: str) -> str:
    """The work pool a deployment of the catalogue runs on (the campaign's child runs have their own)."""
    pools = {spec.name: spec.pool for spec in catalogue()}
    return pools[name]


def path_entrypoint(entrypoint: str) -> str:
    """`flows.intake:request_intake` → `flows/intake.py:request_intake` (prefect.yaml's form)."""
    module, _, function = entrypoint.partition(":")
    return f"{module.replace('.', '/')}.py:{function}"


def yaml_deployments() -> dict[str, dict[str, Any]]:
    deployments = prefect_yaml()["deployments"]
    names = [d["name"] for d in deployments]
    assert len(names) == len(set(names)), f"deployment declared twice in prefect.yaml: {names}"
    return {d["name"]: d for d in deployments}


def parse_unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    """A systemd unit as {section: [(key, value), …]} (keys may repeat, e.g. ExecStartPre)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
            sections.setdefault(current, [])
            continue
        assert current is not None, f"{path.name}: setting outside a section: {line}"
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not a KEY=value line: {line}"
        sections[current].append((key.strip(), value.strip()))
    return sections


def unit_values(unit: dict[str, list[tuple[str, str]]], section: str, key: str) -> list[str]:
    return [v for k, v in unit.get(section, []) if k == key]


def units() -> dict[str, dict[str, list[tuple[str, str]]]]:
    return {path.name: parse_unit(path) for path in sorted(UNITS.glob("*.service"))}


def exec_commands(unit: dict[str, list[tuple[str, str]]]) -> list[list[str]]:
    """Every Exec* command line of a unit, split like systemd does, without the prefixes (-, @, +, !, :)."""
    commands = []
    for key, value in unit.get("Service", []):
        if key.startswith("Exec"):
            argv = shlex.split(value)
            argv[0] = argv[0].lstrip("-@+!:")
            commands.append(argv)
    return commands


ENV_LINE = re.compile(r"^(#)?\s*([A-Z][A-Z0-9_]*)=(.*)$")


def parse_env_example() -> tuple[dict[str, str], set[str]]:
    """(the variables set, the names documented as commented-out `#NAME=value` lines)."""
    values: dict[str, str] = {}
    documented: set[str] = set()
    for raw in (DEPLOY / "mairie.env.example").read_text(encoding="utf-8").splitlines():
        match = ENV_LINE.match(raw.strip())
        if not match:
            continue
        commented, name, value = match.groups()
        if commented:
            documented.add(name)
            continue
        assert name not in values, f"{name} set twice in mairie.env.example"
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[name] = value
    return values, documented


# --------------------------------------------------------------------------------------------------
# The CLIs
# --------------------------------------------------------------------------------------------------


def mairie_cli() -> Any:
    """The real `mairie` command tree (Typer's click objects: groups have `.commands`)."""
    from mairie.cli import app

    return typer.main.get_command(app)


def check_mairie_command(argv: list[str]) -> str | None:
    """None when `mairie <argv…>` names an existing command with existing options, else the problem."""
    command = mairie_cli()
    path = ["mairie"]
    args = list(argv)
    while isinstance(getattr(command, "commands", None), dict):
        if not args or args[0].startswith("-"):
            return f"`{' '.join(path)}` needs a sub-command"
        name = args.pop(0)
        commands = command.commands
        if name not in commands:
            return f"`{' '.join(path)} {name}`: no such command (known: {', '.join(sorted(commands))})"
        command = commands[name]
        path.append(name)
    known = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    unknown = [a.split("=", 1)[0] for a in args if a.startswith("-") and a.split("=", 1)[0] not in known]
    if unknown:
        return f"`{' '.join(path)}`: unknown option(s) {', '.join(unknown)}"
    return None


PREFECT_GLOBAL_FLAGS = {"--no-prompt", "--prompt"}


@cache
def prefect_help(words: tuple[str, ...]) -> tuple[int, str]:
    prefect = Path(sys.executable).parent / "prefect"
    done = subprocess.run(
        [str(prefect), *words, "--help"], capture_output=True, text=True, timeout=120, cwd=ROOT, check=False
    )
    return done.returncode, done.stdout + done.stderr


def check_prefect_command(argv: list[str]) -> str | None:
    """None when `prefect <argv…>` is a command of the installed Prefect whose help lists every option used."""
    args = [a for a in argv if a not in PREFECT_GLOBAL_FLAGS]
    words: list[str] = []
    for arg in args:
        if arg.startswith("-"):
            break
        words.append(arg)
    options = [a.split("=", 1)[0] for a in args[len(words) :] if a.startswith("--")]
    code, text = prefect_help(tuple(words))
    if code != 0 or "Usage:" not in text:
        return f"`prefect {' '.join(words)}` is not a Prefect command: {text.strip()[:300]}"
    missing = [o for o in options if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", text)]
    if missing:
        return f"`prefect {' '.join(words)}`: option(s) not in its help: {', '.join(missing)}"
    return None


def check_command(argv: list[str], where: str) -> str | None:
    program = Path(argv[0]).name
    if program == "mairie":
        problem = check_mairie_command(argv[1:])
    elif program == "prefect":
        problem = check_prefect_command(argv[1:])
    else:
        return None
    return f"{where}: {problem}" if problem else None


# --------------------------------------------------------------------------------------------------
# prefect.yaml
# --------------------------------------------------------------------------------------------------


def test_prefect_yaml_validates_as_prefect_deploy_reads_it() -> None:
    # `prefect deploy` validates the file with this model and only *warns* (then skips every deployment)
    # when it does not validate: check it here instead.
    from prefect.cli.deploy._models import PrefectYamlModel

    model = PrefectYamlModel.model_validate(prefect_yaml())
    assert len(model.deployments) == len(prefect_yaml()["deployments"])
    for deployment in model.deployments:
        assert deployment.work_pool is not None and deployment.work_pool.name == pool_of(deployment.name), (
            deployment.name
        )
        for schedule in deployment.schedules or []:
            assert type(schedule).__name__ == "RawScheduleConfig", f"{deployment.name}: schedule not understood"


def test_prefect_yaml_declares_exactly_the_catalogue() -> None:
    declared = yaml_deployments()
    expected = {spec.name: spec for spec in catalogue()}
    assert set(declared) == set(expected), (
        f"only in prefect.yaml: {sorted(set(declared) - set(expected))}; "
        f"only in flows/deployments.py: {sorted(set(expected) - set(declared))}"
    )
    for name, spec in expected.items():
        deployment = declared[name]
        assert deployment["entrypoint"] == path_entrypoint(spec.entrypoint), name
        assert deployment.get("description") == spec.description, name
        assert deployment["work_pool"]["name"] == spec.pool, name
        if spec.concurrency_limit is not None:
            assert deployment["concurrency_limit"]["limit"] == spec.concurrency_limit, name
        schedules = deployment.get("schedules") or []
        if spec.cron is None and spec.interval_s is None:
            assert schedules == [], f"{name} has no schedule in the catalogue"
            continue
        assert len(schedules) == 1, f"{name}: one schedule expected, found {schedules}"
        schedule = schedules[0]
        assert schedule.get("timezone") == TIMEZONE, name
        if spec.cron is not None:
            assert schedule.get("cron") == spec.cron and "interval" not in schedule, name
        else:
            assert schedule.get("interval") == spec.interval_s and "cron" not in schedule, name


def test_prefect_yaml_schedules_are_valid_prefect_schedules() -> None:
    from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule

    for name, deployment in yaml_deployments().items():
        for schedule in deployment.get("schedules") or []:
            built: CronSchedule | IntervalSchedule
            if "cron" in schedule:
                built = CronSchedule(cron=schedule["cron"], timezone=schedule["timezone"])
            else:
                interval = timedelta(seconds=schedule["interval"])
                built = IntervalSchedule(interval=interval, timezone=schedule["timezone"])
            assert built.timezone == TIMEZONE, name


def test_every_entrypoint_is_an_importable_prefect_flow_taking_its_parameters() -> None:
    from prefect import Flow

    for name, deployment in yaml_deployments().items():
        path, _, function = deployment["entrypoint"].partition(":")
        assert (ROOT / path).is_file(), f"{name}: {path} does not exist"
        module_name = path.removesuffix(".py").replace("/", ".")
        module = importlib.import_module(module_name)
        assert Path(module.__file__ or "").resolve() == (ROOT / path).resolve(), f"{name}: {module_name} elsewhere"
        flow = getattr(module, function, None)
        assert isinstance(flow, Flow), f"{name}: {deployment['entrypoint']} is not a Prefect flow"
        accepted = set(inspect.signature(flow.fn).parameters)
        given = set(deployment.get("parameters") or {})
        for schedule in deployment.get("schedules") or []:
            given |= set(schedule.get("parameters") or {})
        assert given <= accepted, f"{name}: parameters {sorted(given - accepted)} not accepted by {function}"


def test_prefect_yaml_runs_from_the_installed_checkout_in_one_process_pool() -> None:
    document = prefect_yaml()
    assert not document.get("build") and not document.get("push")
    assert document["pull"] == [{"prefect.deployments.steps.set_working_directory": {"directory": INSTALL_DIR}}]
    for name, deployment in yaml_deployments().items():
        assert deployment["work_pool"]["name"] == pool_of(name), name
        assert "pull" not in deployment, f"{name} overrides the pull step"


# --------------------------------------------------------------------------------------------------
# systemd units
# --------------------------------------------------------------------------------------------------


def test_the_units_are_there() -> None:
    assert set(units()) >= REQUIRED_UNITS, f"missing: {sorted(REQUIRED_UNITS - set(units()))}"


def test_units_start_only_existing_commands() -> None:
    problems = []
    for name, unit in units().items():
        commands = exec_commands(unit)
        assert commands, f"{name} has no ExecStart"
        for argv in commands:
            assert argv[0].startswith(f"{VENV_BIN}/"), f"{name}: {argv[0]} is not from the installed venv"
            problem = check_command(argv, name)
            if problem:
                problems.append(problem)
    assert problems == []


def test_units_are_hardened_and_read_the_environment_file() -> None:
    values, _ = parse_env_example()
    data_dir = values["MAIRIE_DATA_DIR"]
    for name, unit in units().items():
        service = dict(unit["Service"])
        assert service.get("User") == "mairie" and service.get("Group") == "mairie", name
        assert service.get("NoNewPrivileges") == "yes", name
        assert service.get("ProtectSystem") == "strict", name
        assert service.get("PrivateTmp") == "yes", name
        assert data_dir in unit_values(unit, "Service", "ReadWritePaths"), f"{name}: {data_dir} not writable"
        assert unit_values(unit, "Service", "EnvironmentFile") == ["/etc/mairie-connectee/mairie.env"], name


def test_units_are_wired_in_order() -> None:
    all_units = units()

    def words(name: str, key: str) -> set[str]:
        return {w for v in unit_values(all_units[name], "Unit", key) for w in v.split()}

    migrate = dict(all_units["mairie-migrate.service"]["Service"])
    assert migrate.get("Type") == "oneshot" and migrate.get("RemainAfterExit") == "yes"
    for name in ("mairie-web.service", "mairie-worker.service"):
        assert "mairie-migrate.service" in words(name, "Requires") & words(name, "After"), name
        assert "mairie-prefect-server.service" in words(name, "After"), name
    assert "postgresql.service" in words("mairie-prefect-server.service", "After")
    assert "postgresql.service" in words("mairie-migrate.service", "After")
    for name in LONG_RUNNING_UNITS:
        assert unit_values(all_units[name], "Install", "WantedBy") == ["multi-user.target"], name
        assert dict(all_units[name]["Service"]).get("Restart") == "on-failure", name
    # Registering deployments again re-activates what operators paused: never at boot.
    assert "Install" not in all_units["mairie-prefect-deploy.service"]


def test_units_use_the_pool_and_the_prefect_file_of_prefect_yaml() -> None:
    all_units = units()
    # the templated worker: the instance names the pool (mairie-worker@mairie-campagne), one child run at a time
    campaign = exec_commands(all_units["mairie-worker@.service"])[-1]
    assert campaign[campaign.index("--pool") + 1] == "%i" and campaign[campaign.index("--limit") + 1] == "1"
    assert dict(all_units["mairie-worker@.service"]["Service"]).get("KillSignal") == "SIGINT"
    deploy_pre = unit_values(all_units["mairie-prefect-deploy.service"], "Service", "ExecStartPre")
    assert f"{VENV_BIN}/mairie pool" in deploy_pre  # creates the campaign's pool with its concurrency limit
    worker = exec_commands(all_units["mairie-worker.service"])[-1]
    assert worker[worker.index("--pool") + 1] == POOL
    # Prefect 3.8's worker ignores SIGTERM; SIGINT stops it and makes paused runs report a crash.
    assert dict(all_units["mairie-worker.service"]["Service"]).get("KillSignal") == "SIGINT"
    deploy_unit = all_units["mairie-prefect-deploy.service"]
    commands = exec_commands(deploy_unit)
    deploy = next(c for c in commands if c[0].endswith("/prefect") and "deploy" in c)
    # then the automation that emails the operators about failed runs (ExecStartPost)
    assert dict(deploy_unit["Service"])["ExecStartPost"].split()[1:] == ["prefect-alerts"]
    assert dict(deploy_unit["Service"])["WorkingDirectory"] == INSTALL_DIR
    assert (Path(INSTALL_DIR) / deploy[deploy.index("--prefect-file") + 1]) == Path(INSTALL_DIR) / "deploy/prefect.yaml"
    assert {"deploy", "--all"} <= set(deploy)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    # The installed paths do not exist here: point them at this checkout and its venv.
    venv_bin = str(Path(sys.executable).parent)
    for path in UNITS.glob("*.service"):
        text = path.read_text(encoding="utf-8").replace(VENV_BIN, venv_bin)
        text = text.replace(f"WorkingDirectory={INSTALL_DIR}\n", f"WorkingDirectory={ROOT}\n")
        (tmp_path / path.name).write_text(text, encoding="utf-8")
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *sorted(str(p) for p in tmp_path.glob("*.service"))],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = (done.stdout + done.stderr).splitlines()
    relevant = [line for line in output if str(tmp_path) in line or ".service" in line]
    assert done.returncode == 0 and relevant == [], done.stdout + done.stderr


# --------------------------------------------------------------------------------------------------
# compose.yaml and the Containerfile
# --------------------------------------------------------------------------------------------------


def test_compose_declares_the_services() -> None:
    services = compose()["services"]
    assert set(services) == {
        "postgres", "migrate", "prefect-server", "worker", "campaign-worker", "quote-worker", "web", "deployments"
    }  # fmt: skip
    for name, service in services.items():
        assert service.get("image") or service.get("build"), name
        for dependency, spec in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            assert spec["condition"] in {"service_started", "service_healthy", "service_completed_successfully"}
    for name in ("postgres", "prefect-server", "worker", "campaign-worker", "quote-worker", "web"):
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    assert services["migrate"]["restart"] == "no"
    for name in ("worker", "campaign-worker", "quote-worker", "web"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name
        assert services[name]["depends_on"]["prefect-server"]["condition"] == "service_healthy", name
    assert services["deployments"].get("profiles"), "registering deployments must not run at every `up`"


def test_compose_wiring_files_volumes_and_ports() -> None:
    document = compose()
    services = document["services"]
    named_volumes = set(document.get("volumes") or {})
    for name, service in services.items():
        for env_file in service.get("env_file") or []:
            assert env_file == "mairie.env", name
            assert (DEPLOY / "mairie.env.example").is_file()
        for volume in service.get("volumes") or []:
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                if source != "./grids":  # operator data, created on the host (docs/operations.md)
                    assert (DEPLOY / source).exists(), f"{name}: {source} missing"
            else:
                assert source in named_volumes, f"{name}: volume {source} not declared"
        for port in service.get("ports") or []:
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
        build = service.get("build")
        if build:
            context = (DEPLOY / build["context"]).resolve()
            assert context == DEPLOY.parent.resolve() and (context / build["dockerfile"]).is_file(), name
    data_mounts = {
        v.split(":")[1] for s in services.values() for v in s.get("volumes") or [] if v.startswith("mairie-data:")
    }
    assert data_mounts == {"/var/lib/mairie-connectee"}


def test_compose_runs_only_existing_commands() -> None:
    problems = []
    for name, service in compose()["services"].items():
        command = service.get("command")
        if not command:
            continue
        if command[:2] == ["sh", "-c"]:
            argvs = [shlex.split(part) for part in re.split(r"\|\||;|&&", command[2])]
            argvs = [argv for argv in argvs if argv and argv != ["true"]]
        else:
            argvs = [command]
        for argv in argvs:
            problem = check_command(argv, f"compose service {name}")
            if problem:
                problems.append(problem)
    worker = compose()["services"]["worker"]["command"]
    assert worker[worker.index("--pool") + 1] == POOL
    assert compose()["services"]["worker"].get("stop_signal") == "SIGINT"
    campaign = compose()["services"]["campaign-worker"]
    command = campaign["command"]
    assert command[command.index("--pool") + 1] == CAMPAIGN_POOL and command[command.index("--limit") + 1] == "1"
    assert campaign["stop_signal"] == "SIGINT" and campaign["deploy"]["replicas"] >= 2  # N workers: --scale
    assert problems == []


def test_containerfile() -> None:
    text = (DEPLOY / "Containerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    for package in ("libpango-1.0-0", "libpangoft2-1.0-0", "libharfbuzz-subset0"):
        assert package in text
    assert f"WORKDIR {INSTALL_DIR}" in text
    copies = re.findall(r"^COPY\s+(.+)$", text, re.M)
    # Never the whole deploy/ folder (a filled-in mairie.env may sit there) nor the whole context.
    assert not any(c.split()[0] in {".", "deploy", "deploy/", "./deploy"} for c in copies), copies
    assert re.search(r"^USER mairie$", text, re.M)


# --------------------------------------------------------------------------------------------------
# The environment file example
# --------------------------------------------------------------------------------------------------


def test_env_example_uses_only_real_setting_names_and_documents_them_all() -> None:
    from mairie.settings import ChorusSettings, IssuerIdentity, Settings

    values, documented = parse_env_example()
    mentioned = set(values) | documented
    unknown = []
    for name in sorted(n for n in mentioned if n.startswith("MAIRIE_")):
        field, _, nested = name.removeprefix("MAIRIE_").lower().partition("__")
        known = field in Settings.model_fields and (
            not nested
            or (Settings.model_fields[field].annotation is IssuerIdentity and nested in IssuerIdentity.model_fields)
            or (Settings.model_fields[field].annotation is ChorusSettings and nested in ChorusSettings.model_fields)
        )
        if not known:
            unknown.append(name)
    assert unknown == [], f"not settings of mairie/settings.py (silently ignored): {unknown}"

    issuers = {f for f, info in Settings.model_fields.items() if info.annotation is IssuerIdentity}
    missing = [
        f"MAIRIE_{f.upper()}"
        for f in Settings.model_fields
        if f not in issuers and f != "chorus" and f"MAIRIE_{f.upper()}" not in mentioned
    ]
    missing += [
        f"MAIRIE_CHORUS__{f.upper()}"
        for f in ChorusSettings.model_fields
        if f"MAIRIE_CHORUS__{f.upper()}" not in mentioned
    ]
    for issuer in sorted(issuers):
        missing += [
            f"MAIRIE_{issuer.upper()}__{f.upper()}"
            for f in IssuerIdentity.model_fields
            if f"MAIRIE_{issuer.upper()}__{f.upper()}" not in mentioned
        ]
    assert missing == [], f"settings not documented in deploy/mairie.env.example: {missing}"


SECRET_NAME = re.compile(r"SECRET|PASSWORD|API_KEY|AUTH_STRING|TOKEN|IBAN|BIC")


def test_env_example_secrets_are_placeholders() -> None:
    values, _ = parse_env_example()
    for name, value in values.items():
        if SECRET_NAME.search(name):
            assert PLACEHOLDER in value, f"{name} must be a {PLACEHOLDER} placeholder"
        credentials = re.search(r"://[^:/@\s]+:([^@\s]+)@", value)
        if credentials:
            assert PLACEHOLDER in credentials.group(1), f"{name}: a password in a URL must be a placeholder"
    assert values["MAIRIE_ENVIRONMENT"] == "production"
    assert values["PREFECT_SERVER_API_AUTH_STRING"] == values["PREFECT_API_AUTH_STRING"]


def _load_settings(monkeypatch: pytest.MonkeyPatch, values: dict[str, str]) -> Any:
    import os

    from mairie.settings import Settings

    for name in list(os.environ):
        if name.startswith("MAIRIE_"):
            monkeypatch.delenv(name)
    for name, value in values.items():
        if name.startswith("MAIRIE_"):
            monkeypatch.setenv(name, value)
    return Settings(_env_file=None)  # type: ignore[call-arg]


def test_env_example_as_shipped_cannot_start_production(monkeypatch: pytest.MonkeyPatch) -> None:
    values, _ = parse_env_example()
    with pytest.raises(ValidationError):
        _load_settings(monkeypatch, values)


def test_env_example_filled_in_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    from mairie import settings as module
    from tests.conftest import real_identities

    examples = {"SYNDICAT": module._syndicat(), "CDG62": module._cdg62(), "CDG59": module._cdg59()}
    real = real_identities()  # identifiers with valid keys that are not the development examples
    values, _ = parse_env_example()
    filled = {}
    for name, value in values.items():
        if PLACEHOLDER not in value:
            filled[name] = value
            continue
        issuer, _, field = name.removeprefix("MAIRIE_").partition("__")
        if field == "SIREN":
            filled[name] = getattr(examples[issuer], field.lower())
        elif field in {"SIRET", "IBAN", "BIC", "VAT_NUMBER"}:
            filled[name] = str(real[issuer.lower()][field.lower()])
        elif name == "MAIRIE_SECRET_KEY":
            filled[name] = secrets.token_hex(32)
        elif name == "MAIRIE_API_KEY":
            filled[name] = secrets.token_hex(16)
        else:
            filled[name] = value.replace(PLACEHOLDER, "rempli")
    loaded = _load_settings(monkeypatch, filled)
    assert loaded.environment == "production"
    assert loaded.smtp_starttls is True and loaded.smtp_port == 587
    assert loaded.mail_from == "Mairie Connectée <noreply@mairie-connectee.example>"
    assert str(loaded.data_dir) == values["MAIRIE_DATA_DIR"]
    assert loaded.database_url.startswith("postgresql+psycopg://")
    assert [i.code for i in loaded.issuers()] == ["LFN", "CDG62", "CDG59"]
    assert loaded.cdg62.vat_regime == "outside_scope" and loaded.cdg62.vat_number is None
    assert loaded.cdg59.vat_exemption_reason == "TVA non applicable — article 256 B du CGI"
    assert loaded.syndicat.department is None


# --------------------------------------------------------------------------------------------------
# Secrets
# --------------------------------------------------------------------------------------------------

SECRET_PATTERNS = [
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
    (re.compile(r"://[^\s:/@${}]+:(?!\$\{)(?![^@\s]*CHANGE-ME)[^@\s]+@"), "a password in a URL"),
    (
        re.compile(
            r"(?i)(secret|password|passwd|api[_-]?key|auth[_-]?string|token)\w*[\"']?\s*[:=]\s*[\"']?"
            r"(?!\$\{)(?![^\s\"']*CHANGE-ME)[A-Za-z0-9+/=_:.-]{8,}"
        ),
        "a credential assignment",
    ),
    (
        re.compile(r"(?<![A-Za-z0-9])(?=[A-Za-z0-9+/_-]*\d)(?=[A-Za-z0-9+/_-]*[a-zA-Z])[A-Za-z0-9+/_-]{40,}"),
        "a long random-looking token",
    ),
    (re.compile(r"\bFR\d{2}(?: ?\d{4}){5} ?\d{3}\b"), "an IBAN"),
]


def test_nothing_under_deploy_looks_like_a_real_secret() -> None:
    findings = []
    for path in sorted(p for p in DEPLOY.rglob("*") if p.is_file()):
        if path.name in {"mairie.env", ".env"}:  # an operator's filled-in copy, ignored by git
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            for pattern, what in SECRET_PATTERNS:
                if pattern.search(line):
                    findings.append(f"{path.relative_to(DEPLOY.parent)}:{number}: {what}: {line.strip()[:120]}")
    assert findings == []


def test_filled_in_environment_files_are_ignored_by_git() -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    for relative in ("deploy/mairie.env", "deploy/.env"):
        done = subprocess.run(["git", "check-ignore", "-q", relative], cwd=ROOT, check=False)
        assert done.returncode == 0, f"{relative} would not be ignored by git"


# --------------------------------------------------------------------------------------------------
# The operations guide names what deploy/ holds
# --------------------------------------------------------------------------------------------------


def test_operations_guide_names_every_unit_and_deployment() -> None:
    guide = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    missing = [name for name in [*sorted(REQUIRED_UNITS), *yaml_deployments()] if name not in guide]
    assert missing == [], f"not mentioned in docs/operations.md: {missing}"
