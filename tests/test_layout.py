"""The architecture's import direction, documented settings and commands, module docstrings,
and the pathology fixtures' index."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from archiver import config
from web.cli import main   # the archiver command, with web's `serve` added

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "archiver"
README = ROOT / "README.md"
MESSAGES = ROOT / "fixtures" / "messages"

# Stages are pure: they may import these project modules (and the stdlib and third parties).
STAGES = ("archiver.parse", "archiver.clean", "archiver.thread", "archiver.charsets", "archiver.htmltext")
STAGE_MAY_IMPORT = {"archiver.models", "archiver.ids", "archiver.errors", "archiver.charsets",
                    "archiver.htmltext"}
NEVER_FROM_STAGES = {"archiver.store", "archiver.pipeline", "archiver.query", "archiver.cli",
                     "archiver.schema", "archiver.export"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(folder: Path) -> dict[str, Path]:
    return {module_name(p): p for p in sorted(folder.rglob("*.py")) if "__pycache__" not in p.parts}


def imports(path: Path) -> set[str]:
    """Return the absolute names a module imports (relative imports resolved)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module
            if node.module:
                found.add(prefix)
            # "from . import charsets" imports a module; "from .models import Message", a name
            found.update(f"{prefix}.{alias.name}" for alias in node.names)
    return found


def project_imports(path: Path) -> set[str]:
    return {name for name in imports(path) if name.split(".")[0] in ("archiver", "web")}


ARCHIVER = modules(PACKAGE)


def test_the_resolver_sees_relative_imports():
    assert "archiver.charsets" in project_imports(PACKAGE / "parse.py")
    assert "archiver.errors" in project_imports(PACKAGE / "sources" / "mbox.py")
    assert "archiver.sources.mbox" in project_imports(PACKAGE / "sources" / "__init__.py")
    # The check below would see a stage importing the store: pipeline does, and is caught.
    assert {"archiver.store", "archiver.store.Store"} <= project_imports(PACKAGE / "pipeline.py")


@pytest.mark.parametrize("name", sorted(ARCHIVER))
def test_archiver_never_imports_web(name):
    assert not {i for i in imports(ARCHIVER[name]) if i == "web" or i.startswith("web.")}


WEB = modules(ROOT / "web")
# The front end reads through the facade; web.cli adds `serve` to the archiver command.
WEB_MAY_IMPORT = {"archiver.query", "archiver.export", "archiver.models", "archiver.errors",
                  "archiver.config", "archiver.ids", "archiver.cli", "archiver.masking"}


@pytest.mark.parametrize("name", sorted(WEB))
def test_web_reads_only_through_the_facade(name):
    found = {i for i in project_imports(WEB[name]) if i.startswith("archiver.")}
    bad = {i for i in found if not any(i == m or i.startswith(m + ".") for m in WEB_MAY_IMPORT)}
    assert bad == set(), f"{name} imports {sorted(bad)}"


STAGE_MODULES = sorted(n for n in ARCHIVER if n in STAGES or n.startswith("archiver.sources"))


def test_stage_list_is_complete():
    assert set(STAGES) <= set(ARCHIVER)
    assert {"archiver.sources", "archiver.sources.mbox", "archiver.sources.pipermail"} <= set(STAGE_MODULES)


@pytest.mark.parametrize("name", STAGE_MODULES)
def test_stages_import_only_models_ids_errors_and_helpers(name):
    found = project_imports(ARCHIVER[name])
    # Names imported from an allowed module ("from .models import Message") are fine too.
    allowed = {i for i in found if any(i == m or i.startswith(m + ".") for m in STAGE_MAY_IMPORT)}
    if name.startswith("archiver.sources"):
        allowed |= {i for i in found if i == "archiver.sources" or i.startswith("archiver.sources.")}
    assert found - allowed == set(), f"{name} imports {sorted(found - allowed)}"
    assert not {i for i in found for bad in NEVER_FROM_STAGES if i == bad or i.startswith(bad + ".")}


@pytest.mark.parametrize("name", sorted(modules(PACKAGE)) + sorted(modules(ROOT / "web")))
def test_every_module_starts_with_a_one_line_docstring(name):
    path = ARCHIVER.get(name) or modules(ROOT / "web")[name]
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    assert doc, f"{name} has no module docstring"
    first = doc.splitlines()[0]
    assert first.strip() and len(first) <= 110, f"{name}: {first!r}"


def _readme() -> str:
    if not README.is_file():
        pytest.skip("README.md does not exist yet: settings and commands cannot be checked against it")
    return README.read_text(encoding="utf-8")


@pytest.mark.parametrize("setting", config.SETTINGS, ids=lambda s: s.name)
def test_every_setting_is_documented_in_the_readme(setting):
    text = _readme()
    assert f"`{setting.name}`" in text, f"setting {setting.name} is missing from README.md"
    assert setting.env in text, f"{setting.env} is missing from README.md"


@pytest.mark.parametrize("command", sorted(main.commands))
def test_every_command_is_documented_in_the_readme(command):
    assert f"archiver {command}" in _readme(), f"command {command!r} is missing from README.md"


# --- fixtures/messages index -----------------------------------------------------------------------
def _index() -> dict[str, str]:
    """Map each file named in fixtures/messages/README.md to the rest of its line."""
    rows = {}
    for line in (MESSAGES / "README.md").read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\|\s*`([^`]+)`\s*\|(.*)$", line)
        if match:
            rows[match.group(1)] = match.group(2)
    return rows


def test_every_pathology_fixture_is_listed_with_its_test():
    files = {p.name for p in MESSAGES.iterdir() if p.is_file() and p.name != "README.md"}
    rows = _index()
    assert files == set(rows), f"unlisted: {sorted(files - set(rows))}, missing: {sorted(set(rows) - files)}"
    for name, rest in rows.items():
        tests = re.findall(r"`(tests/test_\w+\.py)::(\w+)`", rest)
        assert tests, f"{name} names no test"
        for test_file, test_name in tests:
            source = (ROOT / test_file).read_text(encoding="utf-8")
            assert f"def {test_name}(" in source, f"{name}: {test_file}::{test_name} does not exist"
            assert name in source, f"{test_file} never mentions {name}"
