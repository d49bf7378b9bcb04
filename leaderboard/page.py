"""The offline web page of a build: static index.html + assets, with the data as a JS file.

Data travels as `assets/data.js` (a global assignment) rather than fetched JSON, so the page
works from file:// without a server, CORS or network. The page builds every element with
textContent, never innerHTML, so names from submissions cannot inject markup. A build with metric
meta-evaluation tables (leaderboard/metric_tables.py) adds them and the column-header notes to the
data: the page then has a Metrics tab, and each metric column names its faithfulness where it matters.
"""
from __future__ import annotations

import html
import json
import shutil
from pathlib import Path
from typing import Any

from leaderboard import headline, metric_tables as meta_tables

WEB_DIR = Path(__file__).with_name("web")
ASSETS = ("app.js", "style.css")
HEADER_END = "</header>"  # a published copy names its dataset tag at the end of the header
HUB = "https://huggingface.co"


def _headlines() -> dict[str, Any]:
    specs = headline.headlines()
    names = {n for spec in specs.values() for n in spec.forget + spec.utility} | headline.known_metrics()
    return {
        "axes": {fam: {"forget": list(spec.forget), "utility": list(spec.utility)}
                 for fam, spec in specs.items()},
        "directions": {name: headline.metric_direction(name) for name in sorted(names)},
    }


def attack_axes(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Benchmark -> the worst-case forget axis its Pareto plots can switch to (leaderboard/attacks.py):
    the knowledge metric and the attacks behind `worst_case_knowledge`. Tabs without attack results
    are absent, and the page shows them no switch."""
    found: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row.get("worst_case_knowledge") is None or not row.get("knowledge_metric"):
            continue
        axis = found.setdefault(row["benchmark"], {"knowledge_metric": row["knowledge_metric"], "attacks": set()})
        # a built table gives every row every column: a label counts where the row has its status
        axis["attacks"] |= {key.split(":")[1] for key, value in row.items()
                            if key.startswith("attack:") and key.endswith(":status") and value is not None}
    return {name: {**axis, "attacks": sorted(axis["attacks"])} for name, axis in sorted(found.items())}


def data_script(payload: dict[str, Any]) -> str:
    # '<' escaped so the text can never close a <script> element even if inlined one day.
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f"window.UBENCH_DATA = {text};\n"


def write_page(folder: Path, meta: dict[str, Any], columns: list[str], rows: list[dict[str, Any]],
               published_rows: list[dict[str, Any]], changes: dict[str, Any],
               metric_tables: dict[str, dict[str, Any]] | None = None) -> None:
    """`metric_tables`: benchmark -> its meta-evaluation table; none: no Metrics tab, no header notes."""
    assets = folder / "assets"
    assets.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(WEB_DIR / "index.html", folder / "index.html")
    for name in ASSETS:
        shutil.copyfile(WEB_DIR / name, assets / name)
    payload = {"meta": meta, "columns": columns, "rows": rows, "published": published_rows,
               "changes": changes, "headlines": _headlines(), "attack_axes": attack_axes(rows),
               "metric_tables": metric_tables or {},
               "metric_notes": meta_tables.column_notes(metric_tables or {}),
               "low_faithfulness": meta_tables.LOW_FAITHFULNESS}
    (assets / "data.js").write_text(data_script(payload), encoding="utf-8")


def dataset_tree_url(repo_id: str, tag: str) -> str:
    return f"{HUB}/datasets/{repo_id}/tree/{tag}"


def stamp_data_source(index_html: str, repo_id: str, tag: str) -> str:
    """index.html of a published copy: a static "data: <repo>@<tag>" line linking the dataset tag.

    Static HTML (not data.js) so the line shows even with scripts off, and the published copy's
    index.html itself names the tag it serves. The build's own page has no tag yet: no line.
    """
    if HEADER_END not in index_html:
        raise ValueError("index.html has no </header>: not a page written by `ubench leaderboard build`")
    url = html.escape(dataset_tree_url(repo_id, tag), quote=True)
    label = html.escape(f"{repo_id}@{tag}")
    line = f'<p id="data-source">data: <a href="{url}" rel="noreferrer noopener">{label}</a></p>'
    return index_html.replace(HEADER_END, f"  {line}\n{HEADER_END}", 1)
