"""Jinja filters that escape an answer for the language of the file it lands in (cookiecutter.json,
``_extensions``).

An answer reaches a generated file only through the filter of that file's language, so that no answer can
end a string, open markup or inject code: ``python_text`` (inside a "-quoted or \"""-quoted Python string),
``toml_string``, ``yaml_string``, ``bicep_string`` (whole quoted values), ``markdown_text`` (inline text)
and, for JSON, Jinja's own ``tojson``. The template's tests/test_answers_escaped.py checks that every
free-text answer goes through its file's filter, and bakes hostile answers.

A module of its own, never added to: ``cruft update`` renders the app's old and new template commits in one
process, and Python imports an extension module once, so a filter added to a module an older commit also
loads would be missing from one of the two renders. A new filter goes in a new module.
"""

from __future__ import annotations

import re
from typing import Any

from jinja2.ext import Extension


def _escaped(character: str) -> str:
    """One character of a double-quoted string in Python, TOML or YAML: the three share these escapes."""
    if character in '\\"':
        return "\\" + character
    if character.isprintable():
        return character
    code = ord(character)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def python_text(value: object) -> str:
    """The text of a "..." or \"""...\""" Python string (a docstring): quotes, backslashes and control
    characters escaped."""
    return "".join(map(_escaped, str(value)))


def toml_string(value: object) -> str:
    """A TOML basic string. Not ``tojson``: JSON writes a character past U+FFFF as two surrogate escapes,
    which TOML refuses."""
    return f'"{python_text(value)}"'


def yaml_string(value: object) -> str:
    """A YAML double-quoted scalar: always a string (``yes``, ``123`` or ``null`` stay text)."""
    return f'"{python_text(value)}"'


def bicep_string(value: object) -> str:
    """A Bicep string literal: ``'``, ``\\`` and ``${`` (interpolation) escaped, control characters as
    ``\\u{...}``."""
    out = []
    for character in str(value):
        if character in "\\'$":
            out.append("\\" + character)
        elif character.isprintable():
            out.append(character)
        else:
            out.append(f"\\u{{{ord(character):X}}}")
    return "'" + "".join(out) + "'"


# CommonMark lets a backslash escape any ASCII punctuation. These have a meaning inline (code, emphasis,
# links, HTML, entities, GitHub's tables and strikethrough, a heading's closing #s); the others only at the
# start of a line, handled below.
MARKDOWN_INLINE = set("\\`*_[]<>!&|~#")
MARKDOWN_LINE_START = re.compile(r"^([-+=]|\d+(?=[.)]))")


def markdown_text(value: object) -> str:
    """Inline Markdown that renders as the text itself: markup characters escaped, a leading list or
    heading marker made plain, a control character (a line break) made a space. Whitespace at either end
    is dropped (Markdown drops it too; four spaces would start a code block)."""
    printable = "".join(c if c.isprintable() else " " for c in str(value)).strip()
    text = "".join("\\" + c if c in MARKDOWN_INLINE else c for c in printable)
    match = MARKDOWN_LINE_START.match(text)
    if match:
        # Escape the marker itself, or the "." or ")" after a number ("1. " would start a list).
        end = match.end()
        text = "\\" + text if not match.group(1)[0].isdigit() else text[:end] + "\\" + text[end:]
    return text


class LanguageFiltersExtension(Extension):
    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        environment.filters.update(
            python_text=python_text,
            toml_string=toml_string,
            yaml_string=yaml_string,
            bicep_string=bicep_string,
            markdown_text=markdown_text,
        )
