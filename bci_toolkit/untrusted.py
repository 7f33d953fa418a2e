"""Reading untrusted input within bounds: a bounded YAML loader and short quotes of values.

Pipeline specs, dataset manifests and artifacts come from users, so a small file must not
be able to make the toolkit spend unbounded memory or time, nor print megabytes back:

* :func:`load_yaml_file` reads at most :data:`MAX_YAML_BYTES` of a regular file, refuses
  YAML aliases (the "billion laughs" expansion needs them, and no shipped file uses them),
  nesting deeper than :data:`MAX_DEPTH` and more than :data:`MAX_NODES` values, and turns
  every parser or constructor failure into one line naming the line and column;
* :func:`check_tree` bounds depth and size of data already in memory (it walks without
  recursion, so a 10 000-level structure or a cycle is refused, not a ``RecursionError``);
* :func:`short_repr` quotes an offending value in at most about 200 characters.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.events import AliasEvent
from yaml.parser import Parser
from yaml.reader import Reader, ReaderError
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from bci_toolkit.bounded import FileTooLarge, NotRegularFile, read_file_bounded
from bci_toolkit.errors import BCIError

#: Largest YAML file read (pipelines are about 2 KB, the largest manifest about 190 KB).
MAX_YAML_BYTES = 1 << 20
#: Deepest nesting of mappings and sequences accepted (shipped files use at most 5).
MAX_DEPTH = 64
#: Most values (scalars, mappings, sequences) in one document; the eegbci manifest has
#: about 3 200, and parsing 50 000 takes about a second in pure Python.
MAX_NODES = 50_000
#: Characters of an offending value quoted in an error message.
QUOTE_LIMIT = 200

__all__ = ["MAX_DEPTH", "MAX_NODES", "MAX_YAML_BYTES", "QUOTE_LIMIT", "check_tree",
           "load_yaml_file", "load_yaml_text", "short_key", "short_repr", "short_text"]


def short_text(text: str, limit: int = QUOTE_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, saying how long it was when cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} characters)"


def short_key(key: Any, limit: int = 60) -> str:
    """A mapping key for a dotted path in a message: as is when printable, else its repr."""
    text = str(key)
    return short_text(text if text.isprintable() else repr(text), limit)


def short_repr(value: Any, limit: int = QUOTE_LIMIT) -> str:
    """``repr(value)`` in at most about ``limit`` characters, for error messages.

    Long strings are cut before ``repr`` so that a 10 MB value is never copied whole.
    """
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}… ({len(value)} characters)"
    if isinstance(value, bytes | bytearray) and len(value) > limit:
        return f"{bytes(value[:limit])!r}… ({len(value)} bytes)"
    if isinstance(value, list | tuple | dict | set | frozenset) and len(value) > 20:
        # A repr of a big container is costly before it is cut; show its head only.
        head = list(value.items() if isinstance(value, dict) else value)[:5]
        text = short_text(repr(head), limit)
        return f"{type(value).__name__} of {len(value)} items starting {text}"
    try:
        text = repr(value)
    except Exception:  # a hostile __repr__ must not replace the real error
        text = f"<{type(value).__name__}>"
    return short_text(text, limit)


class _LimitError(yaml.MarkedYAMLError):
    """A document goes beyond the loader's bounds; carries the position like parse errors."""


class _BoundedComposer(Composer):
    # The composer is where aliases are expanded and where PyYAML recurses once per level:
    # checking here stops a bomb at its first alias and deep nesting long before Python's
    # recursion limit.
    def __init__(self) -> None:
        super().__init__()
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            anchor = short_text(event.anchor, 40)
            raise _LimitError(problem=f"aliases are not allowed (found *{anchor}); write the "
                                      "value out in full", problem_mark=event.start_mark)
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise _LimitError(problem=f"more than {MAX_NODES} values in one document",
                              problem_mark=event.start_mark)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _LimitError(problem=f"nested deeper than {MAX_DEPTH} levels",
                                  problem_mark=event.start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _BoundedConstructor(SafeConstructor):
    def construct_object(self, node: Any, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        except Exception as exc:
            # The safe constructors fail with ValueError (a month 13, an int of 5000
            # digits), KeyError (``!!bool maybe``) and the like: all mean invalid text.
            tag = short_text(str(node.tag).removeprefix("tag:yaml.org,2002:"), 40)
            shown = f" {short_repr(node.value, 60)}" if isinstance(node.value, str) else ""
            why = "not one of its spellings" if isinstance(exc, KeyError) else str(exc)
            raise ConstructorError(
                problem=f"invalid {tag} value{shown} ({short_text(why, 80)})",
                problem_mark=node.start_mark) from None


class _BoundedLoader(Reader, Scanner, Parser, _BoundedComposer, _BoundedConstructor, Resolver):
    """PyYAML's safe loader (pure Python, so that every step above is ours) with bounds."""

    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        _BoundedComposer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)


def _describe(exc: yaml.YAMLError) -> str:
    """One line for a YAML error: position and problem, never the multi-line snippet."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.context and problem.startswith("but "):  # "expected X" + "but found Y"
            problem = f"{exc.context}, {problem}"
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        return at + short_text(" ".join(str(problem).split()))
    if isinstance(exc, ReaderError):
        char = exc.character  # a code point when the reader checks text, as here
        code = ord(char) if isinstance(char, str) else int(char)
        return f"character {exc.position + 1}: unacceptable character #x{code:04x}"
    return short_text(" ".join(str(exc).split()))


def load_yaml_text(text: str, where: str, error: type[BCIError]) -> Any:
    """Parse one YAML document within the bounds above.

    Parameters
    ----------
    text : str
        The document.
    where : str
        Prefix of error messages (usually the file name).
    error : type of BCIError
        Class of the error raised (``SpecError`` for pipelines, ``DataError`` for
        manifests).

    Returns
    -------
    object
        Plain data: dicts, lists, strings, numbers, booleans, None, dates.

    Raises
    ------
    BCIError
        Of class ``error``: ``<where>: cannot read YAML: line L, column C: <problem>``.
    """
    if len(text) > MAX_YAML_BYTES:
        raise error(f"{where}: YAML text is longer than {MAX_YAML_BYTES} characters")
    loader = None
    try:
        loader = _BoundedLoader(text)  # the reader checks every character here already
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        raise error(f"{where}: cannot read YAML: {_describe(exc)}") from None
    except RecursionError:  # pragma: no cover -- the depth bound comes first
        raise error(f"{where}: cannot read YAML: nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()


def _read_bounded(path: Path, what: str, error: type[BCIError]) -> bytes:
    try:
        return read_file_bounded(path, MAX_YAML_BYTES)
    except FileNotFoundError:
        raise error(f"{path}: {what} not found") from None
    except NotRegularFile:
        raise error(f"{path}: {what} is not a regular file") from None
    except FileTooLarge:
        raise error(f"{path}: {what} is larger than {MAX_YAML_BYTES // (1 << 20)} MiB; "
                    "refusing to parse it") from None
    except OSError as exc:
        raise error(f"{path}: cannot read {what} ({exc.strerror or type(exc).__name__})") \
            from None


def load_yaml_file(path: str | os.PathLike, error: type[BCIError], *,
                   what: str = "YAML file") -> Any:
    """Read a YAML file a user gave, within the bounds above.

    Parameters
    ----------
    path : path-like
    error : type of BCIError
        Class of the error raised.
    what : str
        What the file is, for messages (``"pipeline file"``, ``"manifest"``).

    Returns
    -------
    object
        The parsed document (see :func:`load_yaml_text`).

    Raises
    ------
    BCIError
        Of class ``error``, one line: missing, unreadable, not a regular file, larger than
        :data:`MAX_YAML_BYTES`, not UTF-8, or invalid or out-of-bounds YAML.
    """
    path = Path(path)
    data = _read_bounded(path, what, error)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: {what} is not UTF-8 text (invalid byte at offset {exc.start})") \
            from None
    return load_yaml_text(text, str(path), error)


def check_tree(data: Any, where: str, error: type[BCIError], *, max_depth: int = MAX_DEPTH,
               max_nodes: int = MAX_NODES) -> None:
    """Refuse data nested deeper than ``max_depth`` or holding more than ``max_nodes`` values.

    Walks with an explicit stack, so that neither a very deep structure nor a cycle (which
    counts as infinitely deep) reaches Python's recursion limit.

    Raises
    ------
    BCIError
        Of class ``error``, naming the dotted path where the bound was crossed.
    """
    stack: list[tuple[Any, int, tuple]] = [(data, 1, ())]
    n = 0
    while stack:
        node, depth, path = stack.pop()
        n += 1
        if n > max_nodes:
            raise error(f"{where}: more than {max_nodes} values; refusing to validate")
        if depth > max_depth:
            shown = ".".join(short_key(p, 20) for p in path[:4])
            raise error(f"{where}: nested deeper than {max_depth} levels (at {shown}...)")
        if isinstance(node, Mapping):
            stack.extend((v, depth + 1, (*path[:4], k)) for k, v in node.items())
        elif isinstance(node, list | tuple | set | frozenset):
            stack.extend((v, depth + 1, (*path[:4], i)) for i, v in enumerate(node))
