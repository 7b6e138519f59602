"""Static checks of docker/: the Dockerfile, compose file and collector config, and the
metrics side (collector prometheus exporter, Prometheus, Grafana's dashboard: the checks
are in ``docker_metrics.py``).

No Docker engine and no network: the files are parsed and cross-checked
against each other and against the repository (paths, exporter profiles,
pyproject's torch requirement). Each check is a function of a :class:`Stack`
loaded from a repository root, so the negative tests at the end can run the
same checks on a deliberately broken copy in a temporary directory.
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
DOCKER_DIR = REPO / "docker"

COLLECTOR_IMAGE = "otel/opentelemetry-collector"  # prefix: also -contrib, -k8s, ...
REQUIRED_PIPELINES = ("logs", "traces", "metrics")
PIPELINE_KINDS = ("receivers", "processors", "exporters")
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# Profiles whose endpoint is OTEL_EXPORTER_OTLP_ENDPOINT, and the OTLP receiver
# protocol each one talks to.
OTLP_PROFILES = {"otlp-grpc": "grpc", "otlp-http": "http"}
WILDCARD_HOSTS = {"", "0.0.0.0", "::", "[::]"}


# --------------------------------------------------------------------------- #
# Parsing helpers
# --------------------------------------------------------------------------- #

_COMPOSE_VAR = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
)


def interpolate(value: Any) -> Any:
    """Compose variable interpolation, resolved as if no variable were set.

    ``${VAR:-default}`` / ``${VAR-default}`` give the default, ``${VAR}`` and
    ``$VAR`` give "", ``$$`` gives "$". Deterministic: the host's environment
    is not consulted.
    """
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        if match.group("op") in (":-", "-"):
            return match.group("arg")
        return ""

    return _COMPOSE_VAR.sub(replace, value)


def as_args(value: Any) -> list[str]:
    """A compose ``command``/``entrypoint`` (string or list) as an argument list."""
    if value is None:
        return []
    if isinstance(value, str):
        return shlex.split(interpolate(value))
    return [str(interpolate(item)) for item in value]


def service_env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) if "=" in item else (item, "") for item in env)
        env = dict(pairs)
    return {str(k): str(interpolate(v)) if v is not None else "" for k, v in env.items()}


@dataclass(frozen=True)
class Mount:
    source: str | None  # None: anonymous volume
    target: str
    read_only: bool

    @property
    def is_bind(self) -> bool:
        return self.source is not None and self.source.startswith((".", "/", "~"))


def service_mounts(service: dict[str, Any]) -> list[Mount]:
    mounts = []
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict):
            mounts.append(
                Mount(
                    interpolate(volume.get("source")),
                    interpolate(volume["target"]),
                    bool(volume.get("read_only", False)),
                )
            )
            continue
        parts = interpolate(volume).split(":")
        if len(parts) == 1:
            mounts.append(Mount(None, parts[0], False))
        else:
            modes = parts[2].split(",") if len(parts) > 2 else []
            mounts.append(Mount(parts[0], parts[1], "ro" in modes))
    return mounts


def _port_range(text: str) -> list[int]:
    start, _, end = text.partition("-")
    return list(range(int(start), int(end or start) + 1))


def container_ports(service: dict[str, Any]) -> set[int]:
    """Container-side ports of a service's ``ports:`` (short and long syntax)."""
    ports: set[int] = set()
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            ports.update(_port_range(str(entry["target"])))
            continue
        container = str(interpolate(entry)).rsplit(":", 1)[-1].split("/", 1)[0]
        ports.update(_port_range(container))
    return ports


def host_port(endpoint: str) -> tuple[str, int]:
    """``host:port`` of a collector server endpoint (``[::]:4317`` too)."""
    host, sep, port = endpoint.rpartition(":")
    assert sep and port.isdigit(), f"endpoint {endpoint!r} has no port"
    return host, int(port)


def image_tag(reference: str) -> tuple[str, str, str]:
    """(name, tag, digest) of an image reference; a registry's :port is not a tag."""
    name, _, digest = reference.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = ""
    if ":" in last:
        tag = last.rsplit(":", 1)[1]
        name = name[: -(len(tag) + 1)]
    return name, tag, digest


def assert_pinned(reference: str, what: str) -> None:
    _, tag, digest = image_tag(interpolate(reference))
    if digest:
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), f"{what}: bad digest {digest!r}"
        return
    assert tag, f"{what}: image {reference!r} has no tag (Docker reads that as :latest)"
    assert tag != "latest", f"{what}: image {reference!r} uses the floating :latest tag"
    assert re.match(r"v?\d+\.\d+\.\d+(?![.\d])", tag), (
        f"{what}: image {reference!r} is not pinned to an exact x.y.z version "
        f"(tags like '3.11-slim' or '0.160' move)"
    )


@dataclass(frozen=True)
class Instruction:
    keyword: str
    value: str
    line: int


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions of a Dockerfile: continuations joined, comments dropped.

    Follows Docker's rules for ``\\`` line continuations (or the ``# escape=``
    parser directive), comment lines inside a continuation and blank lines.
    Heredocs are not supported (none are used).
    """
    escape = "\\"
    lines = text.splitlines()
    for line in lines:  # parser directives: leading "# key=value" comments only
        directive = re.fullmatch(r"#\s*(\w+)\s*=\s*(\S+)\s*", line)
        if not directive:
            break
        if directive.group(1).lower() == "escape":
            escape = directive.group(2)
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(lines, 1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue  # also inside a continuation, as Docker does
        if not pending:
            start = number
        if stripped.endswith(escape):
            pending.append(stripped[: -len(escape)].strip())
            continue
        pending.append(stripped)
        keyword, _, value = " ".join(pending).partition(" ")
        instructions.append(Instruction(keyword.upper(), value.strip(), start))
        pending = []
    assert not pending, f"Dockerfile ends inside a line continuation (from line {start})"
    return instructions


def exec_form(value: str) -> list[str] | None:
    """The JSON (exec) form of CMD/ENTRYPOINT/COPY, or None for shell form."""
    if not value.startswith("["):
        return None
    parsed = json.loads(value)
    assert isinstance(parsed, list) and all(isinstance(x, str) for x in parsed), value
    return parsed


def split_flags(value: str) -> tuple[dict[str, str], str]:
    """Leading ``--flag[=value]`` options of COPY/ADD/RUN, and the rest."""
    flags: dict[str, str] = {}
    while match := re.match(r"--([\w-]+)(?:=(\S*))?\s+", value):
        flags[match.group(1)] = match.group(2) or ""
        value = value[match.end() :]
    return flags, value


@dataclass(frozen=True)
class PipInstall:
    index: int  # instruction index
    workdir: str
    options: dict[str, list[str]]
    targets: list[str]


_PIP_OPTIONS_WITH_VALUE = {
    "-i": "--index-url",
    "--index-url": "--index-url",
    "--extra-index-url": "--extra-index-url",
    "-f": "--find-links",
    "--find-links": "--find-links",
    "-r": "--requirement",
    "--requirement": "--requirement",
    "-c": "--constraint",
    "--constraint": "--constraint",
    "-e": "--editable",
    "--editable": "--editable",
    "-t": "--target",
    "--target": "--target",
    "--prefix": "--prefix",
    "--root": "--root",
    "--trusted-host": "--trusted-host",
    "--upgrade-strategy": "--upgrade-strategy",
    "--only-binary": "--only-binary",
    "--no-binary": "--no-binary",
    "--platform": "--platform",
    "--python-version": "--python-version",
    "--cache-dir": "--cache-dir",
    "--timeout": "--timeout",
    "--retries": "--retries",
    "-C": "--config-settings",
    "--config-settings": "--config-settings",
}


def pip_installs(instructions: list[Instruction]) -> list[PipInstall]:
    """Every ``pip install`` in RUN instructions, with the WORKDIR it runs in."""
    found = []
    workdir = "/"
    for index, ins in enumerate(instructions):
        if ins.keyword == "FROM":
            workdir = "/"
        elif ins.keyword == "WORKDIR":
            workdir = posixpath.normpath(posixpath.join(workdir, ins.value))
        if ins.keyword != "RUN":
            continue
        _, command = split_flags(ins.value)
        for segment in re.split(r"&&|\|\||;", command):
            tokens = shlex.split(segment)
            for i, token in enumerate(tokens[:-1]):
                if tokens[i + 1] == "install" and re.fullmatch(r"(.*/)?pip3?(\.\d+)?", token):
                    break
            else:
                continue
            options: dict[str, list[str]] = {}
            targets: list[str] = []
            args = iter(tokens[i + 2 :])
            for arg in args:
                name, eq, inline = arg.partition("=")
                if arg.startswith("-") and name in _PIP_OPTIONS_WITH_VALUE:
                    value = inline if eq else next(args, "")
                    options.setdefault(_PIP_OPTIONS_WITH_VALUE[name], []).append(value)
                    if name in ("-e", "--editable"):
                        targets.append(value)
                elif arg.startswith("-"):
                    options.setdefault(name, []).append(inline)
                else:
                    targets.append(arg)
            found.append(PipInstall(index, workdir, options, targets))
    return found


def _ignore_regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        else:
            char = pattern[i]
            out += {"*": "[^/]*", "?": "[^/]"}.get(char, re.escape(char))
            i += 1
    return re.compile(out)


def dockerignore_rules(dockerfile: Path, context: Path) -> list[tuple[bool, re.Pattern[str]]]:
    """(negated, regex) rules, from ``<Dockerfile>.dockerignore`` (BuildKit's
    per-Dockerfile file, which wins) or else ``<context>/.dockerignore``."""
    for candidate in (
        dockerfile.with_name(dockerfile.name + ".dockerignore"),
        context / ".dockerignore",
    ):
        if candidate.is_file():
            rules = []
            for line in candidate.read_text().splitlines():
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                negated = line.startswith("!")
                pattern = posixpath.normpath(line.lstrip("!").strip()).lstrip("/")
                rules.append((negated, _ignore_regex(pattern)))
            return rules
    return []


def is_ignored(relative: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether a context path is excluded: a rule matches it or a parent; last rule wins."""
    parts = PurePosixPath(relative).parts
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for negated, regex in rules:
        if any(regex.fullmatch(candidate) for candidate in candidates):
            ignored = not negated
    return ignored


# --------------------------------------------------------------------------- #
# The stack under test
# --------------------------------------------------------------------------- #


@dataclass
class Stack:
    root: Path
    compose_path: Path
    compose: dict[str, Any]
    collector_config_path: Path
    collector_config: dict[str, Any]

    @property
    def compose_dir(self) -> Path:
        return self.compose_path.parent

    @property
    def services(self) -> dict[str, dict[str, Any]]:
        services = self.compose.get("services")
        assert isinstance(services, dict) and services, "compose file has no services"
        return services

    def collector(self) -> tuple[str, dict[str, Any]]:
        found = [
            (name, svc)
            for name, svc in self.services.items()
            if str(interpolate(svc.get("image", ""))).startswith(COLLECTOR_IMAGE)
        ]
        assert len(found) == 1, f"expected one {COLLECTOR_IMAGE}* service, found {len(found)}"
        return found[0]

    def jobs(self) -> dict[str, dict[str, Any]]:
        """Services built from this repository (the torch job image)."""
        jobs = {name: svc for name, svc in self.services.items() if "build" in svc}
        assert jobs, "no compose service builds the torch image"
        return jobs

    def build(self, service: dict[str, Any]) -> tuple[Path, Path]:
        """(context, Dockerfile) of a service, as compose resolves them."""
        build = service["build"]
        if isinstance(build, str):
            build = {"context": build}
        context = (self.compose_dir / interpolate(build.get("context", "."))).resolve()
        assert context.is_dir(), f"build context {context} does not exist"
        dockerfile = context / interpolate(build.get("dockerfile", "Dockerfile"))
        assert dockerfile.is_file(), (
            f"dockerfile {build.get('dockerfile')!r} does not exist relative to the "
            f"build context {context}"
        )
        return context, dockerfile

    def job_build(self) -> tuple[Path, Path, list[Instruction]]:
        builds = {self.build(svc) for svc in self.jobs().values()}
        assert len(builds) == 1, f"job services build different images: {builds}"
        context, dockerfile = builds.pop()
        return context, dockerfile, parse_dockerfile(dockerfile.read_text())

    def config_mount_target(self) -> str:
        """The config path the collector is started with (``--config``)."""
        _, collector = self.collector()
        args = as_args(collector.get("command"))
        for i, arg in enumerate(args):
            if arg.startswith("--config="):
                return arg.split("=", 1)[1]
            if arg == "--config" and i + 1 < len(args):
                return args[i + 1]
        raise AssertionError(f"collector command {args} has no --config")


def load_stack(root: Path) -> Stack:
    docker = root / "docker"
    compose_path = docker / "compose.yaml"
    config_path = docker / "otel-collector.yaml"
    return Stack(
        root=root,
        compose_path=compose_path,
        compose=yaml.safe_load(compose_path.read_text()),
        collector_config_path=config_path,
        collector_config=yaml.safe_load(config_path.read_text()),
    )


def component_type(component_id: str) -> str:
    return component_id.split("/", 1)[0]


def otlp_receiver_ports(config: dict[str, Any]) -> dict[str, int]:
    """{"grpc": port, "http": port} of the collector's otlp receiver(s)."""
    ports: dict[str, int] = {}
    for rid, receiver in (config.get("receivers") or {}).items():
        if component_type(rid) != "otlp":
            continue
        for protocol, settings in ((receiver or {}).get("protocols") or {}).items():
            endpoint = (settings or {}).get("endpoint")
            assert endpoint, (
                f"receiver {rid} {protocol}: no endpoint; the default binds localhost only, "
                "which other containers cannot reach"
            )
            host, port = host_port(str(endpoint))
            assert host in WILDCARD_HOSTS, (
                f"receiver {rid} {protocol} listens on {host!r}: other containers cannot reach it"
            )
            ports[protocol] = port
    assert ports, "the collector config has no otlp receiver protocols"
    return ports


def exporter_flag(args: list[str]) -> str | None:
    for i, arg in enumerate(args):
        if arg.startswith("--exporter="):
            return arg.split("=", 1)[1]
        if arg == "--exporter" and i + 1 < len(args):
            return args[i + 1]
    return None


def dockerfile_cmd(instructions: list[Instruction]) -> list[str]:
    """ENTRYPOINT + CMD of the final stage (exec form required)."""
    last_from = max(i for i, ins in enumerate(instructions) if ins.keyword == "FROM")
    final = instructions[last_from:]
    entrypoint = [ins for ins in final if ins.keyword == "ENTRYPOINT"]
    cmd = [ins for ins in final if ins.keyword == "CMD"]
    args: list[str] = []
    for ins in entrypoint[-1:] + cmd[-1:]:
        form = exec_form(ins.value)
        assert form is not None, (
            f"line {ins.line}: {ins.keyword} in shell form runs under /bin/sh -c, which "
            "does not pass signals to torch-otel; use the JSON form"
        )
        args += form
    assert args, "the Dockerfile has no CMD or ENTRYPOINT"
    return args


def job_command(stack: Stack, service: dict[str, Any]) -> list[str]:
    """What the job container runs: compose's entrypoint/command over the image's."""
    _, _, instructions = stack.job_build()
    if "entrypoint" in service:
        return as_args(service["entrypoint"]) + as_args(service.get("command"))
    if "command" in service:
        return as_args(service["command"])
    return dockerfile_cmd(instructions)


def job_profile(stack: Stack, service: dict[str, Any]) -> str | None:
    """The exporter profile the job uses: --exporter wins over TORCH_OTEL_EXPORTER."""
    return exporter_flag(job_command(stack, service)) or service_env(service).get(
        "TORCH_OTEL_EXPORTER"
    )


# --------------------------------------------------------------------------- #
# Checks
# --------------------------------------------------------------------------- #


def check_collector_pipelines(config: dict[str, Any]) -> None:
    service = config.get("service") or {}
    pipelines = service.get("pipelines") or {}
    for signal in REQUIRED_PIPELINES:
        assert any(component_type(p) == signal for p in pipelines), f"no {signal} pipeline"

    defined = {kind: set(config.get(kind) or {}) for kind in (*PIPELINE_KINDS, "connectors")}
    used: dict[str, set[str]] = {kind: set() for kind in defined}
    for name, pipeline in pipelines.items():
        assert component_type(name) in (*REQUIRED_PIPELINES, "profiles"), (
            f"pipeline {name!r}: unknown signal type"
        )
        pipeline = pipeline or {}
        for kind in PIPELINE_KINDS:
            for component in pipeline.get(kind) or []:
                # A connector is an exporter of one pipeline and a receiver of another.
                if kind != "processors" and component in defined["connectors"]:
                    used["connectors"].add(component)
                    continue
                assert component in defined[kind], (
                    f"pipeline {name!r} names {kind[:-1]} {component!r}, "
                    f"which is not defined under top-level {kind}: {sorted(defined[kind])}"
                )
                used[kind].add(component)
        assert pipeline.get("receivers"), f"pipeline {name!r} has no receivers"
        assert pipeline.get("exporters"), f"pipeline {name!r} has no exporters"
        processors = pipeline.get("processors") or []
        assert processors and component_type(processors[0]) == "memory_limiter", (
            f"pipeline {name!r}: memory_limiter must be the first processor, got {processors}"
        )

    for kind, components in defined.items():
        unused = components - used[kind]
        assert not unused, f"{kind} defined but used in no pipeline: {sorted(unused)}"

    extensions = set(config.get("extensions") or {})
    enabled = list(service.get("extensions") or [])
    undefined = set(enabled) - extensions
    assert not undefined, f"service.extensions names undefined extensions {sorted(undefined)}"
    unused_extensions = extensions - set(enabled)
    assert not unused_extensions, (
        f"extensions defined but not listed in service.extensions: {sorted(unused_extensions)}"
    )


def check_ports_and_endpoints(stack: Stack) -> None:
    collector_name, collector = stack.collector()
    receiver_ports = otlp_receiver_ports(stack.collector_config)
    published = container_ports(collector)
    for protocol, port in receiver_ports.items():
        assert port in published, (
            f"otlp {protocol} receiver port {port} is not in the ports of "
            f"{collector_name}: {sorted(published)}"
        )
    hostnames = {collector_name, collector.get("hostname"), collector.get("container_name")}
    for job_name, job in stack.jobs().items():
        env = service_env(job)
        flag = exporter_flag(job_command(stack, job))
        variable = env.get("TORCH_OTEL_EXPORTER")
        assert not (flag and variable and flag != variable), (
            f"{job_name}: --exporter {flag} and TORCH_OTEL_EXPORTER={variable} disagree"
        )
        profile = job_profile(stack, job)
        assert profile in OTLP_PROFILES, (
            f"{job_name}: exporter profile {profile!r} does not send to the collector "
            f"(expected one of {sorted(OTLP_PROFILES)})"
        )
        protocol = OTLP_PROFILES[profile]
        endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        assert endpoint, f"{job_name}: OTEL_EXPORTER_OTLP_ENDPOINT is not set"
        url = urlsplit(endpoint)
        assert url.scheme == "http", (
            f"{job_name}: endpoint {endpoint!r}: the collector's receivers are plaintext "
            "(no tls), so the scheme must be http"
        )
        assert url.hostname in hostnames, (
            f"{job_name}: endpoint host {url.hostname!r} is not the collector service "
            f"{collector_name!r}"
        )
        assert protocol in receiver_ports, f"the collector has no otlp {protocol} receiver"
        assert url.port == receiver_ports[protocol], (
            f"{job_name}: profile {profile} speaks OTLP/{protocol}, but endpoint port "
            f"{url.port} is not the {protocol} receiver's port {receiver_ports[protocol]}"
        )
        assert url.path in ("", "/"), (
            f"{job_name}: OTEL_EXPORTER_OTLP_ENDPOINT is a base URL (the profile appends "
            f"the signal path); got path {url.path!r}"
        )


def check_output_mount(stack: Stack) -> Path:
    """The file exporter writes into a writable bind mount of a repo directory.

    Returns the host path of the output file.
    """
    collector_name, collector = stack.collector()
    mounts = service_mounts(collector)
    exporters = stack.collector_config.get("exporters") or {}
    files = {eid: cfg or {} for eid, cfg in exporters.items() if component_type(eid) == "file"}
    assert files, "the collector config has no file exporter"
    host_files = []
    for eid, cfg in files.items():
        path = PurePosixPath(str(cfg.get("path", "")))
        assert path.is_absolute(), f"exporter {eid}: path {str(path)!r} must be absolute"
        covering = [
            m for m in mounts if path.is_relative_to(m.target) and path != PurePosixPath(m.target)
        ]
        assert covering, (
            f"exporter {eid} writes {path}, which is in no volume of {collector_name} "
            f"({[m.target for m in mounts]}): the file would stay inside the container"
        )
        mount = max(covering, key=lambda m: len(PurePosixPath(m.target).parts))
        assert not mount.read_only, f"exporter {eid}: {mount.target} is mounted read-only"
        assert mount.is_bind, f"exporter {eid}: {mount.target} is not a bind mount of a host dir"
        host_dir = (stack.compose_dir / mount.source).resolve()
        assert host_dir.is_dir(), f"host side {mount.source!r} of {mount.target} does not exist"
        assert host_dir.is_relative_to(stack.root.resolve()), f"{host_dir} is outside the repo"
        # The contrib image's default uid (10001) cannot create files in a
        # bind-mounted directory owned by the host user on Linux.
        assert collector.get("user"), (
            f"{collector_name} writes to a bind mount but sets no `user:`; the image's uid "
            "10001 cannot write to a directory owned by the host user"
        )
        host_files.append(host_dir / path.relative_to(mount.target))
    assert len(host_files) == 1, f"expected one output file, got {host_files}"
    return host_files[0]


def check_config_mount(stack: Stack) -> None:
    """The collector is started with the config file these tests check."""
    collector_name, collector = stack.collector()
    target = stack.config_mount_target()
    sources = [m for m in service_mounts(collector) if m.target == target]
    assert sources, f"{collector_name}: --config {target} is not mounted"
    assert sources[0].is_bind
    host = (stack.compose_dir / sources[0].source).resolve()
    assert host == stack.collector_config_path.resolve(), (
        f"{collector_name} reads {host}, not {stack.collector_config_path}"
    )


def check_images_pinned(stack: Stack) -> None:
    _, _, instructions = stack.job_build()
    stages = set()
    for ins in instructions:
        if ins.keyword == "FROM":
            _, rest = split_flags(ins.value + " ")
            image, *alias = rest.split()
            if image not in stages and image != "scratch":
                assert_pinned(image, f"Dockerfile line {ins.line} FROM")
            if len(alias) == 2 and alias[0].upper() == "AS":
                stages.add(alias[1])
    for name, svc in stack.services.items():
        if "image" in svc and "build" not in svc:
            assert_pinned(svc["image"], f"compose service {name}")


def check_copy_sources(stack: Stack) -> None:
    context, dockerfile, instructions = stack.job_build()
    rules = dockerignore_rules(dockerfile, context)
    copies = 0
    for ins in instructions:
        if ins.keyword not in ("COPY", "ADD"):
            continue
        flags, rest = split_flags(ins.value)
        if "from" in flags:
            continue  # from another stage or image, not the context
        parts = exec_form(rest) or shlex.split(rest)
        assert len(parts) >= 2, f"line {ins.line}: {ins.keyword} needs a source and a dest"
        for source in parts[:-1]:
            if re.match(r"(https?|git)://|git@", source):
                continue
            copies += 1
            resolved = (context / source).resolve()
            assert resolved.is_relative_to(context), (
                f"line {ins.line}: {source!r} is outside the build context {context}"
            )
            if any(c in source for c in "*?["):
                matches = list(context.glob(source))
                assert matches, f"line {ins.line}: {source!r} matches nothing in {context}"
            else:
                assert resolved.exists(), (
                    f"line {ins.line}: {ins.keyword} source {source!r} does not exist in "
                    f"the build context {context}"
                )
            relative = resolved.relative_to(context).as_posix()
            assert relative == "." or not is_ignored(relative, rules), (
                f"line {ins.line}: {source!r} is excluded by the dockerignore file"
            )
    assert copies, "the Dockerfile copies nothing from the context"
    # The context is the repository root: the virtualenv (with torch) and .git
    # must not be sent to the builder.
    for heavy in (".venv", ".git"):
        assert is_ignored(heavy, rules), f"{heavy} is not excluded from the build context"


def _torch_install(instructions: list[Instruction]) -> tuple[PipInstall, Requirement]:
    found = []
    for install in pip_installs(instructions):
        for target in install.targets:
            if target.startswith((".", "/")):
                continue
            requirement = Requirement(target)
            if requirement.name.lower() == "torch":
                found.append((install, requirement))
    assert len(found) == 1, f"expected one pip install of torch, found {len(found)}"
    return found[0]


def _project_dir(instructions: list[Instruction]) -> tuple[int, str]:
    """(index, directory) of the COPY that brings pyproject.toml in."""
    workdir = "/"
    for index, ins in enumerate(instructions):
        if ins.keyword == "WORKDIR":
            workdir = posixpath.normpath(posixpath.join(workdir, ins.value))
        if ins.keyword not in ("COPY", "ADD"):
            continue
        flags, rest = split_flags(ins.value)
        parts = exec_form(rest) or shlex.split(rest)
        sources, dest = parts[:-1], parts[-1]
        if "from" in flags or not ({"pyproject.toml", "."} & set(sources)):
            continue
        target = posixpath.normpath(posixpath.join(workdir, dest))
        if dest.endswith("/") or len(sources) > 1 or "." in sources:
            return index, target
        return index, posixpath.dirname(target)
    raise AssertionError("no COPY brings pyproject.toml into the image")


def check_install_order(stack: Stack) -> Version:
    """torch (CPU index, exact pin) is installed before the project, on its own layer."""
    _, _, instructions = stack.job_build()
    torch_install, requirement = _torch_install(instructions)
    specs = list(requirement.specifier)
    assert len(specs) == 1 and specs[0].operator == "==" and "*" not in specs[0].version, (
        f"torch must be pinned exactly (torch==X.Y.Z), got {requirement}"
    )
    assert torch_install.options.get("--index-url") == [CPU_INDEX], (
        f"torch must come from --index-url {CPU_INDEX} (the CPU build), got "
        f"{torch_install.options.get('--index-url')}"
    )
    assert "--extra-index-url" not in torch_install.options, (
        "--extra-index-url lets pip pick PyPI's CUDA torch over the CPU build"
    )

    _, project_dir = _project_dir(instructions)
    project_installs = [
        install
        for install in pip_installs(instructions)
        if any(
            posixpath.normpath(posixpath.join(install.workdir, t.split("[", 1)[0])) == project_dir
            for t in install.targets
            if t.startswith((".", "/"))
        )
    ]
    assert project_installs, f"no pip install of the project directory {project_dir}"
    assert torch_install.index < min(i.index for i in project_installs), (
        "torch must be installed before the project, or pip resolves torch itself "
        "(from PyPI: the CUDA build)"
    )
    for index, ins in enumerate(instructions):
        if ins.keyword in ("COPY", "ADD") and "from" not in split_flags(ins.value)[0]:
            assert index > torch_install.index, (
                f"line {ins.line}: {ins.keyword} before the torch layer: every source "
                "change would reinstall torch"
            )
    return Version(specs[0].version)


def check_torch_pin_satisfies_pyproject(stack: Stack, pinned: Version) -> None:
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((stack.root / "pyproject.toml").read_text())["project"]
    torch_reqs = [Requirement(d) for d in project["dependencies"] if Requirement(d).name == "torch"]
    assert torch_reqs, "pyproject.toml does not depend on torch"
    for requirement in torch_reqs:
        assert requirement.specifier.contains(pinned, prereleases=True), (
            f"the image's torch=={pinned} does not satisfy pyproject's {requirement}: "
            "pip would replace it with a (CUDA) torch from PyPI"
        )


def check_entrypoint_and_user(stack: Stack) -> None:
    _, _, instructions = stack.job_build()
    args = dockerfile_cmd(instructions)
    assert args[0] == "torch-otel", f"the image runs {args[0]!r}, not torch-otel"
    last_from = max(i for i, ins in enumerate(instructions) if ins.keyword == "FROM")
    users = [ins.value for ins in instructions[last_from:] if ins.keyword == "USER"]
    assert users, "the image runs as root (no USER)"
    user = users[-1].split(":", 1)[0]
    assert user not in ("root", "0"), f"the image runs as root (USER {users[-1]})"
    for name, job in stack.jobs().items():
        command = job_command(stack, job)
        assert command and command[0] == "torch-otel", f"{name} runs {command}, not torch-otel"


def check_exporter_profiles(stack: Stack) -> None:
    """Every profile the job names exists as exporters/<name>.yaml."""
    _, _, instructions = stack.job_build()
    available = sorted(p.stem for p in (stack.root / "exporters").glob("*.yaml"))
    named = {"Dockerfile CMD": exporter_flag(dockerfile_cmd(instructions))}
    for name, job in stack.jobs().items():
        named[f"{name} command"] = exporter_flag(job_command(stack, job))
        named[f"{name} TORCH_OTEL_EXPORTER"] = service_env(job).get("TORCH_OTEL_EXPORTER")
    named = {where: profile for where, profile in named.items() if profile}
    assert named, "neither compose nor the Dockerfile names an exporter profile"
    for where, profile in named.items():
        assert profile in available, (
            f"{where}: exporter profile {profile!r} is not in exporters/ ({available})"
        )


def check_job_waits_for_collector(stack: Stack) -> None:
    """Each job starts after the collector; a readiness probe hits the health_check port."""
    collector_name, _ = stack.collector()
    services = stack.services

    def dependencies(name: str) -> dict[str, str]:
        depends = services[name].get("depends_on") or {}
        if isinstance(depends, list):
            return dict.fromkeys(depends, "service_started")
        return {
            dep: (spec or {}).get("condition", "service_started") for dep, spec in depends.items()
        }

    for job_name in stack.jobs():
        seen, todo = set(), [job_name]
        while todo:
            for dep in dependencies(todo.pop()):
                assert dep in services, f"depends_on names unknown service {dep!r}"
                if dep not in seen:
                    seen.add(dep)
                    todo.append(dep)
        assert collector_name in seen, f"{job_name} does not depend on {collector_name}"

    extensions = stack.collector_config.get("extensions") or {}
    health = next(
        (cfg or {} for eid, cfg in extensions.items() if component_type(eid) == "health_check"),
        None,
    )
    probes = {
        name: svc
        for name, svc in services.items()
        if name != collector_name
        and "build" not in svc
        and f"//{collector_name}:" in " ".join(as_args(svc.get("command")))
    }
    for name in probes:
        assert health is not None, f"{name} probes the collector, which has no health_check"
        _, port = host_port(str(health.get("endpoint", "localhost:13133")))
        path = health.get("path", "/")
        urls = re.findall(
            rf"https?://{re.escape(collector_name)}:[^\s\"']+",
            " ".join(as_args(services[name].get("command"))),
        )
        for url in urls:
            parts = urlsplit(url)
            assert parts.port == port and (parts.path or "/") == path, (
                f"{name} probes {url}, but health_check serves :{port}{path}"
            )
        for job_name in stack.jobs():
            assert dependencies(job_name).get(name) == "service_completed_successfully", (
                f"{job_name} must wait for {name} with condition service_completed_successfully"
            )


def check_readme(stack: Stack, output_file: Path) -> None:
    readme = (stack.root / "docker" / "README.md").read_text()
    relative = output_file.relative_to(stack.root.resolve()).as_posix()
    assert f"torch-otel summary {relative}" in readme, (
        f"docker/README.md does not show `torch-otel summary {relative}`"
    )
    assert "docker compose -f docker/compose.yaml up --build" in readme


def check_metrics_stack(stack: Stack) -> set[str]:
    """Prometheus scrapes the collector; Grafana's dashboards query what the bridge emits."""
    from infra import docker_metrics

    docker_metrics.check_prometheus_scrapes_collector(stack)
    used: set[str] = set()
    for dashboard in docker_metrics.check_grafana_provisioning(stack):
        used |= docker_metrics.check_dashboard_queries(dashboard)
    return used


def run_all_checks(stack: Stack) -> None:
    check_metrics_stack(stack)
    check_collector_pipelines(stack.collector_config)
    check_ports_and_endpoints(stack)
    check_config_mount(stack)
    output = check_output_mount(stack)
    check_images_pinned(stack)
    check_copy_sources(stack)
    check_torch_pin_satisfies_pyproject(stack, check_install_order(stack))
    check_entrypoint_and_user(stack)
    check_exporter_profiles(stack)
    check_job_waits_for_collector(stack)
    check_readme(stack, output)


# --------------------------------------------------------------------------- #
# Tests of the real files
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="module")
def stack() -> Stack:
    return load_stack(REPO)


def _yaml_files() -> list[Path]:
    return sorted({*DOCKER_DIR.glob("*.yaml"), *DOCKER_DIR.glob("*.yml")})


def test_docker_dir_has_yaml() -> None:
    names = {p.name for p in _yaml_files()}
    assert {"compose.yaml", "otel-collector.yaml"} <= names


@pytest.mark.parametrize("path", _yaml_files(), ids=lambda p: p.name)
def test_yaml_parses(path: Path) -> None:
    assert isinstance(yaml.safe_load(path.read_text()), dict), f"{path} is not a mapping"


def test_collector_pipelines(stack: Stack) -> None:
    check_collector_pipelines(stack.collector_config)


def test_collector_grpc_keeps_default_message_limit(stack: Stack) -> None:
    # torch-otel sizes its requests for the default 4 MiB; raising it here would
    # hide an oversized request that a real backend then rejects.
    grpc = stack.collector_config["receivers"]["otlp"]["protocols"]["grpc"]
    assert "max_recv_msg_size_mib" not in (grpc or {})


def test_ports_and_endpoints(stack: Stack) -> None:
    check_ports_and_endpoints(stack)


def test_collector_reads_checked_config(stack: Stack) -> None:
    check_config_mount(stack)


def test_output_mount(stack: Stack) -> None:
    output = check_output_mount(stack)
    assert output == (REPO / "docker" / "output" / "torch-otel.jsonl").resolve()


def test_images_pinned(stack: Stack) -> None:
    check_images_pinned(stack)


def test_copy_sources_exist(stack: Stack) -> None:
    check_copy_sources(stack)


def test_torch_installed_first_from_cpu_index(stack: Stack) -> None:
    pinned = check_install_order(stack)
    check_torch_pin_satisfies_pyproject(stack, pinned)


def test_entrypoint_and_user(stack: Stack) -> None:
    check_entrypoint_and_user(stack)


def test_exporter_profiles_exist(stack: Stack) -> None:
    check_exporter_profiles(stack)


def test_job_waits_for_collector(stack: Stack) -> None:
    check_job_waits_for_collector(stack)


def test_readme(stack: Stack) -> None:
    check_readme(stack, check_output_mount(stack))


def test_dashboard_queries_only_metrics_the_bridge_emits(stack: Stack) -> None:
    from torch_otel import names

    used = check_metrics_stack(stack)
    health = {
        names.METRIC_COMPILES,
        names.METRIC_RECOMPILES,
        names.METRIC_GRAPH_BREAKS,
        names.METRIC_DURATION,
        names.METRIC_IN_FLIGHT,
    }
    assert health <= used, f"no panel shows {sorted(health - used)}"


def test_prometheus_names_follow_the_collector() -> None:
    from infra.docker_metrics import emitted_series

    series = emitted_series()
    assert series["torch_compile_compiles_total"] == "torch.compile.compiles"
    assert series["torch_compile_duration_seconds_bucket"] == "torch.compile.duration"
    assert series["torch_compile_in_flight"] == "torch.compile.in_flight"


# --------------------------------------------------------------------------- #
# Helper unit tests
# --------------------------------------------------------------------------- #


def test_parse_dockerfile_continuations_and_comments() -> None:
    text = (
        "# syntax=docker/dockerfile:1\n"
        "FROM python:3.11.17-slim AS base\n"
        "RUN apt-get update \\\n"
        "    # a comment inside the continuation\n"
        "    && apt-get install -y g++\n"
        "\n"
        'CMD ["torch-otel", "demo"]\n'
    )
    parsed = parse_dockerfile(text)
    assert [(i.keyword, i.line) for i in parsed] == [("FROM", 2), ("RUN", 3), ("CMD", 7)]
    assert parsed[1].value == "apt-get update && apt-get install -y g++"
    with pytest.raises(AssertionError, match="continuation"):
        parse_dockerfile("FROM a:1.2.3\nRUN true \\\n")


@pytest.mark.parametrize(
    ("reference", "pinned"),
    [
        ("python:3.11.17-slim-trixie", True),
        ("otel/opentelemetry-collector-contrib:0.160.0", True),
        ("registry:5000/img@sha256:" + "a" * 64, True),
        ("python:3.11-slim", False),
        ("otel/opentelemetry-collector-contrib:latest", False),
        ("otel/opentelemetry-collector-contrib", False),
        ("registry:5000/img", False),
    ],
)
def test_assert_pinned(reference: str, pinned: bool) -> None:
    if pinned:
        assert_pinned(reference, "test")
    else:
        with pytest.raises(AssertionError):
            assert_pinned(reference, "test")


def test_interpolate_and_ports() -> None:
    assert interpolate("${HOST_UID:-1000}:${GID-7}$${X}") == "1000:7${X}"
    svc = {"ports": ["4317:4317", "127.0.0.1:4318:4318/tcp", 9000, {"target": 13133}]}
    assert container_ports(svc) == {4317, 4318, 9000, 13133}


def test_dockerignore_matching() -> None:
    rules = [(False, _ignore_regex(p)) for p in (".venv", "**/__pycache__", "docker/output")]
    rules.append((True, _ignore_regex("docker/output/keep")))
    assert is_ignored(".venv/lib/torch", rules)
    assert is_ignored("src/torch_otel/__pycache__/x.pyc", rules)
    assert is_ignored("docker/output/x.jsonl", rules)
    assert not is_ignored("docker/output/keep", rules)
    assert not is_ignored("src/torch_otel/cli.py", rules)


# --------------------------------------------------------------------------- #
# Negative tests: the checks fail on broken copies
# --------------------------------------------------------------------------- #


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    """A copy of the files the checks read, for a test to break."""
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.jsonl")
    for name in ("docker", "exporters", "src"):
        shutil.copytree(REPO / name, tmp_path / name, ignore=skip)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, tmp_path / name)
    run_all_checks(load_stack(tmp_path))  # the unbroken copy passes
    return tmp_path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}: update this test"
    path.write_text(text.replace(old, new, 1))


def test_broken_undefined_exporter_in_pipeline(broken: Path) -> None:
    edit(
        broken / "docker/otel-collector.yaml",
        "exporters: [debug, file]\n    traces",
        "exporters: [debug, otlp_http/loki]\n    traces",
    )
    with pytest.raises(AssertionError, match=r"otlp_http/loki.*not defined"):
        check_collector_pipelines(load_stack(broken).collector_config)


def test_broken_unused_component(broken: Path) -> None:
    edit(broken / "docker/otel-collector.yaml", "\nexporters:\n", "\nexporters:\n  nop:\n")
    with pytest.raises(AssertionError, match=r"used in no pipeline: \['nop'\]"):
        check_collector_pipelines(load_stack(broken).collector_config)


def test_broken_memory_limiter_not_first(broken: Path) -> None:
    edit(
        broken / "docker/otel-collector.yaml",
        "processors: [memory_limiter, batch]",
        "processors: [batch, memory_limiter]",
    )
    with pytest.raises(AssertionError, match="memory_limiter must be the first"):
        check_collector_pipelines(load_stack(broken).collector_config)


def test_broken_extension_not_enabled(broken: Path) -> None:
    edit(broken / "docker/otel-collector.yaml", "extensions: [health_check]", "extensions: []")
    with pytest.raises(AssertionError, match=r"not listed in service\.extensions"):
        check_collector_pipelines(load_stack(broken).collector_config)


def test_broken_endpoint_port_mismatch(broken: Path) -> None:
    edit(broken / "docker/compose.yaml", "http://otel-collector:4317", "http://otel-collector:4318")
    with pytest.raises(AssertionError, match="not the grpc receiver's port 4317"):
        check_ports_and_endpoints(load_stack(broken))


def test_broken_endpoint_host(broken: Path) -> None:
    edit(broken / "docker/compose.yaml", "http://otel-collector:4317", "http://localhost:4317")
    with pytest.raises(AssertionError, match="not the collector service"):
        check_ports_and_endpoints(load_stack(broken))


def test_broken_receiver_port_not_published(broken: Path) -> None:
    edit(broken / "docker/compose.yaml", '- "4318:4318"', '- "14318:14318"')
    with pytest.raises(AssertionError, match="http receiver port 4318"):
        check_ports_and_endpoints(load_stack(broken))


def test_broken_receiver_on_localhost(broken: Path) -> None:
    edit(
        broken / "docker/otel-collector.yaml", "endpoint: 0.0.0.0:4317", "endpoint: localhost:4317"
    )
    with pytest.raises(AssertionError, match="other containers cannot reach"):
        check_ports_and_endpoints(load_stack(broken))


def test_broken_file_exporter_outside_mount(broken: Path) -> None:
    edit(
        broken / "docker/otel-collector.yaml",
        "path: /output/torch-otel.jsonl",
        "path: /tmp/torch-otel.jsonl",
    )
    with pytest.raises(AssertionError, match="in no volume"):
        check_output_mount(load_stack(broken))


def test_broken_output_dir_missing(broken: Path) -> None:
    shutil.rmtree(broken / "docker/output")
    with pytest.raises(AssertionError, match="does not exist"):
        check_output_mount(load_stack(broken))


def test_broken_collector_latest(broken: Path) -> None:
    edit(
        broken / "docker/compose.yaml",
        "opentelemetry-collector-contrib:0.160.0",
        "opentelemetry-collector-contrib:latest",
    )
    with pytest.raises(AssertionError, match="floating :latest"):
        check_images_pinned(load_stack(broken))


def test_broken_base_image_floating(broken: Path) -> None:
    edit(broken / "docker/Dockerfile", "FROM python:3.11.17-slim-trixie", "FROM python:3.11-slim")
    with pytest.raises(AssertionError, match=r"exact x\.y\.z"):
        check_images_pinned(load_stack(broken))


def test_broken_copy_source_missing(broken: Path) -> None:
    edit(
        broken / "docker/Dockerfile",
        "COPY exporters ./exporters",
        "COPY exporters ./exporters\nCOPY profiles ./profiles",
    )
    with pytest.raises(AssertionError, match="'profiles' does not exist"):
        check_copy_sources(load_stack(broken))


def test_broken_context_not_repo_root(broken: Path) -> None:
    # With the docker/ directory as context, the Dockerfile is not at
    # docker/Dockerfile inside it.
    edit(broken / "docker/compose.yaml", "context: ..", "context: .")
    with pytest.raises(AssertionError, match="does not exist relative to the build context"):
        check_copy_sources(load_stack(broken))


def test_broken_copy_source_ignored(broken: Path) -> None:
    (broken / "docker/Dockerfile.dockerignore").write_text(".venv\n.git\nsrc\n")
    with pytest.raises(AssertionError, match="excluded by the dockerignore"):
        check_copy_sources(load_stack(broken))


def test_broken_project_installed_before_torch(broken: Path) -> None:
    dockerfile = broken / "docker/Dockerfile"
    torch_line = f"RUN pip install --index-url {CPU_INDEX} torch==2.13.0\n"
    edit(dockerfile, torch_line, "")
    edit(dockerfile, "RUN pip install /src\n", "RUN pip install /src\n" + torch_line)
    with pytest.raises(AssertionError, match="before the project"):
        check_install_order(load_stack(broken))


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("torch==2.13.0", "torch>=2.13", "pinned exactly"),
        (f"--index-url {CPU_INDEX}", "", "CPU build"),
        (
            f"--index-url {CPU_INDEX}",
            f"--index-url {CPU_INDEX} --extra-index-url https://pypi.org/simple",
            "extra-index-url",
        ),
    ],
)
def test_broken_torch_install(broken: Path, old: str, new: str, message: str) -> None:
    edit(broken / "docker/Dockerfile", old, new)
    with pytest.raises(AssertionError, match=message):
        check_install_order(load_stack(broken))


def test_broken_torch_pin_outside_pyproject_range(broken: Path) -> None:
    edit(broken / "docker/Dockerfile", "torch==2.13.0", "torch==2.5.1")
    stack = load_stack(broken)
    with pytest.raises(AssertionError, match="does not satisfy"):
        check_torch_pin_satisfies_pyproject(stack, check_install_order(stack))


def test_broken_cmd_not_torch_otel(broken: Path) -> None:
    edit(
        broken / "docker/Dockerfile",
        'CMD ["torch-otel", "demo", "--exporter", "otlp-grpc"]',
        'CMD ["python", "train.py"]',
    )
    with pytest.raises(AssertionError, match="not torch-otel"):
        check_entrypoint_and_user(load_stack(broken))


def test_broken_unknown_profile(broken: Path) -> None:
    edit(
        broken / "docker/compose.yaml",
        "TORCH_OTEL_EXPORTER: otlp-grpc",
        "TORCH_OTEL_EXPORTER: otlp-grcp",
    )
    with pytest.raises(AssertionError, match="'otlp-grcp' is not in exporters/"):
        check_exporter_profiles(load_stack(broken))


def test_broken_profile_and_flag_disagree(broken: Path) -> None:
    edit(
        broken / "docker/compose.yaml",
        "TORCH_OTEL_EXPORTER: otlp-grpc",
        "TORCH_OTEL_EXPORTER: otlp-http",
    )
    with pytest.raises(AssertionError, match="disagree"):
        check_ports_and_endpoints(load_stack(broken))


def test_broken_probe_wrong_port(broken: Path) -> None:
    edit(
        broken / "docker/compose.yaml",
        "http://otel-collector:13133/",
        "http://otel-collector:13134/",
    )
    with pytest.raises(AssertionError, match="health_check serves :13133/"):
        check_job_waits_for_collector(load_stack(broken))


def test_broken_dashboard_queries_an_unknown_metric(broken: Path) -> None:
    dashboard = broken / "docker" / "grafana" / "dashboards" / "torch-compile-health.json"
    edit(dashboard, "torch_compile_recompiles_total", "torch_compile_recompilations_total")
    with pytest.raises(AssertionError, match="torch_compile_recompilations_total"):
        run_all_checks(load_stack(broken))


def test_broken_dashboard_groups_by_an_unknown_label(broken: Path) -> None:
    dashboard = broken / "docker" / "grafana" / "dashboards" / "torch-compile-health.json"
    edit(dashboard, "sum by (torch_compile_phase)", "sum by (compile_phase)")
    with pytest.raises(AssertionError, match="unknown label compile_phase"):
        run_all_checks(load_stack(broken))


def test_broken_prometheus_scrapes_the_wrong_port(broken: Path) -> None:
    edit(broken / "docker" / "prometheus.yml", "otel-collector:8889", "otel-collector:8888")
    with pytest.raises(AssertionError, match="not the collector's exporter"):
        run_all_checks(load_stack(broken))


def test_broken_prometheus_exporter_not_in_the_metrics_pipeline(broken: Path) -> None:
    edit(broken / "docker" / "otel-collector.yaml", "[debug, file, prometheus]", "[debug, file]")
    with pytest.raises(AssertionError, match="no metrics pipeline exports to prometheus"):
        run_all_checks(load_stack(broken))


def test_broken_datasource_url(broken: Path) -> None:
    source = broken / "docker" / "grafana" / "provisioning" / "datasources" / "prometheus.yaml"
    edit(source, "http://prometheus:9090", "http://localhost:9090")
    with pytest.raises(AssertionError, match="points at http://localhost:9090"):
        run_all_checks(load_stack(broken))


def test_broken_grafana_image_floating(broken: Path) -> None:
    edit(broken / "docker" / "compose.yaml", "grafana/grafana:12.3.1", "grafana/grafana:latest")
    with pytest.raises(AssertionError, match="latest"):
        run_all_checks(load_stack(broken))
