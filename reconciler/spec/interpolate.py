"""Variable interpolation in spec strings, and ``KEY=VALUE`` env files.

Specs are shared between machines, so values that differ per machine (ports,
passwords, tags) come from the environment. The syntax is compose's, because
users already know it::

    ${VAR}            value of VAR, empty when unset
    ${VAR:-default}   default when VAR is unset or empty
    ${VAR-default}    default when VAR is unset
    ${VAR:?message}   error when VAR is unset or empty
    ${VAR?message}    error when VAR is unset
    $VAR              same as ${VAR}
    $$                a literal $

Defaults may themselves hold ``${...}``; they are expanded only when used.
Every other use of ``$`` is an error, so a typo never silently becomes text.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

__all__ = ["InterpolationError", "interpolate", "parse_env_file"]

# Nesting only comes from defaults written in the spec; a bound keeps a
# pathological value from recursing until Python gives up.
MAX_NESTING = 10

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BRACED = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<colon>:?)(?P<op>[-?])(?P<arg>.*))?", re.S)
_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}


class InterpolationError(ValueError):
    """A ``${...}`` expression or an env file line could not be used.

    ``file`` and ``line`` are set when the error comes from an env file, so
    callers can point at it (``str()`` then starts with ``file:line:``, and
    ``reason`` is the message alone); for spec strings the caller knows the
    location.
    """

    def __init__(self, message: str, *, file: str = "", line: int = 0) -> None:
        where = f"{file}:{line}: " if file and line else f"{file}: " if file else ""
        super().__init__(where + message)
        self.reason = message
        self.file = file
        self.line = line


def interpolate(text: str, env: Mapping[str, str], *, unset: set[str] | None = None) -> str:
    """Return ``text`` with every ``$`` expression replaced from ``env``.

    Raises InterpolationError for a required variable without a value, an
    unterminated ``${``, an invalid name or a stray ``$``. The names of
    variables used without a default that ``env`` does not hold (``$VAR``,
    ``${VAR}``: they become "") are added to ``unset``, for a warning.
    """
    return _expand(text, env, 0, unset if unset is not None else set())


def _expand(text: str, env: Mapping[str, str], depth: int, unset: set[str]) -> str:
    if "$" not in text:  # the common case: nothing to do, no copy
        return text
    if depth > MAX_NESTING:
        raise InterpolationError(f"defaults nested more than {MAX_NESTING} levels deep")
    out: list[str] = []
    pos = 0
    while (dollar := text.find("$", pos)) >= 0:
        out.append(text[pos:dollar])
        pos = _expand_one(text, dollar, env, depth, out, unset)
    out.append(text[pos:])
    return "".join(out)


def _expand_one(text: str, dollar: int, env: Mapping[str, str], depth: int, out: list[str], unset: set[str]) -> int:
    """Expand the expression starting at ``text[dollar] == '$'``; return the index after it."""
    nxt = text[dollar + 1 : dollar + 2]
    if nxt == "$":
        out.append("$")
        return dollar + 2
    if nxt == "{":
        end = _closing_brace(text, dollar + 2)
        out.append(_expand_braced(text[dollar + 2 : end], env, depth, unset))
        return end + 1
    match = _NAME.match(text, dollar + 1)
    if match is None:
        # Only the position is shown: the text may be a secret that holds a '$'.
        raise InterpolationError(
            f"invalid '$' at position {dollar + 1}: expected $VAR or ${{VAR}}; "
            "write '$$' for a literal '$'"
        )
    if match.group() not in env:
        unset.add(match.group())
    out.append(env.get(match.group(), ""))
    return match.end()


def _closing_brace(text: str, start: int) -> int:
    """Index of the ``}`` closing the ``${`` whose body starts at ``start``."""
    depth = 1
    i = start
    while i < len(text):
        if text.startswith("$$", i):
            i += 2
            continue
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise InterpolationError(f"unterminated '${{' at position {start - 1}: missing '}}'")


def _expand_braced(body: str, env: Mapping[str, str], depth: int, unset: set[str]) -> str:
    match = _BRACED.fullmatch(body)
    if match is None:
        raise InterpolationError(
            f"invalid interpolation '${{{body}}}': expected ${{VAR}}, ${{VAR:-default}}, "
            "${VAR-default}, ${VAR:?message} or ${VAR?message}"
        )
    name, op, arg = match["name"], match["op"], match["arg"]
    value = env.get(name)
    # ':' makes an empty value count as missing, as in the shell.
    missing = value is None or (bool(match["colon"]) and value == "")
    if op is None and value is None:
        unset.add(name)
    if op is None or not missing:
        return value or ""
    if op == "-":
        return _expand(arg, env, depth + 1, unset)
    message = f"required variable {name} is missing a value"
    raise InterpolationError(f"{message}: {arg}" if arg else message)


def parse_env_file(path: Path) -> dict[str, str]:
    """Read ``KEY=VALUE`` lines from ``path``.

    Blank lines and ``#`` comments are skipped; an ``export `` prefix is
    allowed; a value may be wrapped in matching single quotes (taken literally)
    or double quotes (``\\n``, ``\\t``, ``\\"``, ``\\\\`` escapes). Unquoted values
    end at `` #``. Later lines win. Values are not interpolated.
    Raises InterpolationError naming the file and line for anything else.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InterpolationError(f"cannot read env file: {exc}", file=str(path)) from exc
    result: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            entry = _parse_env_line(line)
        except InterpolationError as exc:
            raise InterpolationError(exc.reason, file=str(path), line=number) from None
        if entry is not None:
            result[entry[0]] = entry[1]
    return result


def _parse_env_line(line: str) -> tuple[str, str] | None:
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return None
    if stripped.startswith("export ") or stripped.startswith("export\t"):
        stripped = stripped[len("export") :].lstrip()
    key, equals, value = stripped.partition("=")
    key = key.strip()
    if not equals:
        # The line itself is not echoed: env files hold secrets.
        raise InterpolationError("expected KEY=VALUE")
    if not _ENV_KEY.fullmatch(key):
        raise InterpolationError(f"invalid variable name {key!r}")
    return key, _parse_env_value(value.strip())


def _parse_env_value(value: str) -> str:
    if not value or value[0] not in "'\"":
        # An unquoted '#' only starts a comment after whitespace: a#b is a value.
        return re.split(r"\s#", value, maxsplit=1)[0].rstrip()
    quote = value[0]
    end = _closing_quote(value, quote)
    rest = value[end + 1 :].strip()
    if rest and not rest.startswith("#"):
        raise InterpolationError(f"unexpected text after the closing {quote} quote")
    inner = value[1:end]
    return _unescape(inner) if quote == '"' else inner


def _closing_quote(value: str, quote: str) -> int:
    i = 1
    while i < len(value):
        if quote == '"' and value[i] == "\\":
            i += 2
            continue
        if value[i] == quote:
            return i
        i += 1
    raise InterpolationError(f"unterminated {quote} quote")


def _unescape(inner: str) -> str:
    # Unknown escapes are kept as written (\d stays \d), as dotenv does.
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(0)), inner, flags=re.S)
