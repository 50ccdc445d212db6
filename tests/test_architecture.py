"""The package's shape holds: layers (import-linter, in `make lint`), SDK imports only in their layer, no import
cycle (imports inside functions count), no module over 500 lines and no function over 60 (tools/architecture.py).
The checker is also run on a small package built to break each rule, so it is shown to catch what it claims."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tools.architecture import check

ROOT = Path(__file__).resolve().parent.parent


def test_the_shared_package_has_no_architecture_finding() -> None:
    assert check(ROOT / "shared") == []


def test_import_linter_keeps_every_layer_contract() -> None:
    done = subprocess.run(  # noqa: S603 - our own tool, from the app venv
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    package = tmp_path / "broken"
    for name, source in {"__init__.py": "", **files}.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source), encoding="utf-8")
    return package


def test_the_checker_finds_cycles_through_function_imports_sdk_imports_and_long_code(tmp_path: Path) -> None:
    long_body = "\n".join(f"    x{i} = {i}" for i in range(61))
    package = _package(
        tmp_path,
        {
            "domain/__init__.py": "",
            "domain/a.py": "def late():\n    from broken.domain import b\n    return b\n",
            "domain/b.py": "from broken.domain import a\n",
            "domain/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from broken.domain import d\n",
            "domain/d.py": "from broken.domain import c\n",  # c -> d only for type checking: no cycle
            "services/__init__.py": "",
            "services/x.py": "def load():\n    from azure.cosmos.aio import CosmosClient\n    return CosmosClient\n",
            "storage/__init__.py": "",
            "storage/y.py": "from azure.cosmos import PartitionKey\nimport openai\n",
            "http/__init__.py": "",
            "http/z.py": f"def long():\n{long_body}\n",
            "big.py": "x = 1\n" * 501,
        },
    )
    findings = check(package)
    joined = "\n".join(findings)
    assert "import cycle: broken.domain.a -> broken.domain.b" in joined
    assert "broken.domain.c" not in joined
    assert "services/x.py:2: azure.cosmos.aio may only be imported in shared.storage" in joined
    assert "storage/y.py:2: openai may only be imported in shared.agents" in joined
    assert "storage/y.py:1" not in joined
    assert "http/z.py:1: long has 62 lines" in joined
    assert "big.py: 501 lines" in joined
    assert len(findings) == 5, findings
