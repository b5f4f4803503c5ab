"""YAML configuration loading (!secret, !include, !env_var), and schema errors with file, line
and keys, in plain words, naming the known key a misspelled one may have meant."""

from __future__ import annotations

import ast
import difflib
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
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
# A dot between two keys of a dotted key ("ocpp.chargers[1].id"), not one inside brackets.
_KEY_SPLIT: Final = re.compile(r"\.(?![^\[]*\])")


class ConfigError(HubError):
    """A configuration problem, located by file, line and dotted key.

    ``str()`` is the compact form logs use (``configuration.yaml:12: ocpp.port: ...``);
    ``plain()`` the one check-config prints (``configuration.yaml, line 12: ocpp → port: ...``).
    """

    def __init__(
        self,
        message: str,
        file: str | None = None,
        line: int | None = None,
        key: str | None = None,
        *,
        path: Sequence[Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.key = key
        # The keys and list indexes down to the problem, the section's key first; without
        # it plain() splits the dotted key.
        self.path = tuple(path) if path is not None else None

    def __str__(self) -> str:
        location = None
        if self.file is not None:
            location = self.file if self.line is None else f"{self.file}:{self.line}"
        elif self.line is not None:
            location = f"line {self.line}"
        return ": ".join(part for part in (location, self.key, self.message) if part)

    def plain(self) -> str:
        """Return the error for people: file, line, the keys leading to it, what is wrong."""
        location = None
        if self.file is not None:
            location = self.file if self.line is None else f"{self.file}, line {self.line}"
        elif self.line is not None:
            location = f"line {self.line}"
        return ": ".join(part for part in (location, self.keys(), self.message) if part)

    def keys(self) -> str:
        """Return the keys leading to the problem joined by arrows, list indexes in brackets."""
        if self.path is None:
            if not self.key:
                return ""
            return " → ".join(_KEY_SPLIT.split(self.key))
        parts: list[str] = []
        for part in self.path:
            if isinstance(part, int) and not isinstance(part, bool) and parts:
                parts[-1] += f"[{part}]"
            else:
                parts.append(str(part))
        return " → ".join(parts)


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
        raise yaml_syntax_error(exc, display, text) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", display) from exc
    finally:
        loader.dispose()
        context.loading.pop()
    return NodeDict((), display, 1) if data is None else data


# What a construct the parser was inside is called for people, and what usually went wrong
# when it ended badly: yaml's context says where the construct began.
_YAML_CONTEXTS: Final = {
    "while parsing a flow sequence": ("the list in [brackets]", "is not closed or lacks a ','"),
    "while parsing a flow mapping": ("the mapping in {braces}", "is not closed or lacks a ','"),
    "while scanning a quoted scalar": ("the quoted text", "has no closing quote"),
    "while parsing a block mapping": ("the mapping", "has a key indented differently"),
    "while parsing a block collection": ("the list", "has an item indented differently"),
    "while scanning a block scalar": ("the block of text", "is not well formed"),
}
_YAML_PROBLEMS: Final = (
    ("'<stream end>'", "the end of the file"),
    ("end of stream", "end of the file"),
    ("<block end>", "the end of the block"),
    ("'<block mapping start>'", "a key"),
)


def yaml_syntax_error(exc: yaml.MarkedYAMLError, display: str, text: str = "") -> ConfigError:
    """Return a YAML syntax error located where parsing failed, naming where the construct
    it was inside (a bracket, a quote, an indented block) began."""
    problem = exc.problem or "invalid YAML"
    for jargon, plain in _YAML_PROBLEMS:
        problem = problem.replace(jargon, plain)
    mark, begun = exc.problem_mark, exc.context_mark
    if mark is None:
        mark, begun = begun, None
    line_count = len(text.splitlines())
    line = None if mark is None else mark.line + 1
    if mark is None:
        message = "YAML syntax error"
    elif text and mark.line >= line_count:
        # Past the last line: the file ended inside the construct.
        line = max(line_count, 1)
        message = "YAML syntax error at the end of the file"
    else:
        message = f"YAML syntax error at column {mark.column + 1}"
    message += f": {problem}"
    if mark is not None and _char_at(text, mark.line, mark.column) == "\t":
        message += " (a tab: YAML is indented with spaces only)"
    elif "mapping values are not allowed" in problem:
        message += " (a value with ': ' in it needs quotes)"
    elif begun is not None and (
        mark is None or (begun.line, begun.column) != (mark.line, mark.column)
    ):
        what, fault = _YAML_CONTEXTS.get(exc.context or "", ("", ""))
        where = f"line {begun.line + 1}, column {begun.column + 1}"
        if what:
            message += f"; {what} that begins on {where} {fault}"
        elif exc.context:
            message += f" ({exc.context} that begins on {where})"
    return ConfigError(message, display, line)


def _char_at(text: str, line: int, column: int) -> str:
    lines = text.splitlines()
    if 0 <= line < len(lines) and 0 <= column < len(lines[line]):
        return lines[line][column]
    return ""


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


class UnknownKeyInvalid(vol.Invalid):
    """An unknown key, its message already saying which known key may have been meant."""

    def __init__(self, message: str, path: list[Any] | None = None, meant: str | None = None):
        super().__init__(message, path)
        self.meant = meant


def did_you_mean(word: Any, candidates: Iterable[Any]) -> str | None:
    """Return the candidate closest to word (a misspelling of it), if one is close enough."""
    names = {str(candidate) for candidate in candidates}
    text = str(word)
    for name in sorted(names):
        if name.lower() == text.lower():
            return name
    found = difflib.get_close_matches(text, sorted(names), n=1, cutoff=0.6)
    return found[0] if found else None


def unknown_key_message(key: Any, known: Iterable[Any] | None) -> str:
    """Say a key is unknown, with the known key it resembles, or the known keys if few."""
    if known is None:
        return "unknown key"
    names = sorted({str(name) for name in known})
    close = did_you_mean(key, names)
    if close is not None:
        return f"unknown key; did you mean '{close}'?"
    if names and len(names) <= _MAX_LISTED:
        return f"unknown key; expected one of: {', '.join(names)}"
    return "unknown key"


def known_keys(schema: Any, path: Sequence[Any] = ()) -> list[str] | None:
    """Return the keys schema accepts in the mapping at path, None if it cannot tell
    (a validator function decides)."""
    if isinstance(schema, vol.Schema):
        return known_keys(schema.schema, path)
    if isinstance(schema, vol.All | vol.Any):
        found: list[str] | None = None
        for validator in schema.validators:
            keys = known_keys(validator, path)
            if keys is not None:
                found = (found or []) + [key for key in keys if key not in (found or [])]
        return found
    if isinstance(schema, dict):
        if not path:
            names = (_marker_key(key) for key in schema)
            return [name for name in names if isinstance(name, str)]
        head, rest = path[0], path[1:]
        for key, sub in schema.items():
            if _marker_key(key) == head:
                return known_keys(sub, rest)
        for key, sub in schema.items():
            # A mapping of any names ({str: schema}): every name leads to the same schema.
            if isinstance(key, type) and isinstance(head, key):
                return known_keys(sub, rest)
        return None
    if isinstance(schema, list) and path and isinstance(path[0], int):
        found = None
        for item in schema:
            keys = known_keys(item, path[1:])
            if keys is not None:
                found = (found or []) + [key for key in keys if key not in (found or [])]
        return found
    return None


def _marker_key(key: Any) -> Any:
    return key.schema if isinstance(key, vol.Marker) else key


def validate_with_hints(schema: Callable[[Any], Any], value: Any) -> Any:
    """Validate value with schema; an unknown key's error names the known key it resembles
    (and stands for the "required" error of that key, when it is one)."""
    try:
        return schema(value)
    except vol.Invalid as exc:
        errors = [_hint_unknown_key(schema, error) for error in _flatten(exc)]
    meant = {
        (*_path(error)[:-1], error.meant)
        for error in errors
        if isinstance(error, UnknownKeyInvalid) and error.meant is not None
    }
    raise vol.MultipleInvalid(
        [
            error
            for error in errors
            if not (isinstance(error, vol.RequiredFieldInvalid) and tuple(_path(error)) in meant)
        ]
    )


def each_item(validator: Callable[[Any], Any]) -> Callable[[Any], list[Any]]:
    """Voluptuous validator of a list: validator on every item, every item's errors reported
    (a ``[validator]`` schema stops at the first item whose error lies deeper than the item)."""

    def validate(value: Any) -> list[Any]:
        if not isinstance(value, list):
            raise vol.Invalid("expected a list")
        items: list[Any] = []
        errors: list[vol.Invalid] = []
        for index, item in enumerate(value):
            try:
                items.append(validator(item))
            except vol.Invalid as err:
                err.prepend([index])
                errors.extend(_flatten(err))
        if errors:
            raise vol.MultipleInvalid(errors)
        return items

    return validate


def _hint_unknown_key(schema: Any, error: vol.Invalid) -> vol.Invalid:
    if error.msg != _EXTRA_KEYS or not error.path:
        return error
    path = _path(error)
    known = known_keys(schema, path[:-1])
    meant = None if known is None else did_you_mean(path[-1], known)
    return UnknownKeyInvalid(
        unknown_key_message(path[-1], known), path=list(error.path), meant=meant
    )


# voluptuous's messages, and the plain words said instead; a group of the pattern (\1) keeps
# what the message named.
_PLAIN_MESSAGES: Final = tuple(
    (re.compile(pattern), plain)
    for pattern, plain in (
        (r"^expected int$", "expected a whole number"),
        (r"^expected float$", "expected a number"),
        (r"^expected bool(ean)?$", "expected true or false"),
        (r"^expected str$", "expected text"),
        (r"^expected (list|a list)$", "expected a list"),
        (r"^expected (dict|a dictionary)$", "expected a mapping (key: value)"),
        (r"^(not a valid value|no valid value found|invalid value)$", "not an accepted value"),
        (r"^required key not provided$", "required, but missing"),
        (r"^extra keys not allowed$", "unknown key"),
        (r"^value must be at least (.+)$", "must be at least \\1"),
        (r"^value must be at most (.+)$", "must be at most \\1"),
        (r"^value must be higher than (.+)$", "must be more than \\1"),
        (r"^value must be lower than (.+)$", "must be less than \\1"),
        (r"^does not match regular expression (.+)$", "does not have the expected form \\1"),
        (
            r"^two or more values in the same group of exclusion '(.+)'$",
            "give only one of the keys of the group '\\1'",
        ),
        (
            r"^some but not all values in the same group of inclusion '(.+)'$",
            "give all of the keys of the group '\\1' or none",
        ),
    )
)
_ONE_OF: Final = re.compile(r"^value must be one of (\[.*\])$")
_LENGTH: Final = re.compile(r"^length of value must be (at least|at most) (\d+)$")
_MAX_LISTED: Final = 12


def _one_of(message: str) -> list[Any] | None:
    """The values a "value must be one of [...]" message lists, None for another message."""
    match = _ONE_OF.match(message)
    if match is None:
        return None
    try:
        allowed = ast.literal_eval(match.group(1))
    except (ValueError, SyntaxError):
        return None
    return list(allowed) if isinstance(allowed, list) else None


def plain_message(message: str, got: Any = None) -> str:
    """Return a voluptuous message in plain words (got: the value it was about, if known)."""
    allowed = _one_of(message)
    if allowed is not None:
        return f"expected one of: {', '.join(str(item) for item in allowed)}"
    match = _LENGTH.match(message)
    if match:
        bound, count = match.groups()
        plural = "" if count == "1" else "s"
        if isinstance(got, str):
            return f"must be {bound} {count} character{plural} long"
        if isinstance(got, list | tuple | dict):
            return f"must have {bound} {count} item{plural}"
        return f"must have a length of {bound} {count}"
    for pattern, plain in _PLAIN_MESSAGES:
        if pattern.match(message):
            return pattern.sub(plain, message)
    return message


def humanize_error(value: Any, error: vol.Invalid) -> str:
    """Return what error expected, in plain words, and what value held there, hiding secrets."""
    if isinstance(error, vol.MultipleInvalid):
        return "; ".join(humanize_error(value, sub) for sub in error.errors)
    found, got, secret = _walk(value, _path(error))
    raw: str = error.msg
    message = plain_message(raw, got if found else None)
    if isinstance(error, UnknownKeyInvalid) or raw == _EXTRA_KEYS:
        return message
    if found and secret is None and isinstance(got, str | int | float) and repr(got) in raw:
        # The validator already said what it got (e.g. "unknown time zone 'Mars/X'").
        return message
    if secret is not None:
        shown = f"<secret {secret}>"
        # A validator's own message may quote the value; it must not leak a secret.
        if isinstance(got, str | int | float) and str(got):
            message = message.replace(repr(got), shown).replace(str(got), shown)
    elif got is None:
        shown = "nothing"
    else:
        shown = repr(got)
        if len(shown) > _MAX_GOT_LENGTH:
            shown = shown[: _MAX_GOT_LENGTH - 3] + "..."
    if not found or isinstance(error, vol.RequiredFieldInvalid) or isinstance(got, Mapping):
        # A mapping quoted back is noise: its key's line says where it is.
        return message
    message = f"{message}, got {shown}"
    allowed = _one_of(raw)
    close = (
        did_you_mean(got, allowed) if allowed and secret is None and isinstance(got, str) else None
    )
    return message if close is None else f"{message}; did you mean '{close}'?"


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


def dotted_key(path: Sequence[Any]) -> str:
    """Return a path of keys and list indexes as one dotted key ("ocpp.chargers[1].id")."""
    if not path:
        return ""
    return _dotted(str(path[0]), path[1:])


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
        return validate_with_hints(schema, value), []
    except vol.Invalid as exc:
        invalid = exc
    errors = []
    for error in _flatten(invalid):
        path = _path(error)
        file, line = find_line(value, path)
        if line is None and parent is not None:
            file, line = find_line(parent, [key])
        errors.append(
            ConfigError(
                humanize_error(value, error), file, line, _dotted(key, path), path=[key, *path]
            )
        )
    return None, errors


# Durations as Home Assistant users write them: seconds, "HH:MM", "HH:MM:SS[.f]" or a mapping.
_CLOCK_DURATION: Final = re.compile(r"^(\d+):(\d+)(?::(\d+(?:\.\d*)?))?$")
DURATION_UNITS: Final = {
    "days": 86400.0,
    "hours": 3600.0,
    "minutes": 60.0,
    "seconds": 1.0,
    "milliseconds": 0.001,
}
_DURATION_FORMS: Final = (
    "expected a duration: seconds (300), 'HH:MM:SS' ('00:05:00') or a mapping ({minutes: 5})"
)


def duration(value: Any) -> float:
    """Voluptuous validator: the seconds of a duration written as Home Assistant users write
    one: a number of seconds (300, "300"), "HH:MM" or "HH:MM:SS[.fff]" ("00:05:00"), or a
    mapping of days, hours, minutes, seconds and milliseconds ({minutes: 5})."""
    if isinstance(value, Mapping):
        if not value:
            raise vol.Invalid(f"a duration needs one of {', '.join(DURATION_UNITS)}")
        total = 0.0
        for unit, amount in value.items():
            if unit not in DURATION_UNITS:
                raise UnknownKeyInvalid(unknown_key_message(unit, DURATION_UNITS), path=[unit])
            total += _duration_amount(amount, [unit]) * DURATION_UNITS[unit]
        return total
    if isinstance(value, str):
        text = value.strip()
        match = _CLOCK_DURATION.match(text)
        if match is not None:
            hours, minutes, seconds = match.groups()
            return int(hours) * 3600.0 + int(minutes) * 60.0 + float(seconds or 0)
    return _duration_amount(value, [])


def _duration_amount(value: Any, path: list[Any]) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise vol.Invalid(_DURATION_FORMS, path=path)
    try:
        amount = float(value)
    except ValueError:
        raise vol.Invalid(_DURATION_FORMS, path=path) from None
    if not math.isfinite(amount):
        raise vol.Invalid(_DURATION_FORMS, path=path)
    if amount < 0:
        raise vol.Invalid("a duration cannot be negative", path=path)
    return amount


@dataclass(frozen=True, slots=True)
class ServiceCallSite:
    """A service a configuration calls, and where: check-config reports one nothing provides."""

    service: str
    file: str | None
    line: int | None
    # The keys and list indexes down to it, the section's key first.
    path: tuple[Any, ...]


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
