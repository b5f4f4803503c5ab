"""YAML configuration loading (!secret, !include, !env_var) and schema errors with file and line."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

import voluptuous as vol
import yaml

from hub.const import CONFIG_FILE
from hub.exceptions import HubError

try:
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # PyYAML built without libyaml
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]

SECRETS_FILE: Final = "secrets.yaml"

_MAX_GOT_LENGTH: Final = 60
_MERGE_TAG: Final = "tag:yaml.org,2002:merge"
_SECRET_TAG: Final = "!secret"
_EXTRA_KEYS: Final = "extra keys not allowed"  # voluptuous raises a bare Invalid


class ConfigError(HubError):
    """A configuration problem, located by file, line and dotted key."""

    def __init__(
        self,
        message: str,
        file: str | None = None,
        line: int | None = None,
        key: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.key = key

    def __str__(self) -> str:
        location = None
        if self.file is not None:
            location = self.file if self.line is None else f"{self.file}:{self.line}"
        elif self.line is not None:
            location = f"line {self.line}"
        return ": ".join(part for part in (location, self.key, self.message) if part)


class NodeDict(dict[Any, Any]):
    """A mapping that remembers its file, its line and the line of each key."""

    __slots__ = ("__config_file__", "__line__", "key_lines", "secrets")

    def __init__(self, items: Any = (), file: str | None = None, line: int | None = None) -> None:
        # The first argument is the content, as for dict: voluptuous rebuilds via type(data).
        super().__init__(items)
        self.__config_file__ = file
        self.__line__ = line
        self.key_lines: dict[Any, int] = {}
        # Key -> secret name, for values of any type that came from !secret.
        self.secrets: dict[Any, str] = {}


class NodeList(list[Any]):
    """A sequence that remembers its file, its line and the line of each item."""

    __slots__ = ("__config_file__", "__line__", "item_lines", "secrets")

    def __init__(self, items: Any = (), file: str | None = None, line: int | None = None) -> None:
        # The first argument is the content, as for list: voluptuous rebuilds via type(data).
        super().__init__(items)
        self.__config_file__ = file
        self.__line__ = line
        self.item_lines: list[int] = []
        self.secrets: dict[int, str] = {}


class NodeStr(str):
    """A string that remembers its file and line, and the secret it came from if any."""

    # str subclasses cannot have non-empty __slots__.
    __config_file__: str | None
    __line__: int | None
    __secret__: str | None

    def __new__(
        cls,
        value: str = "",
        file: str | None = None,
        line: int | None = None,
        secret: str | None = None,
    ) -> NodeStr:
        self = super().__new__(cls, value)
        self.__config_file__ = file
        self.__line__ = line
        self.__secret__ = secret
        return self


@dataclass(slots=True)
class _LoadContext:
    """What one load shares across the files it reads."""

    config_dir: Path
    secrets: dict[Path, dict[Any, Any] | None] = field(default_factory=dict)
    loading: list[Path] = field(default_factory=list)

    def display(self, path: Path) -> str:
        """Return path relative to the config dir when it is inside it."""
        try:
            return str(path.relative_to(self.config_dir))
        except ValueError:
            return str(path)


class HubLoader(_BaseLoader):
    """A safe YAML loader that records file and line and knows the hub's tags."""

    def __init__(self, stream: str, path: Path, context: _LoadContext) -> None:
        super().__init__(stream)
        self.path = path
        self.context = context
        self.display = context.display(path)

    def error(self, message: str, node: yaml.Node) -> ConfigError:
        """Return a ConfigError located at node."""
        return ConfigError(message, self.display, node.start_mark.line + 1)


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _construct_str(loader: HubLoader, node: yaml.ScalarNode) -> NodeStr:
    return NodeStr(loader.construct_scalar(node), loader.display, _line(node))


def _construct_seq(loader: HubLoader, node: yaml.SequenceNode) -> NodeList:
    result = NodeList((), loader.display, _line(node))
    for index, item_node in enumerate(node.value):
        result.append(loader.construct_object(item_node, deep=True))
        result.item_lines.append(_line(item_node))
        if item_node.tag == _SECRET_TAG:
            result.secrets[index] = item_node.value
    return result


def _construct_map(loader: HubLoader, node: yaml.MappingNode) -> NodeDict:
    result = NodeDict((), loader.display, _line(node))
    own_count = sum(1 for key_node, _ in node.value if key_node.tag != _MERGE_TAG)
    loader.flatten_mapping(node)
    # Merged pairs come first and may be overridden; only explicit keys must be unique.
    first_own = len(node.value) - own_count
    own_keys: set[Any] = set()
    for index, (key_node, value_node) in enumerate(node.value):
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise loader.error("a mapping key must be a scalar", key_node) from None
        if index >= first_own:
            if key in own_keys:
                first = result.key_lines[key]
                raise loader.error(
                    f"duplicate key {key!r}, first defined on line {first}", key_node
                )
            own_keys.add(key)
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = _line(key_node)
        if value_node.tag == _SECRET_TAG:
            result.secrets[key] = value_node.value
    return result


def _construct_secret(loader: HubLoader, node: yaml.ScalarNode) -> Any:
    name = loader.construct_scalar(node)
    context = loader.context
    directory = loader.path.parent
    found_file = False
    while True:
        secrets = _secrets_in(directory, context)
        if secrets is not None:
            found_file = True
            if name in secrets:
                value = secrets[name]
                if isinstance(value, str):
                    # A copy, so each use points at its own !secret line.
                    return NodeStr(value, loader.display, _line(node), name)
                return value
        if directory == context.config_dir or context.config_dir not in directory.parents:
            break
        directory = directory.parent
    if found_file:
        raise loader.error(f"secret '{name}' is not defined in {SECRETS_FILE}", node)
    raise loader.error(f"no {SECRETS_FILE} found for secret '{name}'", node)


def _secrets_in(directory: Path, context: _LoadContext) -> dict[Any, Any] | None:
    """Return the secrets in directory's secrets.yaml, None if it has none; loaded once."""
    if directory in context.secrets:
        return context.secrets[directory]
    path = directory / SECRETS_FILE
    # Set before loading so a !secret inside secrets.yaml looks further up, not at itself.
    context.secrets[directory] = None
    if not path.is_file():
        return None
    secrets = _load_file(path, context)
    if not isinstance(secrets, dict):
        raise ConfigError(
            f"{SECRETS_FILE} must be a mapping of names to values", context.display(path)
        )
    context.secrets[directory] = secrets
    return secrets


def _construct_include(loader: HubLoader, node: yaml.ScalarNode) -> Any:
    name = loader.construct_scalar(node)
    return _include(loader, node, loader.path.parent / name, name)


def _construct_include_dir_named(loader: HubLoader, node: yaml.ScalarNode) -> NodeDict:
    name = loader.construct_scalar(node)
    directory = _normalize(loader.path.parent / name)
    if not directory.is_dir():
        raise loader.error(f"included directory not found: {name}", node)
    result = NodeDict((), loader.display, _line(node))
    for path in _yaml_files(directory):
        if path.stem in result:
            raise loader.error(f"two files named {path.stem}.yaml in {name}", node)
        result[path.stem] = _include(loader, node, path, loader.context.display(path))
        # Entries have no line of their own; point at the tag that brought them in.
        result.key_lines[path.stem] = _line(node)
    return result


def _yaml_files(directory: Path) -> Iterator[Path]:
    """Yield the *.yaml files under directory, sorted, skipping hidden ones and secrets.yaml."""
    for path in sorted(directory.rglob("*.yaml")):
        relative = path.relative_to(directory)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.name != SECRETS_FILE and path.is_file():
            yield path


def _include(loader: HubLoader, node: yaml.Node, path: Path, name: str) -> Any:
    path = _normalize(path)
    if not path.is_file():
        raise loader.error(f"included file not found: {name}", node)
    if path in loader.context.loading:
        raise loader.error(f"include loop: {name} is already being loaded", node)
    return _load_file(path, loader.context)


def _construct_env_var(loader: HubLoader, node: yaml.ScalarNode) -> NodeStr:
    name, _, default = loader.construct_scalar(node).strip().partition(" ")
    if not name:
        raise loader.error("!env_var needs a variable name", node)
    value = os.environ.get(name)
    if value is None:
        if not default:
            raise loader.error(f"environment variable {name} is not set", node)
        value = default.strip()
    return NodeStr(value, loader.display, _line(node))


HubLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
HubLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)
HubLoader.add_constructor("tag:yaml.org,2002:str", _construct_str)
HubLoader.add_constructor(_SECRET_TAG, _construct_secret)
HubLoader.add_constructor("!include", _construct_include)
HubLoader.add_constructor("!include_dir_named", _construct_include_dir_named)
HubLoader.add_constructor("!env_var", _construct_env_var)


def _normalize(path: Path) -> Path:
    return Path(os.path.abspath(path))


def _load_file(path: Path, context: _LoadContext) -> Any:
    """Load one YAML file; an empty file is an empty NodeDict."""
    display = context.display(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read file: {exc}", display) from exc
    context.loading.append(path)
    loader = HubLoader(text, path, context)
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = None if mark is None else mark.line + 1
        message = ", ".join(text for text in (exc.context, exc.problem) if text)
        raise ConfigError(message or "invalid YAML", display, line) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", display) from exc
    finally:
        loader.dispose()
        context.loading.pop()
    return NodeDict((), display, 1) if data is None else data


def load_yaml(path: Path, config_dir: Path | None = None) -> Any:
    """Load a YAML file with the hub's tags; raise ConfigError on the first problem."""
    path = _normalize(path)
    config_dir = path.parent if config_dir is None else _normalize(config_dir)
    return _load_file(path, _LoadContext(config_dir))


def load_config_file(config_dir: Path) -> NodeDict:
    """Load configuration.yaml from config_dir."""
    path = config_dir / CONFIG_FILE
    if not path.is_file():
        raise ConfigError(f"no {CONFIG_FILE} in {config_dir}", CONFIG_FILE)
    config = load_yaml(path, config_dir)
    if not isinstance(config, NodeDict):
        file, line = _own_location(config, CONFIG_FILE, None)
        raise ConfigError(
            f"the top level must be a mapping, got {type(config).__name__}", file, line
        )
    return config


def find_line(root: Any, path: Sequence[Any]) -> tuple[str | None, int | None]:
    """Return the file and line of the deepest node along path that has one."""
    file, line = _own_location(root, None, None)
    node = root
    for part in path:
        file, line = _own_location(node, file, line)
        if not _contains(node, part):
            break
        # The key's line, not the value's: a bad value is reported where its key is written.
        if isinstance(node, NodeDict):
            file, line = node.__config_file__, node.key_lines.get(part, line)
        elif isinstance(node, NodeList) and part < len(node.item_lines):
            file, line = node.__config_file__, node.item_lines[part]
        node = node[part]
    return file, line


def _own_location(node: Any, file: str | None, line: int | None) -> tuple[str | None, int | None]:
    if isinstance(node, NodeDict | NodeList | NodeStr) and node.__line__ is not None:
        return node.__config_file__, node.__line__
    return file, line


def _contains(node: Any, part: Any) -> bool:
    """Return whether node is a mapping holding key part or a list holding index part."""
    if isinstance(node, dict):
        try:
            return part in node
        except TypeError:
            return False
    if isinstance(node, list) and isinstance(part, int) and not isinstance(part, bool):
        return 0 <= part < len(node)
    return False


def humanize_error(value: Any, error: vol.Invalid) -> str:
    """Return what error expected and what value held there, hiding secrets."""
    if isinstance(error, vol.MultipleInvalid):
        return "; ".join(humanize_error(value, sub) for sub in error.errors)
    message: str = error.msg
    found, got, secret = _walk(value, _path(error))
    if found and secret is None and isinstance(got, str | int | float) and repr(got) in message:
        # The validator already said what it got (e.g. "unknown time zone 'Mars/X'").
        return message
    if error.error_type:
        message += f" for {error.error_type}"
    if secret is not None:
        shown = f"<secret {secret}>"
        # A validator's own message may quote the value; it must not leak a secret.
        if isinstance(got, str | int | float) and str(got):
            message = message.replace(repr(got), shown).replace(str(got), shown)
    else:
        shown = repr(got)
        if len(shown) > _MAX_GOT_LENGTH:
            shown = shown[: _MAX_GOT_LENGTH - 3] + "..."
    if not found or isinstance(error, vol.RequiredFieldInvalid) or error.msg == _EXTRA_KEYS:
        return message
    return f"{message}, got {shown}"


def _walk(value: Any, path: Sequence[Any]) -> tuple[bool, Any, str | None]:
    """Return whether path exists in value, what is there, and the secret it came from."""
    node = value
    secret = _secret_of(node)
    for part in path:
        if isinstance(node, NodeDict | NodeList):
            secret = secret or node.secrets.get(part)
        if not _contains(node, part):
            return False, None, secret
        node = node[part]
        secret = secret or _secret_of(node)
    return True, node, secret


def _secret_of(node: Any) -> str | None:
    return node.__secret__ if isinstance(node, NodeStr) else None


def _path(error: vol.Invalid) -> list[Any]:
    """Return error's path with voluptuous markers replaced by the keys they stand for."""
    return [part.schema if isinstance(part, vol.Marker) else part for part in error.path]


def _dotted(key: str, path: Sequence[Any]) -> str:
    rendered = key
    for part in path:
        is_index = isinstance(part, int) and not isinstance(part, bool)
        rendered += f"[{part}]" if is_index else f".{part}"
    return rendered.removeprefix(".")


def _flatten(error: vol.Invalid) -> Iterator[vol.Invalid]:
    if isinstance(error, vol.MultipleInvalid):
        for sub in error.errors:
            yield from _flatten(sub)
    else:
        yield error


def validate_section(
    schema: Callable[[Any], Any], value: Any, key: str, parent: Any = None
) -> tuple[Any, list[ConfigError]]:
    """Validate the section under top-level key: (validated, []) or (None, errors)."""
    try:
        return schema(value), []
    except vol.Invalid as exc:
        invalid = exc
    errors = []
    for error in _flatten(invalid):
        path = _path(error)
        file, line = find_line(value, path)
        if line is None and parent is not None:
            file, line = find_line(parent, [key])
        errors.append(ConfigError(humanize_error(value, error), file, line, _dotted(key, path)))
    return None, errors


@dataclass(slots=True)
class HubConfig:
    """The validated configuration of a hub."""

    name: str = "evhub"
    time_zone: str = "UTC"
    http: dict[str, Any] | None = None
    integrations: dict[str, Any] = field(default_factory=dict)
    errors: list[ConfigError] = field(default_factory=list)
    fatal: bool = False


_Loaded = TypeVar("_Loaded")


def load_data_files(
    paths: Iterable[Path],
    validate: Callable[[Any], Any],
    build: Callable[[str, Any], _Loaded],
    what: str = "profile",
) -> tuple[dict[str, _Loaded], list[ConfigError]]:
    """Load YAML data files (device profiles...) keyed by file stem: each validated, then
    built; a bad file is a ConfigError with file, line and key, a stem seen twice one too,
    and the others still load."""
    found: dict[str, _Loaded] = {}
    errors: list[ConfigError] = []
    for path in map(Path, paths):
        try:
            data = load_yaml(path)
        except ConfigError as err:
            errors.append(err)
            continue
        validated, problems = validate_section(validate, data, path.stem)
        if problems:
            errors.append(problems[0])
            continue
        if path.stem in found:
            errors.append(ConfigError(f"{what} {path.stem!r} is defined twice", str(path)))
            continue
        found[path.stem] = build(path.stem, validated)
    return found, errors
