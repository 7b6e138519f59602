"""The layout is the architecture: checked from the source, not by convention.

* imports only go downward: cli/auto -> package root -> bridge -> lifecycle ->
  export -> trace -> capture/config -> base modules (names, environment
  variables, errors, stats), and never between capture and config;
* no import cycle between modules (function-level imports included);
* torch internals are touched in ``capture/_torch.py`` only;
* every environment variable and every emitted name is spelled in one module;
* modules stay small; the package root exports the public API and nothing else.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import torch_otel

SRC = Path(torch_otel.__file__).resolve().parent
PACKAGE = "torch_otel"

# Layer of each top-level part of the package (a subpackage or a root module).
LAYERS: dict[str, int] = {
    "errors": 0,
    "names": 0,
    "environment_variables": 0,
    "stats": 1,
    "debug_output": 1,
    "redaction": 1,
    "import_watch": 1,
    "capture": 2,
    "config": 2,
    "trace": 3,
    "export": 4,
    "lifecycle": 5,
    "application": 5,
    "bridge": 6,
    "_api": 7,
    "__init__": 8,
    "auto": 9,
    "cli": 9,
}
SIBLINGS_THAT_MUST_NOT_MEET = {frozenset({"capture", "config"}), frozenset({"auto", "cli"})}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join([PACKAGE, *parts])


def source_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(SRC.rglob("*.py"))}


MODULES = source_modules()


def imported_modules(name: str, path: Path) -> set[str]:
    """torch_otel modules ``path`` imports, anywhere in the file."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in MODULES else base)
    return {module for module in found if module in MODULES and module != name}


def part_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_part_of_the_package_has_a_layer() -> None:
    assert {part_of(module) for module in MODULES} == set(LAYERS)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_only_go_downward(module: str) -> None:
    here = part_of(module)
    for target in imported_modules(module, MODULES[module]):
        there = part_of(target)
        if there == here or target == PACKAGE:
            continue  # within one part; the root facade is imported implicitly anyway
        assert frozenset({here, there}) not in SIBLINGS_THAT_MUST_NOT_MEET, (module, target)
        assert LAYERS[there] < LAYERS[here], f"{module} imports {target} (upward or sideways)"


def test_no_import_cycles() -> None:
    graph = {name: imported_modules(name, path) - {PACKAGE} for name, path in MODULES.items()}
    visiting: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> None:
        if node in done:
            return
        assert node not in visiting, "import cycle: " + " -> ".join([*visiting, node])
        visiting.append(node)
        for target in sorted(graph[node]):
            visit(target)
        visiting.pop()
        done.add(node)

    for name in sorted(graph):
        visit(name)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_stay_small(module: str) -> None:
    lines = MODULES[module].read_text().count("\n")
    assert lines <= 450, f"{module} has {lines} lines"


TORCH_INTERNAL_MODULES = frozenset(
    {"torch_otel.capture._torch", "torch_otel.capture._torch_compile"}
)
"""The only modules that touch torch internals: ``_torch`` (logging, compile id, rank) and
``_torch_compile`` (compile callbacks, CompilationMetrics, graph breaks)."""

TORCH_INTERNALS = re.compile(
    r"(?<!_torch\.)(?<!_torch_compile\.)\b(torch\._logging\._internal|torch\._guards"
    r"|distributed_c10d|_init_logs|log_registry|_is_torch_handler|_parse_log_settings"
    r"|_get_log_state|_TLS|torch\._dynamo\.(?!graph_break\b|reset\b|config\b)\w+"
    r"|torch\._utils_internal|callback_handler|log_compilation_event|log_graph_break"
    r"|InstructionTranslatorBase|CHROMIUM_EVENT_LOG|_load_gb_type_to_gb_id_map)\b"
)


def is_string(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def code_without_docstrings(path: Path) -> str:
    """The file's text with docstrings and comments removed."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        first = body[0] if isinstance(body, list) and body else None
        if isinstance(first, ast.Expr) and is_string(first.value):
            body[0] = ast.Pass()
    return ast.unparse(tree)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_torch_internals_only_in_capture_torch(module: str) -> None:
    if module in TORCH_INTERNAL_MODULES:
        return
    found = TORCH_INTERNALS.findall(code_without_docstrings(MODULES[module]))
    assert not found, f"{module} touches torch internals {sorted(set(found))}"


ENV_NAME = re.compile(r"^(TORCH_OTEL_[A-Z_]+|OTEL_[A-Z_]+|TORCH_LOGS[A-Z_]*|RANK|LOCAL_RANK)$")
EMITTED_NAME = re.compile(r"^(torch|torch_otel)\.[a-z_]+(\.[a-z_]+)*$")
LOGGER_NAMES = {"torch_otel"}  # a logger, not an attribute


def string_constants(path: Path) -> list[str]:
    tree = ast.parse(code_without_docstrings(path))
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_environment_variables_are_named_in_one_module(module: str) -> None:
    if module == "torch_otel.environment_variables":
        return
    spelled = [s for s in string_constants(MODULES[module]) if ENV_NAME.match(s)]
    assert not spelled, f"{module} spells {spelled}; use torch_otel.environment_variables"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_emitted_names_are_spelled_in_one_module(module: str) -> None:
    if module == "torch_otel.names" or module in TORCH_INTERNAL_MODULES:
        return
    spelled = [
        s
        for s in string_constants(MODULES[module])
        if EMITTED_NAME.match(s) and s not in LOGGER_NAMES and not s.startswith("torch_otel.")
    ]
    assert not spelled, f"{module} spells {spelled}; use torch_otel.names"


def test_package_root_exports_the_public_api_only() -> None:
    assert set(torch_otel.__all__) == {
        "BridgeSettings",
        "ConfigError",
        "StatsSnapshot",
        "TorchOtelBridge",
        "__version__",
        "get_bridge",
        "install",
        "uninstall",
    }
    for name in torch_otel.__all__:
        assert getattr(torch_otel, name) is not None
    public_modules = {path.stem for path in SRC.glob("*.py") if not path.stem.startswith("_")} | {
        path.name for path in SRC.iterdir() if path.is_dir() and (path / "__init__.py").exists()
    }
    # Everything else at the root is internal and says so in its docstring or name.
    for part in public_modules:
        module = MODULES.get(f"{PACKAGE}.{part}")
        assert module is not None
        doc = ast.get_docstring(ast.parse(module.read_text())) or ""
        assert doc, f"{part} has no docstring saying what it is for"


def test_the_wheel_has_no_module_named_like_the_profile_folder() -> None:
    """The profiles ship as ``torch_otel/profiles/``; no module of that name may shadow it."""
    assert not (SRC / "profiles.py").exists()
    assert not (SRC / "profiles").is_dir() or not (SRC / "profiles" / "__init__.py").exists()
