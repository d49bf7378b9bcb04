"""A report as a list of blocks, rendered to Markdown and to a standalone HTML page.

Both renderings come from the same blocks, so the two files always say the same thing. The HTML
is written here (the `markdown` package is not a dependency of the suite); every text is escaped,
and inline `code` spans are the only markup a block's text may carry.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any

CODE = re.compile(r"`([^`]+)`")


@dataclass
class Block:
    kind: str                                   # heading | paragraph | table | bullets | code
    text: str = ""
    level: int = 2
    headers: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    items: list[str] = field(default_factory=list)


def heading(text: str, level: int = 2) -> Block:
    return Block("heading", text, level=level)


def paragraph(text: str) -> Block:
    return Block("paragraph", text)


def table(headers: list[str], rows: list[list[Any]]) -> Block:
    return Block("table", headers=list(headers), rows=[list(r) for r in rows])


def bullets(items: list[str]) -> Block:
    return Block("bullets", items=list(items))


def code(text: str) -> Block:
    return Block("code", text)


# ---- Markdown

def _md_cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def to_markdown(blocks: list[Block]) -> str:
    out: list[str] = []
    for block in blocks:
        if block.kind == "heading":
            out.append("#" * block.level + " " + block.text)
        elif block.kind == "paragraph":
            out.append(block.text)
        elif block.kind == "bullets":
            out.append("\n".join(f"- {item}" for item in block.items))
        elif block.kind == "code":
            out.append(f"```\n{block.text}\n```")
        elif block.kind == "table":
            lines = ["| " + " | ".join(_md_cell(h) for h in block.headers) + " |",
                     "|" + "|".join("---" for _ in block.headers) + "|"]
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
            out.append("\n".join(lines))
        else:
            raise ValueError(f"unknown report block kind {block.kind!r}")
    return "\n\n".join(out) + "\n"


# ---- HTML

def inline(text: Any) -> str:
    """Escaped text with `code` spans as <code> (the only inline markup)."""
    parts = CODE.split(str(text))
    return "".join(f"<code>{html.escape(p)}</code>" if i % 2 else html.escape(p) for i, p in enumerate(parts))


STYLE = """body{font-family:system-ui,sans-serif;max-width:78rem;margin:2rem auto;padding:0 1rem;line-height:1.45}
table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f3f3}code,pre{background:#f6f6f6;font-size:.85rem}pre{padding:.6rem;overflow-x:auto}"""


def to_html(blocks: list[Block], title: str) -> str:
    body: list[str] = []
    for block in blocks:
        if block.kind == "heading":
            level = min(max(block.level, 1), 6)
            body.append(f"<h{level}>{inline(block.text)}</h{level}>")
        elif block.kind == "paragraph":
            body.append(f"<p>{inline(block.text)}</p>")
        elif block.kind == "bullets":
            body.append("<ul>" + "".join(f"<li>{inline(i)}</li>" for i in block.items) + "</ul>")
        elif block.kind == "code":
            body.append(f"<pre><code>{html.escape(block.text)}</code></pre>")
        elif block.kind == "table":
            head = "".join(f"<th>{inline(h)}</th>" for h in block.headers)
            rows = "".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in row) + "</tr>" for row in block.rows)
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        else:
            raise ValueError(f"unknown report block kind {block.kind!r}")
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
