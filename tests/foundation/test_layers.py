"""The seams between the project's packages, as the Docker images see them.

The dashboard image copies only `dashboard/` (and manage.py); the backend image only
`backend_pod/`. So the dashboard must never import the sandbox, and the lab orchestrator (`lab/`,
which starts the sandbox for `manage.py demo`, the tests and the benchmarks) ships in neither.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def imported_top_levels(path: Path) -> set[str]:
    """The top-level package of every absolute import in one Python file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def importers_of(package: str, tree: str) -> list[str]:
    """The files under ``tree`` that import ``package``."""
    return sorted(str(path.relative_to(REPO)) for path in (REPO / tree).rglob("*.py")
                  if package in imported_top_levels(path))


def test_the_dashboard_never_imports_the_sandbox() -> None:
    assert importers_of("sandbox", "dashboard") == []


def test_only_the_demo_command_uses_the_lab_orchestrator() -> None:
    assert importers_of("lab", "dashboard") == ["dashboard/management/commands/demo.py"]


def test_the_sample_backend_imports_only_itself_and_the_standard_library() -> None:
    allowed = {"backend_pod", *sys.stdlib_module_names}
    for path in (REPO / "backend_pod").rglob("*.py"):
        foreign = imported_top_levels(path) - allowed
        assert not foreign, f"{path.relative_to(REPO)} imports {foreign}"


def test_the_dashboard_image_ships_every_package_of_ours_the_dashboard_imports() -> None:
    ours = {path.parent.name for path in REPO.glob("*/__init__.py")}
    imported = set().union(*(imported_top_levels(path) for path in (REPO / "dashboard").rglob("*.py")
                             if path.name != "demo.py"))  # the demo command runs from a checkout
    copied = re.findall(r"^COPY (\S+?)/? ", (REPO / "Dockerfile.dashboard").read_text(), re.MULTILINE)
    assert sorted((imported & ours) - set(copied)) == []


def test_neither_image_ships_the_lab_or_the_sandbox() -> None:
    for dockerfile in ("Dockerfile.dashboard", "Dockerfile.backend"):
        copied = re.findall(r"^COPY (\S+)", (REPO / dockerfile).read_text(), re.MULTILINE)
        assert not any(src.startswith(("lab", "sandbox", ".")) for src in copied), (dockerfile, copied)
    assert (REPO / "lab" / "launcher.py").exists()
    assert not (REPO / "dashboard" / "launcher.py").exists()
