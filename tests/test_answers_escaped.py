"""Every answer lands escaped for its file's language: free text reaches Python, JSON, YAML, TOML, Bicep and
Markdown only through that language's filter (language_filters.py), or the pre-gen hook refuses it; hostile
answers bake into an app whose every file compiles or parses, and says the answer back as it was typed."""

from __future__ import annotations

import ast
import itertools
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from markdown_it import MarkdownIt

from .bicep_eval import bicep_parser
from .conftest import APP_TEMPLATE, bake, generated_files, kept_files

# The answers a person types as they like; every other answer is held to a pattern by the pre-gen hook
# (delivery_latency and instance_memory_mb too: plain decimals, which engine/delivery_plan.py's rule checks).
FREE_TEXT = ("project_name", "description", "author_name", "author_email")
FILTER_OF_LANGUAGE = {
    ".py": "python_text",
    ".md": "markdown_text",
    ".toml": "toml_string",
    ".yaml": "yaml_string",
    ".yml": "yaml_string",
    ".bicep": "bicep_string",
    ".json": "tojson",
}
FREE_TEXT_USE = re.compile(rf"cookiecutter\.({'|'.join(FREE_TEXT)})\b")
EXPRESSION = re.compile(r"\{\{-?(.*?)-?\}\}", re.DOTALL)


def test_free_text_reaches_each_file_only_through_its_languages_filter() -> None:
    uses, unfiltered = [], []
    for path in kept_files(APP_TEMPLATE):
        text = path.read_text(encoding="utf-8")
        where = path.relative_to(APP_TEMPLATE)
        uses += [f"{where}: {m.group(1)}" for m in FREE_TEXT_USE.finditer(text)]
        filtered = [
            expression
            for expression in EXPRESSION.findall(text)
            if FREE_TEXT_USE.search(expression)
            and expression.rsplit("|", 1)[-1].strip() == FILTER_OF_LANGUAGE.get(path.suffix)
            and expression.count("|") == 1
        ]
        # Each use sits in an expression of its own whose one filter is the file's language's.
        if len(filtered) != len(FREE_TEXT_USE.findall(text)):
            unfiltered.append(str(where))
    assert len(uses) >= 5, "the uses of the free-text answers were not found"
    assert unfiltered == []


# The answers cookiecutter's --no-input renders with Jinja (a typed answer is taken as typed): {% raw %}
# makes them reach the files as written.
HOSTILE = {
    "quotes": {
        "project_name": 'It\'s "quoted" """ \'\'\' \\ C:\\new\\ end\\',
        "project_slug": "hostile-quotes",
        "description": '"""\'\'\'\\" $(id) `id` %(x)s {0} \\N{BELL} \\u0041 \\x41',
        "author_name": 'O\'Brien "\\" é',
        "author_email": '"o\'brien\\\\"@example.com',
    },
    "markup": {
        "project_name": "{% raw %}{{ cookiecutter.project_slug }} {% if x %} ${{ github.token }}{% endraw %}",
        "project_slug": "hostile-markup",
        "description": "{% raw %}${AWS::AccountId} ${x} @{y} {{ z }} ]] >> #{% endraw %}",
        "author_name": "{% raw %}{{ 7 * 7 }}{% endraw %}",
    },
    "markdown-unicode-yaml": {
        "project_name": "# - 1. *em* _u_ [link](https://x) <img src=x onerror=alert(1)> &amp; | ~~s~~ 名前",
        # YAML 1.1 reads a bare 123 as a number: the slug must stay a string.
        "project_slug": "123",
        "package_name": "app123",
        "description": "- 1. > quote # *em* <b>x</b> &amp; `code` | t | 🚀 null: yes",
        "author_name": "名前 🚀",
    },
}


class AnyTagLoader(yaml.SafeLoader):
    """YAML with CloudFormation's tags (!Ref, !Sub, ...), read as plain nodes."""


AnyTagLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def parse(path: Path) -> Any:
    """The file compiled or parsed by its language; Markdown and the rest read as UTF-8 text."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".py":
        return compile(text, str(path), "exec", dont_inherit=True)
    if path.suffix == ".json":
        return json.loads(text)
    if path.suffix in (".yaml", ".yml"):
        return yaml.load(text, Loader=AnyTagLoader)
    if path.suffix == ".toml":
        return tomllib.loads(text)
    if path.suffix == ".bicep":
        return bicep_parser().parse(text=text)
    return text


def rendered_text(markdown: str) -> list[tuple[str, str]]:
    """Each block of Markdown (its opening token) with its inline content as plain text; markup that is
    not text (emphasis, a link, HTML, code) is shown as <token type>."""
    md = MarkdownIt("commonmark").enable(["table", "strikethrough"])
    tokens = md.parse(markdown)
    blocks = []
    for opening, inline in itertools.pairwise(tokens):
        if inline.type == "inline":
            text = "".join(
                child.content if child.type in ("text", "text_special") else f"<{child.type}>"
                for child in inline.children or []
            )
            blocks.append((opening.type, text))
    return blocks


@pytest.mark.parametrize("answers", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_answers_bake_an_app_whose_every_file_parses(tmp_path: Path, answers: dict[str, str]) -> None:
    out = bake(tmp_path, answers)
    [project] = out.iterdir()
    replay = json.loads((project / ".cookiecutter.json").read_text(encoding="utf-8"))["cookiecutter"]
    typed = {key: replay[key] for key in answers}  # as cookiecutter took them (raw blocks rendered)

    files = generated_files(project)
    # A fresh bake has no venv or cache yet: walked whole, it holds the generated files and nothing else.
    assert files == sorted(p.resolve() for p in project.rglob("*") if p.is_file())
    failures = []
    for path in files:
        try:
            parse(path)
        except Exception as error:
            failures.append(f"{path.relative_to(project)}: {type(error).__name__}: {error}")
    assert failures == []

    # Each file says the answer back as it was typed.
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert pyproject["description"] == typed["description"]
    assert pyproject["authors"][0]["name"] == typed.get("author_name", "Your Name")
    assert pyproject["authors"][0]["email"] == typed.get("author_email", "you@example.com")
    package = project / replay["package_name"] / "__init__.py"
    docstring = ast.get_docstring(ast.parse(package.read_text(encoding="utf-8"))) or ""
    assert docstring.splitlines()[0] == f"{typed['project_name']}."
    readme = rendered_text((project / "README.md").read_text(encoding="utf-8"))
    assert readme[:2] == [("heading_open", typed["project_name"]), ("paragraph_open", typed["description"])]
    azure = yaml.safe_load((project / "azure.yaml").read_text(encoding="utf-8"))
    assert azure["name"] == replay["project_slug"]


def test_the_python_and_bicep_filters_say_back_what_they_were_given() -> None:
    from language_filters import bicep_string, python_text

    hostile = [value for answers in HOSTILE.values() for value in answers.values()]
    hostile += ["line\nbreak\ttab\x00nul\u2028", "\\", "'", '"', "${x}"]
    for value in hostile:
        assert ast.literal_eval(f'"""{python_text(value)}"""') == value
        literal = bicep_string(value)
        tree = bicep_parser().parse(text=f"param p string = {literal}\n")
        # pycep keeps a string's escapes as written: the literal is one string, decoded below as Bicep does.
        assert tree["parameters"]["p"]["default"] == literal[1:-1]
        assert bicep_decoded(literal[1:-1]) == value


BICEP_ESCAPE = re.compile(r"\\(u\{[0-9A-Fa-f]+\}|.)")


def bicep_decoded(body: str) -> str:
    """A Bicep string's body as Bicep reads it (its escapes: \\\\ \\' \\n \\r \\t \\$ \\u{...})."""
    simple = {"\\": "\\", "'": "'", "n": "\n", "r": "\r", "t": "\t", "$": "$"}

    def one(match: re.Match[str]) -> str:
        escape = match.group(1)
        return chr(int(escape[2:-1], 16)) if escape.startswith("u{") else simple[escape]

    assert not re.search(r"(?<!\\)(\\\\)*'", body), "an unescaped quote ends the string"
    return BICEP_ESCAPE.sub(one, body)
