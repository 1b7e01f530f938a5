"""Interpolation of ${VAR} expressions and parsing of KEY=VALUE env files."""
from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.spec.interpolate import InterpolationError, interpolate, parse_env_file

ENV = {"SET": "value", "EMPTY": "", "PORT": "8080"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain text", "plain text"),
        ("${SET}", "value"),
        ("$SET", "value"),
        ("$SET/suffix", "value/suffix"),
        ("${SET}suffix", "valuesuffix"),
        ("${UNSET}", ""),
        ("$UNSET", ""),
        ("$$", "$"),
        ("$$SET", "$SET"),
        ("cost: $$5", "cost: $5"),
        ("${PORT:-80}:80", "8080:80"),
        ("${UNSET:-80}:80", "80:80"),
        ("${EMPTY:-fallback}", "fallback"),
        ("${EMPTY-fallback}", ""),
        ("${UNSET-fallback}", "fallback"),
        ("${UNSET:-}", ""),
        ("${UNSET:-a b c}", "a b c"),
        ("${EMPTY?message}", ""),
        ("${SET:?message}", "value"),
        ("${UNSET:-${SET}}", "value"),
        ("${UNSET:-${ALSO_UNSET:-${PORT}}}", "8080"),
        ("${UNSET:-$${literal}}", "${literal}"),
        ("${SET:-${UNTERMINATED_BUT_UNUSED}}", "value"),
        ("a ${SET} and $PORT", "a value and 8080"),
    ],
)
def test_interpolate_forms(text: str, expected: str) -> None:
    assert interpolate(text, ENV) == expected


def test_default_is_only_expanded_when_used() -> None:
    # A required variable inside an unused default must not raise.
    assert interpolate("${SET:-${UNSET:?never}}", ENV) == "value"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("${UNSET:?set UNSET to the db password}", "required variable UNSET is missing a value: set UNSET"),
        ("${EMPTY:?}", "required variable EMPTY is missing a value"),
        ("${UNSET?needed}", "required variable UNSET is missing a value: needed"),
        ("${SET", "unterminated '${'"),
        ("x ${UNSET:-${SET}", "unterminated '${'"),
        ("$1", "write '$$' for a literal '$'"),
        ("trailing $", "write '$$' for a literal '$'"),
        ("${}", "invalid interpolation '${}'"),
        ("${1ABC}", "invalid interpolation"),
        ("${SET:+x}", "invalid interpolation '${SET:+x}'"),
        ("${UNSET:-${UNSET2:?inner}}", "required variable UNSET2"),
    ],
)
def test_interpolate_errors(text: str, fragment: str) -> None:
    with pytest.raises(InterpolationError) as caught:
        interpolate(text, ENV)
    assert fragment in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_error_does_not_echo_the_value() -> None:
    # The text may be a literal secret; the message gives a position instead.
    with pytest.raises(InterpolationError) as caught:
        interpolate("hunter2$", {})
    assert "hunter2" not in str(caught.value)
    assert "position 8" in str(caught.value)


def test_nesting_is_bounded() -> None:
    text = "x"
    for _ in range(30):
        text = "${UNSET:-" + text + "}"
    with pytest.raises(InterpolationError, match="nested"):
        interpolate(text, {})


def test_env_values_are_not_interpolated_again() -> None:
    assert interpolate("${A}", {"A": "$B", "B": "no"}) == "$B"


def _env_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "test.env"
    path.write_text(text, encoding="utf-8")
    return path


def test_parse_env_file(tmp_path: Path) -> None:
    path = _env_file(
        tmp_path,
        "# a comment\n"
        "\n"
        "PLAIN=value\n"
        "export EXPORTED=yes\n"
        "SPACED = around \n"
        "SINGLE='lit $X \\n'\n"
        'DOUBLE="line1\\nline2 \\"q\\""\n'
        "EMPTY=\n"
        "INLINE=value # comment\n"
        "HASH=a#b\n"
        "QUOTED_COMMENT='x' # comment\n"
        "EQUALS=a=b=c\n"
        "DOTTED.KEY=1\n"
        "PLAIN=later wins\n",
    )
    assert parse_env_file(path) == {
        "PLAIN": "later wins",
        "EXPORTED": "yes",
        "SPACED": "around",
        "SINGLE": "lit $X \\n",
        "DOUBLE": 'line1\nline2 "q"',
        "EMPTY": "",
        "INLINE": "value",
        "HASH": "a#b",
        "QUOTED_COMMENT": "x",
        "EQUALS": "a=b=c",
        "DOTTED.KEY": "1",
    }


def test_parse_env_file_accepts_bom_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "bom.env"
    path.write_bytes("\ufeffA=1\r\nB=2\r\n".encode())
    assert parse_env_file(path) == {"A": "1", "B": "2"}


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("A=1\nnot a pair\n", 2, "expected KEY=VALUE"),
        ("A=1\n\nB='unterminated\n", 3, "unterminated ' quote"),
        ('A="x" trailing\n', 1, "unexpected text after the closing"),
        ("1BAD=x\n", 1, "invalid variable name '1BAD'"),
        ("BAD KEY=x\n", 1, "invalid variable name"),
    ],
)
def test_parse_env_file_errors_name_file_and_line(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    path = _env_file(tmp_path, text)
    with pytest.raises(InterpolationError) as caught:
        parse_env_file(path)
    assert caught.value.file == str(path)
    assert caught.value.line == line
    assert str(caught.value).startswith(f"{path}:{line}: ")
    assert fragment in caught.value.reason


def test_parse_env_file_does_not_echo_malformed_lines(tmp_path: Path) -> None:
    path = _env_file(tmp_path, "PASSWORD hunter2\n")
    with pytest.raises(InterpolationError) as caught:
        parse_env_file(path)
    assert "hunter2" not in str(caught.value)


def test_parse_env_file_missing(tmp_path: Path) -> None:
    with pytest.raises(InterpolationError, match="cannot read env file"):
        parse_env_file(tmp_path / "nope.env")
