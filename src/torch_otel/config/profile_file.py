"""Reading a profile file safely, with ``${VAR}`` resolved against a given environment.

``opentelemetry-configuration`` validates profiles (its JSON schema and typed
model); this module only reads the file first, for two reasons:

* **No process-environment mutation.** The upstream loader substitutes
  ``${VAR}`` from ``os.environ``. torch-otel resolves a profile for another
  environment (the one ``torch-otel run`` gives its command, with
  ``TORCH_OTEL_OUTPUT`` made absolute), so it substitutes from the mapping it is
  given, with the same rules (values only, never keys or comments; an unquoted
  standalone ``${VAR}`` takes the YAML type of its value; ``$$`` is a literal
  ``$``), and hands the result to the upstream loader with every ``$`` escaped.
* **Hostile files.** A profile may come from anywhere (``OTEL_CONFIG_FILE``).
  Only a regular file is opened (a FIFO would block, a directory is named as
  such), at most :data:`MAX_PROFILE_BYTES` are read, YAML aliases may not expand
  the document beyond :data:`MAX_EXPANDED_NODES` nodes ("billion laughs"), and
  nesting beyond :data:`MAX_DEPTH` is refused before any recursion can overflow.
"""

from __future__ import annotations

import json
import os
import re
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from torch_otel.errors import ConfigError

MAX_PROFILE_BYTES = 1024 * 1024
MAX_DEPTH = 64
MAX_EXPANDED_NODES = 20_000

_YAML_STR_TAG = "tag:yaml.org,2002:str"
_REFERENCE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}")
_STANDALONE_REFERENCE = re.compile(r"\A\$\{[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\}\Z")


def substitute(text: str, environ: Mapping[str, str]) -> str:
    """``${VAR}``, ``${VAR:-default}`` and ``$$`` in one configuration value.

    The declarative-configuration rules: an unset variable without a default
    becomes empty; ``$$`` is a literal ``$``.
    """

    def replace(match: re.Match[str]) -> str:
        if match.group(1) is None:
            return "$"
        value = environ.get(match.group(1))
        if value is None:
            return match.group(3) or ""
        return value

    return _REFERENCE.sub(replace, text)


def read_profile_data(path: Path, environ: Mapping[str, str]) -> Any:
    """The profile's content as plain data, ``${VAR}`` resolved from ``environ``."""
    text = _read_text(path)
    setting = f"exporter profile {str(path)!r}"
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except RecursionError:
            raise ConfigError(setting, f"nested deeper than {MAX_DEPTH} levels") from None
        except ValueError as error:
            raise ConfigError(setting, f"not valid JSON: {error}") from None
        _check_depth(data, setting)
        return _substitute_values(data, environ)
    return _load_yaml(text, environ, setting)


def escaped_for_upstream(data: Any) -> Any:
    """``data`` with every ``$`` doubled, so the upstream loader substitutes nothing."""
    if isinstance(data, str):
        return data.replace("$", "$$")
    if isinstance(data, list):
        return [escaped_for_upstream(item) for item in data]
    if isinstance(data, dict):
        return {key: escaped_for_upstream(value) for key, value in data.items()}
    return data


class ProfileView:
    """Attribute access over a built-in profile's data, as the upstream typed model has it.

    Missing keys read as None, and ``otlp_file/development`` as ``otlp_file_development``:
    exactly the parts ``profiles.py`` and ``specs.py`` read.
    """

    __slots__ = ("_data",)

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getattr__(self, name: str) -> Any:
        key = name.replace("_development", "/development")
        return _view(self._data.get(key if key in self._data else name))

    def __getitem__(self, key: str) -> Any:
        return _view(self._data[key])

    def get(self, key: str, default: Any = None) -> Any:
        return _view(self._data.get(key, default))


def _view(value: Any) -> Any:
    if isinstance(value, dict):
        return ProfileView(value)
    if isinstance(value, list):
        return [_view(item) for item in value]
    return value


def load_validated(data: Any, path: Path) -> Any:
    """Validate resolved data with ``opentelemetry-configuration``; its typed model.

    The upstream loader takes a file, so the (escaped) data goes through a
    private temporary JSON file.
    """
    from opentelemetry.configuration import load_config_file

    handle, temp_name = tempfile.mkstemp(prefix="torch-otel-profile-", suffix=".json")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(escaped_for_upstream(data), out)
        return load_config_file(temp_name)
    finally:
        os.unlink(temp_name)


def _read_text(path: Path) -> str:
    name = str(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ConfigError("exporter", f"profile file {name!r} does not exist") from None
    except OSError as error:
        raise ConfigError("exporter", f"profile file {name!r}: {error.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise ConfigError("exporter", f"profile {name!r} is a directory, not a YAML file")
    if not stat.S_ISREG(info.st_mode):
        kind = "a FIFO" if stat.S_ISFIFO(info.st_mode) else "not a regular file"
        raise ConfigError("exporter", f"profile {name!r} is {kind}; give a YAML file")
    if info.st_size > MAX_PROFILE_BYTES:
        raise ConfigError(
            "exporter", f"profile file {name!r} is larger than {MAX_PROFILE_BYTES} bytes"
        )
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_PROFILE_BYTES + 1)
    except OSError as error:
        raise ConfigError(
            "exporter", f"profile file {name!r} is not readable: {error.strerror}"
        ) from None
    if len(raw) > MAX_PROFILE_BYTES:
        raise ConfigError(
            "exporter", f"profile file {name!r} is larger than {MAX_PROFILE_BYTES} bytes"
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(
            "exporter", f"profile file {name!r} is not UTF-8 (byte {error.start})"
        ) from None


class _BoundedLoader(yaml.SafeLoader):
    """A SafeLoader whose composer refuses deep nesting before recursing into it."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:  # type: ignore[override]
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _TooDeep
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _TooDeep(Exception):
    pass


def _load_yaml(text: str, environ: Mapping[str, str], setting: str) -> Any:
    loader = _BoundedLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        _check_expansion(root, setting)
        _substitute_node(root, loader, environ, set())
        return loader.construct_document(root)
    except _TooDeep:
        raise ConfigError(setting, f"nested deeper than {MAX_DEPTH} levels") from None
    except yaml.YAMLError as error:
        raise ConfigError(setting, f"not valid YAML: {error}") from None
    finally:
        loader.dispose()


def _check_expansion(root: yaml.Node, setting: str) -> None:
    """Refuse a node graph whose aliases expand it past :data:`MAX_EXPANDED_NODES`."""
    sizes: dict[int, int] = {}
    in_progress: set[int] = set()

    def expanded(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in in_progress:
            raise ConfigError(setting, "a YAML alias refers to itself (a cycle)")
        in_progress.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(expanded(item) for item in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(expanded(k) + expanded(v) for k, v in node.value)
        in_progress.discard(key)
        if total > MAX_EXPANDED_NODES:
            raise ConfigError(
                setting,
                f"YAML aliases expand it beyond {MAX_EXPANDED_NODES} values "
                "(refused: a profile is small)",
            )
        sizes[key] = total
        return total

    expanded(root)


def _substitute_node(
    node: yaml.Node, loader: yaml.SafeLoader, environ: Mapping[str, str], seen: set[int]
) -> None:
    """Substitute in scalar values (never keys); each shared node once."""
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.ScalarNode):
        if node.tag == _YAML_STR_TAG:
            raw = node.value
            node.value = substitute(raw, environ)
            if node.style is None and _STANDALONE_REFERENCE.match(raw):
                node.tag = loader.resolve(yaml.ScalarNode, node.value, (True, False))
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _substitute_node(item, loader, environ, seen)
    elif isinstance(node, yaml.MappingNode):
        for _key, value in node.value:
            _substitute_node(value, loader, environ, seen)


def _substitute_values(data: Any, environ: Mapping[str, str]) -> Any:
    if isinstance(data, str):
        return substitute(data, environ)
    if isinstance(data, list):
        return [_substitute_values(item, environ) for item in data]
    if isinstance(data, dict):
        return {key: _substitute_values(value, environ) for key, value in data.items()}
    return data


def _check_depth(data: Any, setting: str, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise ConfigError(setting, f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(data, list):
        for item in data:
            _check_depth(item, setting, depth + 1)
    elif isinstance(data, dict):
        for value in data.values():
            _check_depth(value, setting, depth + 1)
