"""The dependency rules of DESIGN.md, enforced on the source tree."""

from __future__ import annotations

import ast
import graphlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("protocol", "edge_agent", "collector", "firmware_config", "simulators", "bench")
HARDWARE = {"gpiozero", "picamera2", "sounddevice", "av", "lgpio", "RPi"}
MEDIA_ELSEWHERE = {ROOT / "collector" / "evidence" / "playback.py": {"av"}}
"""Where a media library is needed off the device: remuxing stored segments for a browser."""
OURS = set(PACKAGES)


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(top-level module name, imported at module level?) for every import in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                found.extend((alias.name.split(".")[0], top) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                found.append((child.module.split(".")[0], top))
            inner = top and not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            visit(child, inner)

    visit(tree, True)
    return found


def _files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


ALLOWED = {
    "protocol": set(),
    "firmware_config": {"protocol"},
    "edge_agent": {"protocol", "firmware_config"},
    "collector": {"protocol", "firmware_config"},
    "simulators": {"protocol", "firmware_config", "edge_agent"},
    "bench": {"protocol", "firmware_config", "edge_agent", "collector", "simulators"},
}


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_packages_import_only_what_the_design_allows(package: str) -> None:
    for path in _files(package):
        for module, _ in _imports(path):
            if module in OURS and module != package:
                assert module in ALLOWED[package], f"{path.relative_to(ROOT)} imports {module}"


def test_protocol_needs_only_the_standard_library_and_pydantic() -> None:
    stdlib = set(sys.stdlib_module_names)
    for path in _files("protocol"):
        for module, _ in _imports(path):
            assert module in stdlib or module in {"pydantic", "protocol"}, (
                f"{path} imports {module}"
            )


@pytest.mark.parametrize("package", ["protocol", "edge_agent", "collector", "firmware_config"])
def test_hardware_libraries_are_imported_only_lazily_and_only_in_edge_agent_hw(
    package: str,
) -> None:
    for path in _files(package):
        in_hw = path.is_relative_to(ROOT / "edge_agent" / "hw")
        for module, top in _imports(path):
            if module in HARDWARE:
                allowed = in_hw or module in MEDIA_ELSEWHERE.get(path, set())
                assert allowed, f"{path.relative_to(ROOT)} imports {module} outside edge_agent/hw"
                assert not top, f"{path.relative_to(ROOT)} imports {module} at import time"


def test_production_code_never_imports_the_simulators() -> None:
    for package in ("protocol", "edge_agent", "collector", "firmware_config"):
        for path in _files(package):
            assert "simulators" not in {m for m, _ in _imports(path)}, path


BLOCK_HARDWARE = """
import importlib, importlib.abc, pkgutil, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split('.')[0] in {blocked!r}:
            raise ImportError('no ' + name + ' on this machine')
sys.meta_path.insert(0, Block())
for package in ('edge_agent', 'collector', 'protocol', 'firmware_config'):
    module = importlib.import_module(package)
    for info in pkgutil.walk_packages(module.__path__, package + '.'):
        importlib.import_module(info.name)
print('ok')
"""


def test_every_module_imports_on_a_machine_without_any_hardware_library() -> None:
    script = BLOCK_HARDWARE.format(blocked=sorted(HARDWARE))
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


@pytest.mark.parametrize("module", ["edge_agent.cli", "collector.cli", "simulators.cli"])
def test_every_command_has_help(module: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: custos-")


HEAVY = ("numpy", "av", "cryptography", "aiohttp", "sounddevice", "picamera2")
"""Media, signing and HTTP libraries: tens of MB of resident memory, needed only once a recorder and
its spool's uploader are built, so importing the agent must not load them (the RSS budget)."""


@pytest.mark.parametrize("module", ["edge_agent.wiring", "simulators.room"])
def test_the_idle_agent_imports_no_media_signing_or_http_library(module: str) -> None:
    script = f"import sys, {module}; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [], f"importing {module} loads {result.stdout.strip()}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    """Module → the modules of ours it imports when it is imported (module level, outside
    ``TYPE_CHECKING``), over the whole production tree."""
    modules = {_module_name(path): path for package in PACKAGES for path in _files(package)}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()

        def visit(node: ast.AST, package: str = package, targets: set[str] = targets) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                    continue
                if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                    continue
                if isinstance(child, ast.Import):
                    targets.update(alias.name for alias in child.names if alias.name in modules)
                elif isinstance(child, ast.ImportFrom):
                    base = child.module or ""
                    if child.level:
                        anchor = package.split(".")[: len(package.split(".")) - child.level + 1]
                        base = ".".join([*anchor, *([base] if base else [])])
                    for alias in child.names:
                        submodule = f"{base}.{alias.name}"
                        targets.add(submodule if submodule in modules else base)
                visit(child)

        visit(ast.parse(path.read_text(encoding="utf-8")))
        graph[name] = {target for target in targets if target in modules and target != name}
    return graph


def test_no_import_cycle_anywhere_in_the_tree() -> None:
    """Checked over the whole graph, not file by file: a cycle through any number of modules
    is found (``graphlib`` reports one of them)."""
    graph = _import_graph()
    assert len(graph) > 100  # the walk saw the tree, not an empty directory
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")


def test_the_import_graph_sees_absolute_relative_and_submodule_imports() -> None:
    graph = _import_graph()
    assert "collector.alerts.engine" in graph["collector.faults.engine"]  # from a.b import C
    assert "collector.mqtt.codec" in graph["collector.mqtt"]  # the package's own re-exports
    assert "collector.mqtt.client" not in graph["collector.mqtt.session"]  # TYPE_CHECKING only


def test_the_alert_and_fault_domains_do_not_import_each_other_both_ways() -> None:
    graph = _import_graph()
    alerts_to_faults = {
        (source, target)
        for source, targets in graph.items()
        if source.startswith("collector.alerts.")
        for target in targets
        if target.startswith("collector.faults")
    }
    assert alerts_to_faults == set()  # faults build on alerts; maintenance sits beside both


def test_only_ingest_uses_the_mqtt_client() -> None:
    """The MQTT client is ingest's: alerts go out through ingest's alarm session (a port,
    ``AlertChannel``). Settings may use the broker address, a value with no I/O."""
    users = {
        (source, target)
        for source, targets in _import_graph().items()
        if source.startswith("collector.") and not source.startswith("collector.mqtt")
        for target in targets
        if target.startswith("collector.mqtt")
    }
    assert {source for source, _ in users if not source.startswith("collector.ingest.")} == {
        "collector.settings"
    }
    assert {target for source, target in users if source == "collector.settings"} == {
        "collector.mqtt.address"
    }


def test_the_collector_packages_form_no_cycle() -> None:
    """Package level (``collector.alerts`` → ``collector.faults`` …), over module-level imports."""
    packages: dict[str, set[str]] = {}
    for source, targets in _import_graph().items():
        if source.startswith("collector."):
            top = ".".join(source.split(".")[:2])
            packages.setdefault(top, set()).update(
                ".".join(target.split(".")[:2])
                for target in targets
                if target.startswith("collector.") and not target.startswith(top)
            )
    try:
        graphlib.TopologicalSorter(packages).prepare()
    except graphlib.CycleError as exc:
        pytest.fail(f"package cycle: {' -> '.join(exc.args[1])}")


def test_the_store_imports_no_domain() -> None:
    """``collector.store`` is a generic single writer and read pool: work comes to it through
    its ``WorkSource`` port and jobs; it knows nothing of messages, alerts or faults."""
    leaks = {
        (source, target)
        for source, targets in _import_graph().items()
        if source.startswith("collector.store")
        for target in targets
        if target.startswith("collector.") and not target.startswith("collector.store")
    }
    assert leaks == {("collector.store.writer", "collector.errors")}  # the errors' root only


def test_each_domain_error_derives_from_the_shared_root_not_from_the_store() -> None:
    from collector.alerts.engine import AlertError
    from collector.errors import DomainError
    from collector.faults.engine import FaultError

    for error in (AlertError, FaultError):
        assert issubclass(error, DomainError)
        assert all(not base.__module__.startswith("collector.store") for base in error.__mro__)
        assert error(404, "no such thing").retryable is False
