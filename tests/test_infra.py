"""Offline checks of the infrastructure as code (infra/, azure.yaml, the azd hooks).

The Bicep CLI and azd cannot run here, so the Bicep is checked three ways:
- syntax: tree-sitter-bicep parses every file without an ERROR or MISSING node;
- policy: checkov's Bicep scan finds no failed check and no parse error, and every skip is an inline
  `// checkov:skip=CKV_...: reason` comment;
- structure: pycep-parser's AST is compared with what the code expects in Azure (shared/settings.py's
  SETTINGS_SPEC, shared/metadata.py's partition keys, the Python version running these tests).

checkov pins dependencies that clash with the app's (it downgrades `packaging`), so it lives in its own
virtualenv, `.venv-tools`; set CHECKOV=/path/to/checkov to use another one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import tree_sitter_bicep
import yaml
from pycep import BicepParser
from tree_sitter import Language, Node, Parser

ROOT = Path(__file__).resolve().parents[1]
INFRA = ROOT / "infra"
BICEP_FILES = sorted(INFRA.rglob("*.bicep"))
MAIN = INFRA / "main.bicep"
API = INFRA / "app" / "api.bicep"
COSMOS_APP = INFRA / "app" / "cosmos.bicep"
RBAC = INFRA / "app" / "rbac.bicep"
FUNCTION_HOST = INFRA / "core" / "host" / "functions-flex-consumption.bicep"
HOOK_SH = INFRA / "hooks" / "postprovision.sh"
HOOK_PS1 = INFRA / "hooks" / "postprovision.ps1"

# Settings the Bicep must set for the Functions host, the Python worker or the telemetry exporter rather
# than for our settings object (SETTINGS_SPEC may list some of them too; either way they must be set).
HOST_SETTINGS = {
    "PYTHON_ENABLE_INIT_INDEXING": "the Python worker indexes the v2 functions at start-up; "
    "azurefunctions-extensions-http-fastapi requires it",
    "APPLICATIONINSIGHTS_CONNECTION_STRING": "where the host and azure-monitor-opentelemetry send telemetry "
    "(instrumentation key and endpoints, no secret: see CONNECTION_STRING_WAIVER)",
    "AzureWebJobsStorage__accountName": "host storage (timer state, leases, keys) reached by account name, no key",
    "AzureWebJobsStorage__credential": "tells the host to authenticate to that account with a managed identity",
    "AzureWebJobsStorage__clientId": "picks the user-assigned identity for it (the app has no system identity)",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "makes telemetry carry the identity's token; the component "
    "has local auth disabled and drops unsigned telemetry",
}

# The one waiver of the "no connection string" rule: the Application Insights connection string holds
# the instrumentation key (an identifier) and the ingestion endpoints, not a secret. With DisableLocalAuth
# the component refuses anything not signed with an Entra ID token, so knowing it grants nothing.
CONNECTION_STRING_WAIVER = "APPLICATIONINSIGHTS_CONNECTION_STRING"

# Flex Consumption rejects these: the runtime comes from functionAppConfig.runtime.
FLEX_FORBIDDEN_SETTINGS = {"FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION"}

SECRET_MARKERS = (
    "listKeys",
    "listConnectionStrings",
    "AccountKey",
    "SharedAccessSignature",
    "sig=",
    "primaryMasterKey",
    "secondaryMasterKey",
    "connectionStrings",
)

# Built-in role definition ids are the same in every tenant; a typo would grant another role.
ROLE_NAMES = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": "Storage Blob Data Contributor",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
    "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd": "Cognitive Services OpenAI User",
    "00000000-0000-0000-0000-000000000002": "Cosmos DB Built-in Data Contributor",
}


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


# --- syntax: tree-sitter-bicep ------------------------------------------------------------------


def syntax_problems(source: bytes, name: str) -> list[str]:
    """Every ERROR or MISSING node of the Bicep source, as 'file:line:column: what'."""
    tree = Parser(Language(tree_sitter_bicep.language())).parse(source)
    problems: list[str] = []

    def visit(node: Node) -> None:
        if node.is_missing or node.is_error:
            row, column = node.start_point
            text = source[node.start_byte : node.end_byte].decode(errors="replace").splitlines()
            what = f"missing {node.type}" if node.is_missing else f"cannot parse {text[0][:60] if text else ''!r}"
            problems.append(f"{name}:{row + 1}:{column + 1}: {what}")
        if node.has_error:
            for child in node.children:
                visit(child)

    visit(tree.root_node)
    return problems


def test_infra_has_bicep_files() -> None:
    assert MAIN in BICEP_FILES
    assert len(BICEP_FILES) > 1


@pytest.mark.parametrize("path", BICEP_FILES, ids=rel)
def test_bicep_file_has_no_syntax_error(path: Path) -> None:
    problems = syntax_problems(path.read_bytes(), rel(path))
    assert not problems, "\n".join(problems)


def test_syntax_check_reports_file_and_line_of_an_error() -> None:
    broken = b"param ok string\nvar x = {\n  a: 'b'\nresource r 'Microsoft.Storage/storageAccounts@2023-05-01' = \n"
    problems = syntax_problems(broken, "broken.bicep")
    assert problems
    assert all(p.startswith("broken.bicep:") for p in problems)
    assert any(p.startswith(("broken.bicep:2:", "broken.bicep:3:", "broken.bicep:4:")) for p in problems), problems


# --- policy: checkov ----------------------------------------------------------------------------


def checkov_command() -> list[str]:
    configured = os.environ.get("CHECKOV")
    candidates = [
        Path(configured) if configured else None,
        ROOT / ".venv-tools" / "bin" / "checkov",
        Path(sys.executable).with_name("checkov"),
    ]
    for candidate in candidates:
        if candidate is not None and candidate.is_file():
            return [str(candidate)]
    found = shutil.which("checkov")
    if found:
        return [found]
    pytest.fail(
        "checkov is not installed: python3.11 -m venv .venv-tools && .venv-tools/bin/pip install checkov "
        "(or set CHECKOV to a checkov executable)"
    )


@pytest.fixture(scope="module")
def checkov_report() -> dict[str, Any]:
    command = [*checkov_command(), "--framework", "bicep", "--skip-download", "-o", "json", "-d", "infra"]
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180, check=False)
    # checkov exits 1 when a check fails and 0 on a parse error, so its output decides, not its exit code.
    try:
        report = json.loads(completed.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov printed no JSON (exit {completed.returncode}):\n{completed.stderr[-3000:]}")
    reports = report if isinstance(report, list) else [report]
    bicep = [r for r in reports if r.get("check_type") == "bicep"]
    assert len(bicep) == 1, f"expected one bicep report, got: {json.dumps(report)[:2000]}"
    return bicep[0]


def test_checkov_parses_every_bicep_file(checkov_report: dict[str, Any]) -> None:
    assert checkov_report["summary"]["parsing_errors"] == 0, checkov_report["results"].get("parsing_errors")
    assert not checkov_report["results"].get("parsing_errors")
    assert checkov_report["summary"]["resource_count"] > 0


def test_checkov_finds_no_failed_check(checkov_report: dict[str, Any]) -> None:
    failed = [
        f"{c['check_id']} {c['check_name']} at {c['file_path']}:{c['file_line_range'][0]} ({c['resource']})"
        for c in checkov_report["results"].get("failed_checks", [])
    ]
    assert not failed, "\n".join(failed)


SKIP_COMMENT = re.compile(r"//\s*checkov:skip=(CKV2?_[A-Z]+_\d+)(?::\s*(.*))?")


def inline_skips() -> dict[tuple[str, str], str]:
    """(file, check id) -> reason, for every inline checkov skip comment."""
    skips: dict[tuple[str, str], str] = {}
    for path in BICEP_FILES:
        for match in SKIP_COMMENT.finditer(path.read_text(encoding="utf-8")):
            skips[(rel(path), match.group(1))] = (match.group(2) or "").strip()
    return skips


def test_every_checkov_skip_is_inline_and_gives_a_reason(checkov_report: dict[str, Any]) -> None:
    skips = inline_skips()
    without_reason = [f"{file}: {check}" for (file, check), reason in skips.items() if len(reason) < 20]
    assert not without_reason, "skips need a reason after the colon:\n" + "\n".join(without_reason)
    skipped = {
        (f"infra{c['file_path']}" if c["file_path"].startswith("/") else c["file_path"], c["check_id"])
        for c in checkov_report["results"].get("skipped_checks", [])
    }
    assert skipped == set(skips), (
        "checkov's skipped checks and the inline skip comments differ "
        f"(only skipped: {skipped - set(skips)}, only commented: {set(skips) - skipped})"
    )


# --- structure: pycep-parser --------------------------------------------------------------------


@cache
def bicep(path: Path) -> dict[str, Any]:
    return BicepParser().parse(file_path=path)


@pytest.mark.parametrize("path", BICEP_FILES, ids=rel)
def test_bicep_file_builds_an_ast(path: Path) -> None:
    assert bicep(path)


def settings_spec() -> tuple[Any, ...]:
    try:
        from shared.config import SETTINGS_SPEC
    except ImportError as exc:
        pytest.fail(f"shared/settings.py must expose SETTINGS_SPEC: {exc}")
    return SETTINGS_SPEC


def object_keys(value: Any, variables: dict[str, Any]) -> dict[str, Any]:
    """Keys and values of a Bicep object expression: literals, union(), a ? b : c and variables."""
    if isinstance(value, str):
        assert value in variables, f"{value!r} is not a variable of {rel(API)}"
        return object_keys(variables[value]["value"], variables)
    if "function" in value:
        function = value["function"]
        assert function["type"] == "union", f"unexpected function {function['type']} in the app settings"
        merged: dict[str, Any] = {}
        for argument in function["parameters"].values():
            merged.update(object_keys(argument, variables))
        return merged
    if "operator" in value:
        operator = value["operator"]
        assert operator["type"] == "conditional", f"unexpected operator {operator['type']} in the app settings"
        operands = operator["operands"]
        return {**object_keys(operands["true_value"], variables), **object_keys(operands["false_value"], variables)}
    return dict(value)


def app_settings() -> dict[str, Any]:
    """Every app setting the Bicep can set on the function app (conditional ones included)."""
    api = bicep(API)
    return object_keys("appSettings", api["variables"])


def unconditional(config: dict[str, Any]) -> dict[str, Any]:
    """The body of a resource or module, whether or not it is declared `= if (condition) {...}`."""
    return config["config"] if set(config) == {"condition", "config"} else config


def condition(config: dict[str, Any]) -> Any:
    return config["condition"] if set(config) == {"condition", "config"} else None


def module(path: Path, module_path_suffix: str) -> dict[str, Any]:
    modules = [m for m in bicep(path)["modules"].values() if m["detail"]["path"].endswith(module_path_suffix)]
    assert len(modules) == 1, f"{rel(path)} should call {module_path_suffix} once"
    return modules[0]["config"]


def module_params(path: Path, module_path_suffix: str) -> dict[str, Any]:
    return unconditional(module(path, module_path_suffix))["params"]


def resources_of_type(resource_type: str) -> list[tuple[Path, str, dict[str, Any]]]:
    """(file, symbolic name, config) of every resource of that type the Bicep creates (not `existing`)."""
    found = []
    for path in BICEP_FILES:
        for name, resource in bicep(path).get("resources", {}).items():
            if resource["type"] == resource_type and not resource.get("existing"):
                found.append((path, name, unconditional(resource["config"])))
    return found


def test_app_settings_reach_the_function_app() -> None:
    assert module_params(API, "functions-flex-consumption.bicep")["appSettings"] == "appSettings"
    site = bicep(FUNCTION_HOST)["resources"]["functionApp"]["config"]
    loop = site["properties"]["siteConfig"]["appSettings"]
    assert loop["loop_type"]["detail"]["array_name"] == {
        "function": {"type": "items", "parameters": {"arg_1": "appSettings"}}
    }
    item = loop["loop_type"]["detail"]["item_name"]

    def field(name: str) -> dict[str, Any]:
        return {"operator": {"type": "property_accessor", "operands": {"operand_1": item, "operand_2": name}}}

    assert loop["config"] == {"name": field("key"), "value": field("value")}
    # A Microsoft.Web/sites/config 'appsettings' resource would replace that list wholesale.
    config_names = [c.get("name") for _, _, c in resources_of_type("Microsoft.Web/sites/config")]
    assert "appsettings" not in config_names


def test_bicep_sets_every_setting_the_code_needs_in_azure() -> None:
    required = {s.name for s in settings_spec() if s.azure == "bicep"} | set(HOST_SETTINGS)
    missing = required - set(app_settings())
    assert not missing, f"settings required in Azure (SETTINGS_SPEC azure='bicep' or host) not set: {sorted(missing)}"


def test_bicep_sets_only_settings_the_code_or_the_host_reads() -> None:
    spec = {s.name: s for s in settings_spec()}
    unknown = [name for name in app_settings() if name not in spec and name not in HOST_SETTINGS]
    assert not unknown, f"app settings neither in SETTINGS_SPEC nor on the host allow-list: {unknown}"
    local_only = [name for name in app_settings() if name in spec and spec[name].azure == "local"]
    assert not local_only, f"local-only settings (emulator keys) must never be set in Azure: {local_only}"
    assert not set(app_settings()) & FLEX_FORBIDDEN_SETTINGS


def test_app_settings_carry_no_key_or_connection_string() -> None:
    for name, value in app_settings().items():
        text = json.dumps(value)
        assert not [m for m in SECRET_MARKERS if m.lower() in text.lower()], f"{name} looks like a secret: {text}"
        assert not name.upper().endswith("_KEY"), name
        if name != CONNECTION_STRING_WAIVER:
            assert "CONNECTION_STRING" not in name.upper(), name


def test_no_bicep_file_reads_keys() -> None:
    for path in BICEP_FILES:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"\blist(Keys|ConnectionStrings|AccountSas|ServiceSas)\s*\(", text), rel(path)


def test_app_settings_use_the_identity() -> None:
    settings = app_settings()
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    assert settings["AzureWebJobsStorage__clientId"] == "identityClientId"
    assert settings["AZURE_CLIENT_ID"] == "identityClientId"
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "ClientId=${identityClientId};Authorization=AAD"
    assert settings["PYTHON_ENABLE_INIT_INDEXING"] == "1"


def test_principal_headers_are_trusted_only_with_app_service_authentication() -> None:
    api = bicep(API)
    trust = {"condition": "authEnabled", "true_value": "true", "false_value": "false"}
    assert app_settings()["TRUST_PRINCIPAL_HEADERS"] == {"operator": {"type": "conditional", "operands": trust}}
    assert api["variables"]["authEnabled"]["value"] == {
        "operator": {
            "type": "not",
            "operands": {"bool_value": {"function": {"type": "empty", "parameters": {"item_to_test": "authClientId"}}}},
        }
    }
    assert condition(module(API, "app-service-auth.bicep")) == "authEnabled"
    assert module_params(API, "app-service-auth.bicep")["excludedPaths"] == "anonymousPaths"


def test_authentication_leaves_exactly_the_anonymous_routes_open() -> None:
    host = json.loads((ROOT / "host.json").read_text(encoding="utf-8"))
    prefix = host.get("extensions", {}).get("http", {}).get("routePrefix", "api")
    from shared.http.routes import ROUTE_TABLE  # the triggers are registered from this table

    anonymous = [route.template for route in ROUTE_TABLE if route.public]
    assert "health" in anonymous
    # A route parameter is a wildcard segment for App Service Authentication (`dashboard/assets/{name}`: `.../*`).
    paths = sorted(f"/{prefix}/{re.sub(r'{[^}]+}', '*', r)}" for r in anonymous)
    assert sorted(bicep(API)["variables"]["anonymousPaths"]["value"]) == paths


def test_function_app_runs_the_tested_python_version() -> None:
    tested = f"{sys.version_info[0]}.{sys.version_info[1]}"
    params = module_params(API, "functions-flex-consumption.bicep")
    assert params["runtimeName"] == "python"
    assert params["runtimeVersion"] == "pythonVersion"
    assert bicep(API)["variables"]["pythonVersion"]["value"] == tested
    runtime = bicep(FUNCTION_HOST)["resources"]["functionApp"]["config"]["properties"]["functionAppConfig"]["runtime"]
    assert runtime == {"name": "runtimeName", "version": "runtimeVersion"}


def test_function_app_is_flex_consumption_with_identity_deployment() -> None:
    resources = bicep(FUNCTION_HOST)["resources"]
    assert resources["plan"]["config"]["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert resources["plan"]["config"]["properties"]["reserved"] is True
    site = resources["functionApp"]["config"]
    assert site["kind"] == "functionapp,linux"
    assert site["properties"]["httpsOnly"] is True
    config = site["properties"]["functionAppConfig"]
    assert config["deployment"]["storage"]["authentication"]["type"] == "UserAssignedIdentity"
    assert config["scaleAndConcurrency"] == {
        "instanceMemoryMB": "instanceMemoryMB",
        "maximumInstanceCount": "maximumInstanceCount",
        "triggers": {"http": {"perInstanceConcurrency": "httpPerInstanceConcurrency"}},
    }
    params = module_params(MAIN, "app/api.bicep")
    assert params["instanceMemoryMB"] == "functionInstanceMemoryMB"
    assert params["maximumInstanceCount"] == "functionMaximumInstanceCount"


def bounds(path: Path, name: str) -> tuple[Any, Any]:
    """(@minValue, @maxValue) of a Bicep int parameter."""
    parameter = bicep(path)["parameters"][name]
    assert parameter["type"] == "int", f"{rel(path)} {name}"
    decorators = {d["type"]: d["argument"] for d in parameter["decorators"]}
    return decorators.get("min_value"), decorators.get("max_value")


def test_http_per_instance_concurrency_is_a_bounded_parameter_that_reaches_the_app() -> None:
    # Flex Consumption takes 1..1000; left unset, a Python app gets 1: one instance per turn in flight.
    chain = (
        (MAIN, "functionHttpPerInstanceConcurrency"),
        (API, "httpPerInstanceConcurrency"),
        (FUNCTION_HOST, "httpPerInstanceConcurrency"),
    )
    for path, name in chain:
        assert bounds(path, name) == (1, 1000), f"{rel(path)} {name}"
    assert module_params(MAIN, "app/api.bicep")["httpPerInstanceConcurrency"] == "functionHttpPerInstanceConcurrency"
    passed = module_params(API, "functions-flex-consumption.bicep")["httpPerInstanceConcurrency"]
    assert passed == "httpPerInstanceConcurrency"
    config = bicep(FUNCTION_HOST)["resources"]["functionApp"]["config"]["properties"]["functionAppConfig"]
    assert config["scaleAndConcurrency"]["triggers"]["http"]["perInstanceConcurrency"] == "httpPerInstanceConcurrency"
    # One default, in main.bicep (and the parameters file), measured for one instance size: the modules take it.
    assert bicep(API)["parameters"]["httpPerInstanceConcurrency"]["default"] is None
    assert bicep(FUNCTION_HOST)["parameters"]["httpPerInstanceConcurrency"]["default"] is None
    main = bicep(MAIN)["parameters"]
    assert 1 < main["functionHttpPerInstanceConcurrency"]["default"] <= 1000
    assert main["functionInstanceMemoryMB"]["default"] == 2048, "the concurrency default was measured for 2,048 MB"


def test_cosmos_containers_match_the_code() -> None:
    try:
        from shared.storage import cosmos as metadata
    except ImportError as exc:
        pytest.fail(f"shared/storage/cosmos.py must expose the partition keys: {exc}")
    defaults = {s.name: s.default for s in settings_spec()}
    containers = bicep(COSMOS_APP)["variables"]["containers"]["value"]
    expected = {
        "turns": (defaults["COSMOS_TURNS_CONTAINER"], metadata.TURNS_PARTITION_KEY, "retentionDays"),
        "sessions": (defaults["COSMOS_SESSIONS_CONTAINER"], metadata.SESSIONS_PARTITION_KEY, "retentionDays"),
        "audit": (defaults["COSMOS_AUDIT_CONTAINER"], metadata.AUDIT_PARTITION_KEY, "auditRetentionDays"),
    }
    actual = {
        role: (c["name"], c["partitionKeyPath"], c["defaultTtl"]["operator"]["operands"]["operand_1"])
        for role, c in containers.items()
    }
    assert actual == expected
    for container in containers.values():
        assert container["defaultTtl"]["operator"]["type"] == "multiply"
        assert container["defaultTtl"]["operator"]["operands"]["operand_2"] == "secondsPerDay"
    assert bicep(COSMOS_APP)["variables"]["secondsPerDay"]["value"] == 86400
    passed = json.dumps(module_params(COSMOS_APP, "cosmos-nosql.bicep")["containers"])
    assert all(role in passed for role in expected)
    assert defaults["COSMOS_DATABASE"] == bicep(MAIN)["parameters"]["cosmosDatabaseName"]["default"]
    assert defaults["SNAPSHOT_CONTAINER"] == bicep(MAIN)["parameters"]["snapshotContainerName"]["default"]


def test_cosmos_indexing_policies_equal_the_ones_the_code_declares() -> None:
    """One declaration (shared/storage/indexing.py) for the local containers and Azure's: the Bicep must match it,
    and the module must pass it on to every container it creates."""
    from shared.storage.indexing import INDEXED_PATHS, indexing_policy

    containers = bicep(COSMOS_APP)["variables"]["containers"]["value"]
    assert {role: container["indexingPolicy"] for role, container in containers.items()} == {
        kind: indexing_policy(kind) for kind in INDEXED_PATHS
    }
    [(_, _, loop)] = resources_of_type("Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers")
    assert loop["loop_type"]["detail"] == {"item_name": "container", "array_name": "containers"}
    passed = loop["config"]["properties"]["resource"]["indexingPolicy"]["operator"]
    assert passed == {
        "type": "property_accessor",
        "operands": {"operand_1": "container", "operand_2": "indexingPolicy"},
    }


def test_cosmos_is_keyless_and_serverless_by_default() -> None:
    accounts = resources_of_type("Microsoft.DocumentDB/databaseAccounts")
    assert accounts
    for path, name, config in accounts:
        assert config["properties"]["disableLocalAuth"] is True, f"{rel(path)} {name}"
        assert config["properties"]["disableKeyBasedMetadataWriteAccess"] is True, f"{rel(path)} {name}"
    assert bicep(MAIN)["parameters"]["cosmosServerless"]["default"] is True


def test_storage_accounts_accept_only_entra_id_over_tls12() -> None:
    accounts = resources_of_type("Microsoft.Storage/storageAccounts")
    assert accounts
    for path, name, config in accounts:
        properties = config["properties"]
        assert properties["allowSharedKeyAccess"] is False, f"{rel(path)} {name}"
        assert properties["allowBlobPublicAccess"] is False, f"{rel(path)} {name}"
        assert properties["minimumTlsVersion"] == "TLS1_2", f"{rel(path)} {name}"
        assert properties["supportsHttpsTrafficOnly"] is True, f"{rel(path)} {name}"


def test_other_services_refuse_local_auth() -> None:
    for resource_type, key in (
        ("Microsoft.CognitiveServices/accounts", "disableLocalAuth"),
        ("Microsoft.Insights/components", "DisableLocalAuth"),
    ):
        resources = resources_of_type(resource_type)
        assert resources, resource_type
        for path, name, config in resources:
            assert config["properties"][key] is True, f"{rel(path)} {name}"


def role_assignments() -> list[tuple[str, str, str, str]]:
    """(comment above, symbolic name, scope, role id) of every role assignment in app/rbac.bicep."""
    text = RBAC.read_text(encoding="utf-8")
    variables = bicep(RBAC)["variables"]
    roles = {f"roles.{k}": v for k, v in variables["roles"]["value"].items()}
    roles["cosmosBuiltInDataContributor"] = variables["cosmosBuiltInDataContributor"]["value"]
    pattern = re.compile(
        r"((?:^//[^\n]*\n)+)resource (\w+) '(?:Microsoft\.Authorization/roleAssignments|"
        r"Microsoft\.DocumentDB/databaseAccounts/sqlRoleAssignments)@[^']+' = (?:if \([^)]*\) )?\{\n(.*?)^\}",
        re.MULTILINE | re.DOTALL,
    )
    found = []
    for comment, name, body in pattern.findall(text):
        role_ref = re.search(r"(roles\.\w+|cosmosBuiltInDataContributor)", body)
        scope = re.search(r"^  (?:scope|parent): (\w+)", body, re.MULTILINE)
        assert role_ref and scope, f"{name}: role or scope not found"
        found.append((comment, name, scope.group(1), roles[role_ref.group(1)]))
    declared = [
        n for n, r in bicep(RBAC)["resources"].items() if r["type"].endswith(("roleAssignments", "sqlRoleAssignments"))
    ]
    assert sorted(n for _, n, _, _ in found) == sorted(declared)
    return found


def test_role_assignments_are_named_by_guid_and_commented_with_the_role() -> None:
    for comment, name, _, role_id in role_assignments():
        assert role_id in ROLE_NAMES, f"{name}: unknown role definition {role_id}"
        assert ROLE_NAMES[role_id] in comment, f"{name}: the comment above must name the role {ROLE_NAMES[role_id]}"
        config = unconditional(bicep(RBAC)["resources"][name]["config"])
        assert config["name"]["function"]["type"] == "guid", f"{name}: name it with guid(...)"


def test_app_identity_gets_the_data_roles_it_needs() -> None:
    granted = {(scope, ROLE_NAMES[role]) for _, name, scope, role in role_assignments() if name.startswith("app")}
    assert granted == {
        ("hostStorage", "Storage Blob Data Owner"),
        ("hostStorage", "Storage Table Data Contributor"),
        ("snapshotStorage", "Storage Blob Data Contributor"),
        ("cosmos", "Cosmos DB Built-in Data Contributor"),
        ("applicationInsights", "Monitoring Metrics Publisher"),
        ("openAi", "Cognitive Services OpenAI User"),
    }
    user = {(scope, ROLE_NAMES[role]) for _, name, scope, role in role_assignments() if name.startswith("user")}
    assert user == {
        ("snapshotStorage", "Storage Blob Data Contributor"),
        ("cosmos", "Cosmos DB Built-in Data Contributor"),
        ("openAi", "Cognitive Services OpenAI User"),
    }


@pytest.mark.parametrize("path", BICEP_FILES, ids=rel)
def test_every_parameter_has_a_description(path: Path) -> None:
    undocumented = [
        name
        for name, parameter in bicep(path).get("parameters", {}).items()
        if not any(d["type"] == "description" and str(d["argument"]).strip() for d in parameter["decorators"])
    ]
    assert not undocumented, f"{rel(path)}: parameters without @description: {undocumented}"


def test_main_outputs_are_upper_snake_case() -> None:
    outputs = bicep(MAIN)["outputs"]
    assert outputs
    assert not [name for name in outputs if not re.fullmatch(r"[A-Z][A-Z0-9_]*", name)]


def test_main_follows_the_azd_layout() -> None:
    main = bicep(MAIN)
    assert main["globals"]["scope"]["value"] == "subscription"
    text = MAIN.read_text(encoding="utf-8")
    assert "var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))" in text
    assert main["resources"]["rg"]["config"]["tags"] == "tags"
    assert main["variables"]["tags"]["value"] == {"'azd-env-name'": "environmentName"}
    azure_yaml = yaml.safe_load((ROOT / "azure.yaml").read_text(encoding="utf-8"))
    assert azure_yaml["services"] == {
        "api": {"project": ".", "language": "python", "host": "function", "remoteBuild": True}
    }
    assert bicep(API)["parameters"]["serviceName"]["default"] == "api"
    assert "union(tags, { 'azd-service-name': serviceName })" in API.read_text(encoding="utf-8")


def test_parameters_file_passes_every_parameter_with_the_bicep_default() -> None:
    parameters = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    declared = bicep(MAIN)["parameters"]
    assert set(parameters) == set(declared)
    for name, parameter in declared.items():
        match = re.fullmatch(r"\$\{([A-Z][A-Z0-9_]*)(?:=(.*))?\}", parameters[name]["value"])
        assert match, f"{name}: expected ${{AZD_VARIABLE}} or ${{AZD_VARIABLE=default}}"
        if parameter.get("default") is None:
            assert match.group(1) in {"AZURE_ENV_NAME", "AZURE_LOCATION"}, name
            continue
        default = parameter["default"]
        expected = str(default).lower() if isinstance(default, bool) else str(default)
        assert (match.group(2) or "") == expected, f"{name}: parameters file default differs from main.bicep"


# --- azd hooks ----------------------------------------------------------------------------------

AZD_ENV = {
    "STORAGE_BLOB_ENDPOINT": "https://stdataabc.blob.core.windows.net/",
    "SNAPSHOT_CONTAINER": "conversations",
    "COSMOS_ENDPOINT": "https://cosmos-abc.documents.azure.com:443/",
    "COSMOS_DATABASE": "llmrouter",
    "COSMOS_TURNS_CONTAINER": "turns",
    "COSMOS_SESSIONS_CONTAINER": "sessions",
    "COSMOS_AUDIT_CONTAINER": "audit",
    "CLOUD_MODEL_ENDPOINT": "https://cog-abc.openai.azure.com/",
    "CLOUD_MODEL_NAME": "gpt-4o-mini",
    "FOUNDRY_MODEL_ENDPOINT": "",
}


def run_posix_hook(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a copy of postprovision.sh in tmp_path/infra/hooks, with a PATH that has no azd."""
    hooks = tmp_path / "infra" / "hooks"
    hooks.mkdir(parents=True)
    shutil.copy(HOOK_SH, hooks / HOOK_SH.name)
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool, target in (("python3", sys.executable), ("dirname", shutil.which("dirname"))):
        assert target, tool
        (tools / tool).symlink_to(target)
    sh = shutil.which("sh")
    assert sh
    return subprocess.run(
        [sh, str(hooks / HOOK_SH.name)],
        env={"PATH": str(tools), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.skipif(sys.platform == "win32", reason="the posix hook runs on macOS and Linux")
def test_posix_hook_points_local_settings_at_the_provisioned_resources(tmp_path: Path) -> None:
    existing = {
        "IsEncrypted": False,
        "Values": {
            "STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true",
            "COSMOS_KEY": "emulator-key",
            "COSMOS_CREATE_RESOURCES": "true",
            "CLOUD_MODEL_API_KEY": "old-key",
            "LOCAL_MODEL_ENDPOINT": "http://127.0.0.1:11434/v1",
            "APIM_MODEL_API_KEY": "subscription-key",
        },
        "Host": {"CORS": "*"},
    }
    (tmp_path / "local.settings.json").write_text(json.dumps(existing), encoding="utf-8")

    completed = run_posix_hook(tmp_path, AZD_ENV)

    assert completed.returncode == 0, completed.stderr
    written = json.loads((tmp_path / "local.settings.json").read_text(encoding="utf-8"))
    assert written["IsEncrypted"] is False
    assert written["Host"] == {"CORS": "*"}
    assert written["Values"] == {
        "FUNCTIONS_WORKER_RUNTIME": "python",
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        "PYTHON_ENABLE_INIT_INDEXING": "1",
        **{k: v for k, v in AZD_ENV.items() if v},
        "LOCAL_MODEL_ENDPOINT": "http://127.0.0.1:11434/v1",
        "APIM_MODEL_API_KEY": "subscription-key",
    }
    assert (tmp_path / "local.settings.json").stat().st_mode & 0o077 == 0


@pytest.mark.skipif(sys.platform == "win32", reason="the posix hook runs on macOS and Linux")
def test_posix_hook_refuses_an_unprovisioned_environment(tmp_path: Path) -> None:
    env = {k: v for k, v in AZD_ENV.items() if k != "COSMOS_ENDPOINT"}

    completed = run_posix_hook(tmp_path, env)

    assert completed.returncode != 0
    assert "COSMOS_ENDPOINT" in completed.stderr
    assert not (tmp_path / "local.settings.json").exists()


def test_hooks_manage_the_same_settings_and_main_outputs_them() -> None:
    sh_keys = set(re.findall(r'"([A-Z][A-Z0-9_]+)"', HOOK_SH.read_text(encoding="utf-8")))
    ps1_keys = set(re.findall(r"'([A-Z][A-Z0-9_]+)'", HOOK_PS1.read_text(encoding="utf-8")))
    assert sh_keys == ps1_keys
    assert {"FUNCTIONS_WORKER_RUNTIME", "PYTHON_ENABLE_INIT_INDEXING", "COSMOS_KEY"} <= sh_keys
    outputs = set(bicep(MAIN)["outputs"])
    needed = {k for k in AZD_ENV if k.startswith(("STORAGE_", "SNAPSHOT_", "COSMOS_", "CLOUD_"))}
    assert needed <= outputs
    hooks = yaml.safe_load((ROOT / "azure.yaml").read_text(encoding="utf-8"))["hooks"]["postprovision"]
    assert (ROOT / hooks["posix"]["run"]).resolve() == HOOK_SH
    assert (ROOT / hooks["windows"]["run"]).resolve() == HOOK_PS1
    assert hooks["windows"]["shell"] == "pwsh"


@pytest.mark.skipif(shutil.which("pwsh") is None, reason="PowerShell 7 (pwsh) is not installed")
def test_windows_hook_points_local_settings_at_the_provisioned_resources(tmp_path: Path) -> None:
    hooks = tmp_path / "infra" / "hooks"
    hooks.mkdir(parents=True)
    shutil.copy(HOOK_PS1, hooks / HOOK_PS1.name)
    env = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "USERPROFILE", "SYSTEMROOT"}}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if not (Path(p) / "azd").exists())
    completed = subprocess.run(
        [str(shutil.which("pwsh")), "-NoProfile", "-File", str(hooks / HOOK_PS1.name)],
        env={**env, **AZD_ENV},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    written = json.loads((tmp_path / "local.settings.json").read_text(encoding="utf-8"))
    assert written["Values"]["COSMOS_ENDPOINT"] == AZD_ENV["COSMOS_ENDPOINT"]
    assert written["Values"]["AzureWebJobsStorage"] == "UseDevelopmentStorage=true"
    assert "FOUNDRY_MODEL_ENDPOINT" not in written["Values"]
