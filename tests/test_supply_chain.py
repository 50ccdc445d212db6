"""Supply-chain and code checks, run by `make test`. Each one is a gate: a finding that is not waived with a reason
fails the run, and a test next to it proves the gate can fail.

- Vulnerability audit (pip-audit) of what the requirement files resolve to: the packages installed in `.venv`
  (requirements.txt + requirements-dev.txt) and `.venv-tools` (requirements-tools.txt), after checking that those
  environments really satisfy the files. pip-audit needs its vulnerability service (PyPI's JSON API or OSV); when
  it cannot reach it, it reports each package as "could not be audited" and still exits 0 with "No known
  vulnerabilities found". The test does not take that for a pass: it is skipped with a loud reason (vulnerability
  database unreachable: audit not performed), as SECURITY.md states.
- Ruff's security rules (`S`) on the deployed code (`shared/`, `function_app.py`); a waiver is inline,
  `# noqa: S608 - reason`, and a noqa without a reason is itself a finding.
- A secrets scan (detect-secrets, offline: no verification calls, inline allowlist pragmas disabled) of every file
  git tracks or would track. The emulators' public development keys and a few test dummies are waived, each with
  its reason, in security-waivers.toml.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import os
import re
import secrets
import subprocess
import sys
import tomllib
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parent.parent
WAIVERS = REPO / "security-waivers.toml"
BIN = Path(sys.executable).parent
ENVIRONMENTS = {".venv": ("requirements.txt", "requirements-dev.txt"), ".venv-tools": ("requirements-tools.txt",)}
DEPLOYED_CODE = ("shared", "function_app.py")
UNREACHABLE = "vulnerability database unreachable: audit not performed"

pytestmark = pytest.mark.timeout(180)


def tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{name} is not installed in {BIN}: run `make setup` (it is in requirements-dev.txt)")
    return str(path)


# ---- waivers -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VulnerabilityWaiver:
    id: str
    reason: str
    package: str = ""


@dataclass(frozen=True)
class SecretWaiver:
    reason: str
    what: str = ""
    hashed_secret: str | None = None
    line_regex: str | None = None
    paths: tuple[str, ...] = ()

    def matches(self, finding: Mapping[str, Any], line: str) -> bool:
        if self.paths and not any(fnmatch.fnmatch(finding["path"], pattern) for pattern in self.paths):
            return False
        if self.hashed_secret is not None:
            return bool(finding["hashed_secret"] == self.hashed_secret)
        return self.line_regex is not None and re.search(self.line_regex, line) is not None


@dataclass
class Waivers:
    vulnerabilities: list[VulnerabilityWaiver] = field(default_factory=list)
    secrets: list[SecretWaiver] = field(default_factory=list)


def load_waivers(text: str) -> Waivers:
    """Parse the waiver file; every entry must say why (a waiver without a reason is refused)."""
    data = tomllib.loads(text)
    unknown = set(data) - {"vulnerability", "secret"}
    if unknown:
        raise ValueError(f"unknown waiver kinds: {sorted(unknown)}")
    waivers = Waivers()
    for entry in data.get("vulnerability", []):
        if not str(entry.get("reason", "")).strip() or not str(entry.get("id", "")).strip():
            raise ValueError(f"a vulnerability waiver needs an id and a reason: {entry}")
        waivers.vulnerabilities.append(VulnerabilityWaiver(entry["id"], entry["reason"], entry.get("package", "")))
    for entry in data.get("secret", []):
        if not str(entry.get("reason", "")).strip():
            raise ValueError(f"a secret waiver needs a reason: {entry}")
        if ("hashed_secret" in entry) == ("line_regex" in entry):
            raise ValueError(f"a secret waiver needs exactly one of hashed_secret and line_regex: {entry}")
        if set(entry) - {"reason", "what", "hashed_secret", "line_regex", "paths"}:
            raise ValueError(f"unknown keys in a secret waiver: {entry}")
        waivers.secrets.append(
            SecretWaiver(
                reason=entry["reason"],
                what=entry.get("what", ""),
                hashed_secret=entry.get("hashed_secret"),
                line_regex=entry.get("line_regex"),
                paths=tuple(entry.get("paths", ())),
            )
        )
    return waivers


def test_every_waiver_names_its_reason_and_one_without_is_refused() -> None:
    waivers = load_waivers(WAIVERS.read_text())
    assert waivers.secrets, "the emulators' public keys at least must be waived explicitly"
    with pytest.raises(ValueError, match="reason"):
        load_waivers('[[secret]]\nhashed_secret = "0000"\nreason = "  "\n')
    with pytest.raises(ValueError, match="reason"):
        load_waivers('[[vulnerability]]\nid = "GHSA-1234"\n')


# ---- vulnerability audit -----------------------------------------------------------------------------------------


def requirements_of(path: Path) -> list[Requirement]:
    """The requirements a file names, following `-r other.txt`."""
    found: list[Requirement] = []
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith(("-r ", "--requirement ")):
            found += requirements_of(path.parent / line.split(maxsplit=1)[1])
        elif not line.startswith("-"):
            found.append(Requirement(line))
    return found


def installed_versions(python: Path) -> dict[str, str]:
    """Every distribution installed in the environment of `python`: canonical name -> version."""
    script = (
        "import importlib.metadata as m, json;"
        "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions() if d.metadata['Name']}))"
    )
    output = subprocess.run([str(python), "-c", script], check=True, capture_output=True, text=True).stdout
    return {canonicalize_name(name): version for name, version in json.loads(output).items()}


def unsatisfied(requirements: Iterable[Requirement], installed: Mapping[str, str]) -> list[str]:
    problems = []
    for requirement in requirements:
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        version = installed.get(canonicalize_name(requirement.name))
        if version is None or not requirement.specifier.contains(version, prereleases=True):
            problems.append(f"{requirement} (installed: {version})")
    return problems


@dataclass
class AuditVerdict:
    findings: list[str] = field(default_factory=list)  # vulnerabilities not waived
    unaudited: list[str] = field(default_factory=list)  # dependencies the service could not check
    audited: int = 0


def judge_audit(report: Mapping[str, Any], waived: set[str]) -> AuditVerdict:
    """What a pip-audit JSON report means for the gate. A vulnerability is waived when its id or an alias is."""
    verdict = AuditVerdict()
    for dependency in report.get("dependencies", []):
        name = dependency.get("name", "?")
        if "skip_reason" in dependency:
            verdict.unaudited.append(f"{name}: {dependency['skip_reason']}")
            continue
        verdict.audited += 1
        for vulnerability in dependency.get("vulns", []):
            ids = {vulnerability["id"], *vulnerability.get("aliases", [])}
            if ids & waived:
                continue
            fixes = ", ".join(vulnerability.get("fix_versions", [])) or "none yet"
            verdict.findings.append(f"{name} {dependency.get('version')}: {vulnerability['id']} (fixed in {fixes})")
    return verdict


def start_audit(pins: Mapping[str, str], path: Path, waived: Iterable[str]) -> subprocess.Popen[str]:
    """pip-audit over exact pins (no resolution, no pip: the environment is the resolution)."""
    path.write_text("".join(f"{name}=={version}\n" for name, version in sorted(pins.items())))
    command = [tool("pip-audit"), "-r", str(path), "--no-deps", "--disable-pip", "-f", "json"]
    command += ["--progress-spinner", "off", "--timeout", "10"]
    for vulnerability_id in sorted(waived):
        command += ["--ignore-vuln", vulnerability_id]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish_audit(process: subprocess.Popen[str]) -> dict[str, Any]:
    stdout, stderr = process.communicate(timeout=150)
    if process.returncode not in (0, 1):  # 1: vulnerabilities found (the JSON still says which)
        raise AssertionError(f"pip-audit failed ({process.returncode}): {stderr[-2000:]}")
    report: dict[str, Any] = json.loads(stdout)
    return report


def test_the_pinned_requirements_have_no_known_vulnerability_that_is_not_waived(tmp_path: Path) -> None:
    waivers = load_waivers(WAIVERS.read_text())
    waived = {waiver.id for waiver in waivers.vulnerabilities}
    running = {}
    for environment, files in ENVIRONMENTS.items():
        python = REPO / environment / "bin" / "python"
        if not python.exists():
            pytest.fail(f"{environment} is missing: run `make setup` (it is built from {', '.join(files)})")
        installed = installed_versions(python)
        problems = unsatisfied([req for name in files for req in requirements_of(REPO / name)], installed)
        assert not problems, f"{environment} does not match {files}; run `make setup`: {problems}"
        running[environment] = start_audit(installed, tmp_path / f"{environment.strip('.')}-pins.txt", waived)

    verdicts = {environment: judge_audit(finish_audit(process), waived) for environment, process in running.items()}
    findings = [f"{env}: {finding}" for env, verdict in verdicts.items() for finding in verdict.findings]
    assert not findings, "known vulnerabilities (fix, or waive in security-waivers.toml with a reason):\n" + (
        "\n".join(findings)
    )
    unaudited = [item for verdict in verdicts.values() for item in verdict.unaudited]
    if unaudited:
        total = sum(verdict.audited + len(verdict.unaudited) for verdict in verdicts.values())
        pytest.skip(
            f"{UNREACHABLE}: pip-audit could not audit {len(unaudited)} of {total} dependencies "
            f"(first: {unaudited[0]}); see SECURITY.md"
        )


SAMPLE_REPORT = {
    "dependencies": [
        {
            "name": "jinja2",
            "version": "2.4.1",
            "vulns": [
                {
                    "id": "PYSEC-2019-217",
                    "fix_versions": ["2.10.1"],
                    "aliases": ["CVE-2019-10906", "GHSA-462w-v97r-4m45"],
                    "description": "sandbox escape",
                }
            ],
        },
        {"name": "requests", "version": "2.32.3", "vulns": []},
        {"name": "private-package", "skip_reason": "Dependency not found on PyPI and could not be audited"},
    ],
    "fixes": [],
}


def test_the_audit_gate_fails_on_a_vulnerability_unless_waived_and_never_counts_an_unaudited_package() -> None:
    verdict = judge_audit(SAMPLE_REPORT, waived=set())
    assert verdict.findings == ["jinja2 2.4.1: PYSEC-2019-217 (fixed in 2.10.1)"]
    assert verdict.unaudited == ["private-package: Dependency not found on PyPI and could not be audited"]
    assert verdict.audited == 2
    assert judge_audit(SAMPLE_REPORT, waived={"GHSA-462w-v97r-4m45"}).findings == []  # an alias waives it too


def test_a_known_vulnerable_pin_is_never_passed_silently(tmp_path: Path) -> None:
    # The real tool on a pin with published advisories: either it reports them, or (no network) it says that it
    # could not audit the pin. "No known vulnerabilities" with nothing audited is what the gate refuses to trust.
    verdict = judge_audit(finish_audit(start_audit({"jinja2": "2.4.1"}, tmp_path / "pins.txt", ())), set())
    assert verdict.findings or verdict.unaudited
    assert not (verdict.audited and not verdict.findings)


# ---- ruff's security rules ---------------------------------------------------------------------------------------

NOQA = re.compile(r"#\s*noqa:\s*(?P<codes>[A-Z]+[0-9]+(?:\s*,\s*[A-Z]+[0-9]+)*)(?P<rest>.*)$")
REASON = re.compile(r"^\s*-+\s*\S")


def configured_security_ignores() -> list[str]:
    """S rules the project ignores in pyproject.toml; each must carry a reason comment on its line."""
    text = (REPO / "pyproject.toml").read_text()
    ignores = [code for code in tomllib.loads(text)["tool"]["ruff"]["lint"].get("ignore", []) if code.startswith("S")]
    for code in ignores:
        assert re.search(rf'"{code}",?\s*#\s*\S', text), f"pyproject.toml ignores {code} without a reason comment"
    return ignores


def security_findings(paths: Iterable[Path], ignores: Iterable[str] = ()) -> list[str]:
    """Ruff `S` findings plus `noqa` comments that silence an S rule without giving a reason."""
    paths = list(paths)
    command = [tool("ruff"), "check", "--isolated", "--no-cache", "--select", "S", "--output-format", "json"]
    if ignores:
        command += ["--ignore", ",".join(ignores)]
    result = subprocess.run([*command, *map(str, paths)], capture_output=True, text=True, cwd=REPO)
    if result.returncode not in (0, 1):
        raise AssertionError(f"ruff failed: {result.stderr}")
    findings = [
        f"{item['filename']}:{item['location']['row']}: {item['code']} {item['message']}"
        for item in json.loads(result.stdout or "[]")
    ]
    files = [p for path in paths for p in ([path] if path.is_file() else sorted(path.rglob("*.py")))]
    for file in files:
        for number, line in enumerate(file.read_text().splitlines(), start=1):
            match = NOQA.search(line)
            if match is None:
                continue
            codes = [code.strip() for code in match.group("codes").split(",")]
            if any(re.fullmatch(r"S\d+", code) for code in codes) and not REASON.match(match.group("rest")):
                findings.append(f"{file}:{number}: noqa for {', '.join(codes)} without a reason ('# noqa: S... - why')")
    return findings


def test_the_deployed_code_passes_ruffs_security_rules_with_reasoned_waivers_only() -> None:
    findings = security_findings([REPO / path for path in DEPLOYED_CODE], configured_security_ignores())
    assert not findings, "\n".join(findings)


def test_the_security_lint_gate_catches_a_violation_and_a_noqa_without_reason(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import subprocess\n\n\n"
        "def run(command: str) -> None:\n"
        "    subprocess.call(command, shell=True)\n"
        "    eval(command)  # noqa: S307\n"
    )
    found = security_findings([tmp_path])
    assert any(" S602 " in item for item in found), found  # shell=True
    assert any("noqa for S307 without a reason" in item for item in found), found
    bad.write_text("def run(command: str) -> None:\n    eval(command)  # noqa: S307 - a test of the gate\n")
    assert security_findings([tmp_path]) == []


# ---- secrets -----------------------------------------------------------------------------------------------------


def tree_files() -> list[str]:
    """Every file git tracks or would track (untracked but not ignored), node_modules excluded."""
    try:
        output = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            check=True,
            capture_output=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.fail(f"the secrets scan needs a git checkout: {exc}")
    names = [name for name in output.decode().split("\0") if name]
    return [name for name in names if not name.startswith("node_modules/") and (REPO / name).is_file()]


def scan_secrets(files: Iterable[str], root: Path) -> list[dict[str, Any]]:
    """detect-secrets findings (offline; inline `pragma: allowlist secret` does not count: waivers need reasons)."""
    files = list(files)
    command = [tool("detect-secrets"), "scan", "-n"]
    command += ["--disable-filter", "detect_secrets.filters.allowlist.is_line_allowlisted"]
    result = subprocess.run([*command, *files], cwd=root, capture_output=True, text=True, check=True)
    findings = []
    for path, items in json.loads(result.stdout)["results"].items():
        for item in items:
            findings.append(
                {
                    "path": path,
                    "line": item["line_number"],
                    "type": item["type"],
                    "hashed_secret": item["hashed_secret"],
                }
            )
    return findings


def unwaived(findings: Iterable[Mapping[str, Any]], waivers: Iterable[SecretWaiver], root: Path) -> list[str]:
    waivers = list(waivers)
    used: set[SecretWaiver] = set()
    problems = []
    for finding in findings:
        lines = (root / finding["path"]).read_text(errors="replace").splitlines()
        line = lines[finding["line"] - 1] if 0 < finding["line"] <= len(lines) else ""
        matched = [waiver for waiver in waivers if waiver.matches(finding, line)]
        used.update(matched)
        if not matched:
            problems.append(
                f"{finding['path']}:{finding['line']}: {finding['type']} (hashed_secret {finding['hashed_secret']})"
            )
    for waiver in waivers:
        if waiver not in used:
            warnings.warn(f"secret waiver matches nothing any more, remove it: {waiver.what}", stacklevel=1)
    return problems


def test_the_tree_holds_no_secret_but_the_waived_public_and_dummy_ones() -> None:
    waivers = load_waivers(WAIVERS.read_text()).secrets
    problems = unwaived(scan_secrets(tree_files(), REPO), waivers, REPO)
    assert not problems, (
        "possible secrets (remove them; if one is a public or dummy value, waive it in security-waivers.toml "
        "with a reason):\n" + "\n".join(problems)
    )


def test_the_secrets_gate_catches_a_planted_secret_and_waives_only_what_is_listed(tmp_path: Path) -> None:
    from tools.emulators import AZURITE_KEY

    account_key = base64.b64encode(secrets.token_bytes(64)).decode()  # a fresh "real-looking" key, never stored
    (tmp_path / "settings.py").write_text(
        "CONNECTION = 'DefaultEndpointsProtocol=https;AccountName=prodaccount;"
        + "Account"
        + f"Key={account_key};EndpointSuffix=core.windows.net'\n"
    )
    (tmp_path / "emulator.py").write_text(f"KEY = '{AZURITE_KEY}'\n")  # the waived public key, anywhere
    files = sorted(os.listdir(tmp_path))
    findings = scan_secrets(files, tmp_path)
    waivers = load_waivers(WAIVERS.read_text()).secrets
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # most waivers match nothing in this small tree
        problems = unwaived(findings, waivers, tmp_path)
    assert any(problem.startswith("settings.py:1:") for problem in problems), problems
    assert not any(problem.startswith("emulator.py") for problem in problems), problems
