"""A report as a plain document (sections of text, images, tables and examples) and its
two renderings: one self-contained HTML file (images as data URIs, a content security
policy that forbids any network load) and Markdown with the images in a folder beside it."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from typing import ClassVar

import jinja2


@dataclass
class Text:
    text: str
    kind: ClassVar[str] = "text"


@dataclass
class Image:
    name: str  # file name stem, unique in the document
    png: bytes
    alt: str
    kind: ClassVar[str] = "image"

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    kind: ClassVar[str] = "table"


@dataclass
class Example:
    title: str
    fields: list[tuple[str, str]]  # the first is the input (text or prompt)
    kind: ClassVar[str] = "example"

    @property
    def inline(self) -> list[tuple[str, str]]:
        """The short one-line fields after the input (labels), shown on one line."""
        return [(k, v) for k, v in self.fields[1:] if len(v) <= 80 and "\n" not in v]

    @property
    def blocks(self) -> list[tuple[str, str]]:
        """The input and the long fields (generated answers), each shown as a block."""
        short = set(self.inline)
        return [(k, v) for k, v in self.fields if (k, v) not in short]


Block = Text | Image | Table | Example


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-")


@dataclass
class Document:
    title: str
    intro: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)

    def images(self) -> list[Image]:
        return [b for s in self.sections for b in s.blocks if isinstance(b, Image)]


# No network: the policy allows only inline styles and data: images; nothing is fetched.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{{ csp }}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ doc.title }}</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
       margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 2em; }
nav a { margin-right: 1em; }
table { border-collapse: collapse; margin: 1em 0; font-size: .88em; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: right; vertical-align: top; }
th:first-child, td:first-child { text-align: left; }
th { background: #f4f4f4; }
img { max-width: 100%; height: auto; display: block; margin: 1em 0; }
.warning { background: #fff4d6; border-left: 4px solid #e0a800; padding: .4em .8em;
           margin: .3em 0; }
.example { border: 1px solid #e2e2e2; border-radius: 4px; padding: .3em .9em; margin: .5em 0; }
.example h4 { margin: .2em 0 .2em 0; font-size: .9em; color: #444; }
.example .key { font-weight: 600; font-size: .8em; color: #666; margin-right: .3em; }
.example .field { white-space: pre-wrap; margin: .2em 0; }
.example .labels span { margin-right: 1.6em; }
</style>
</head>
<body>
<h1>{{ doc.title }}</h1>
{% for p in doc.intro %}<p>{{ p }}</p>
{% endfor %}
{% for w in doc.warnings %}<div class="warning">skipped: {{ w }}</div>
{% endfor %}
<nav>{% for s in doc.sections %}<a href="#{{ s.anchor }}">{{ s.title }}</a>{% endfor %}</nav>
{% for s in doc.sections %}
<h2 id="{{ s.anchor }}">{{ s.title }}</h2>
{% for b in s.blocks %}
{% if b.kind == "text" %}<p>{{ b.text }}</p>
{% elif b.kind == "image" %}<img src="{{ b.data_uri }}" alt="{{ b.alt }}">
{% elif b.kind == "table" %}<table>
<thead><tr>{% for h in b.header %}<th>{{ h }}</th>{% endfor %}</tr></thead>
<tbody>{% for r in b.rows %}<tr>{% for c in r %}<td>{{ c }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table>
{% elif b.kind == "example" %}<div class="example"><h4>{{ b.title }}</h4>
{% for k, v in b.blocks %}<div class="field"><span class="key">{{ k }}</span> {{ v }}</div>
{% endfor %}<div class="labels">{% for k, v in b.inline %}
<span><span class="key">{{ k }}</span> {{ v }}</span>{% endfor %}</div></div>
{% endif %}
{% endfor %}
{% endfor %}
</body>
</html>
"""


def render_html(doc: Document) -> str:
    """One self-contained HTML page: every image embedded, every text escaped."""
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(TEMPLATE).render(doc=doc, csp=CSP)


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(doc: Document, image_folder: str) -> str:
    """Markdown; each image is referenced as `<image_folder>/<name>.png` (written by the
    caller beside the file)."""
    lines = [f"# {doc.title}", ""]
    for p in doc.intro:
        lines += [p, ""]
    for w in doc.warnings:
        lines += [f"> **skipped:** {w}", ""]
    for s in doc.sections:
        lines += [f"## {s.title}", ""]
        for b in s.blocks:
            if isinstance(b, Text):
                lines += [b.text, ""]
            elif isinstance(b, Image):
                lines += [f"![{b.alt}]({image_folder}/{b.name}.png)", ""]
            elif isinstance(b, Table):
                lines += ["| " + " | ".join(_cell(h) for h in b.header) + " |"]
                lines += ["|" + "---|" * len(b.header)]
                lines += ["| " + " | ".join(_cell(c) for c in r) + " |" for r in b.rows]
                lines += [""]
            else:
                lines += [f"**{b.title}**", ""]
                for k, v in b.fields:
                    quoted = "\n".join(
                        "> " + ln for ln in (str(v).strip() or "(empty)").splitlines()
                    )
                    lines += [f"- {k}:", "", quoted, ""]
    return "\n".join(lines).rstrip() + "\n"
