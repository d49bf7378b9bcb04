"""`ubench report`: a paper config's published table next to this suite's results, and the claims.

For each published row of the config's `report.sources` (leaderboard/data/published.yaml): the
published value, ours (mean and 95% t-interval over seeds of the aggregated row of exactly this
grid's configuration: same method, parametrization, evaluator variant and hyperparameters), the
difference and whether the published value lies in our interval. Rows without results say what to
run; published rows the grid does not run say why (`report.not_in_grid`). Each row names the
config's deviations from the paper's official settings that concern it (`report.deviations`,
workflows/effective.py), listed with their text below the table, and runs beyond the paper's code
(experiments labelled `extra`) are listed as such. `report.claims` adds the seed papers'
qualitative claims (leaderboard/claims.py), checked only on the rows that are this
config's runs with all of their seeds (`config_rows`); on other results a claim cannot be checked.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from common import atomic, contract
from leaderboard import aggregate, claims, report_mapping
from leaderboard import report_render as R
from leaderboard.claims import fmt

STEM = "report"


def load_grid(configfile: str | Path):
    """The grid exactly as the Snakefile builds it: Snakemake's `validate` fills the schema's defaults
    into the config (e.g. hyperparameters.gradient_checkpointing) before the grid is expanded, and the
    runs' hyperparameter hashes, hence the rows, include them."""
    from snakemake.utils import validate

    from workflows import grid

    config = grid.load_config(configfile)
    validate(config, str(grid.SCHEMA_PATH))
    return grid.build(config)


def load_rows(results: list[str | Path]) -> tuple[list[dict[str, Any]], list[tuple[Path, dict[str, Any]]], list[str]]:
    """Aggregated rows and the documents of the existing results folders; notes for absent ones."""
    present = [Path(r) for r in results if Path(r).is_dir()]
    notes = [f"results folder `{r}` does not exist yet: nothing of this grid has run there"
             for r in results if not Path(r).is_dir()]
    if not present:
        return [], [], notes
    documents = aggregate.load_results(present)
    return aggregate.aggregate(documents), documents, notes


def _row_key(row: dict[str, Any]) -> tuple:
    return (row["benchmark"], row["split"], row["model"], row["role"], row["evaluator_variant"])


def ours_for(match: report_mapping.Match, rows: list[dict[str, Any]], variant: str) -> list[tuple[Any, dict | None]]:
    """[(grid run or reference, our aggregated row or None)]: one entry per parametrization/config."""
    row = match.row
    if match.reference is not None:
        found = [r for r in rows if _row_key(r) == (row["benchmark"], row["split"], match.grid_model,
                                                    row["role"], variant)]
        return [(match.reference, _first(found))]
    out, seen = [], set()
    for run in match.runs:
        wanted = aggregate.hyperparameters_hash(run.hyperparameters)
        if (run.parametrization, wanted) in seen:
            continue  # seeds of one configuration share the row
        seen.add((run.parametrization, wanted))
        found = [r for r in rows if _row_key(r) == (run.benchmark, run.split, run.model, "unlearned", variant)
                 and (r["method"], r["rectifier"], r["parametrization"], r["hyperparameters_hash"])
                 == (run.objective, run.rectifier, run.parametrization, wanted)]
        out.append((run, _first(found)))
    return out


def _first(found: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The suite's own row of a configuration before any submission's (rows are sorted by row_id,
    in which `submissions/<name>/` may sort either side of a method's folder)."""
    return min(found, key=lambda r: (bool(r.get("submitter")), r["row_id"])) if found else None


def targets_to_run(match: report_mapping.Match, entry: Any, our_row: dict | None, results_dir: str) -> list[str]:
    """metrics.json files of this row's seeds that do not exist in the results yet."""
    if match.reference is not None:
        return [] if our_row else [str(contract.reference_dir(results_dir, entry.benchmark, entry.split,
                                                               entry.model, match.row["role"]) / "metrics.json")]
    done = {s.strip() for s in str((our_row or {}).get("seeds") or "").split(",") if s.strip()}
    return [str(run.path(results_dir) / "metrics.json") for run in match.runs
            if run.parametrization == entry.parametrization
            and aggregate.hyperparameters_hash(run.hyperparameters) == aggregate.hyperparameters_hash(entry.hyperparameters)
            and str(run.seed) not in done]


def compare(published: float, row: dict[str, Any] | None, metric: str) -> dict[str, Any]:
    """Our mean / interval for `metric`, the difference and whether `published` lies inside."""
    if row is None:
        return {"status": "no results"}
    mean = row.get(f"metric:{metric}")
    if mean is None:
        return {"status": f"our evaluator reports no `{metric}`" if f"metric:{metric}" not in row
                else f"`{metric}` not computed (null)"}
    low, high = row.get(f"metric:{metric}:ci_low"), row.get(f"metric:{metric}:ci_high")
    inside = None if low is None or high is None else low <= published <= high
    return {"status": "ok", "mean": mean, "low": low, "high": high, "delta": mean - published,
            "inside": inside, "n": row.get("n_seeds")}


def _interval(result: dict[str, Any]) -> str:
    if result.get("low") is None:
        return "— (1 seed)" if result.get("n") == 1 else "—"
    return f"[{fmt(result['low'])}, {fmt(result['high'])}]"


def _inside(result: dict[str, Any]) -> str:
    if result["status"] != "ok":
        return "—"
    if result["inside"] is None:
        return "n/a (needs >= 2 seeds)"
    return "yes" if result["inside"] else "no"


def _what(row: dict[str, Any], match: report_mapping.Match, entry: Any) -> str:
    if match.reference is not None:
        return f"{row['role']} model"
    method = contract.method_dirname(entry.objective, entry.rectifier, entry.parametrization)
    return method


def published_section(matches, rows, layout, configfile: str, cores: int) -> list[R.Block]:
    from workflows.effective import row_deviations

    blocks: list[R.Block] = []
    results_dir = layout.results
    table, todo = [], []
    for match in matches:
        if not match.in_grid:
            continue
        row = match.row
        variant = layout.evaluation_variant(row["benchmark"])
        for entry, ours in ours_for(match, rows, variant):
            missing = targets_to_run(match, entry, ours, results_dir)
            named = ", ".join(row_deviations(layout.grid.config, entry, match.reference is not None)) or "—"
            for metric, value in row["metrics"].items():
                result = compare(value, ours, metric)
                ok = result["status"] == "ok"
                table.append([row["source"], f"{row['benchmark']}/{row['split']}", match.grid_model,
                              row["label"], _what(row, match, entry), metric, fmt(value),
                              fmt(result["mean"]) if ok else result["status"], _interval(result) if ok else "—",
                              (ours or {}).get("n_seeds") or 0, fmt(result["delta"]) if ok else "—", _inside(result),
                              named])
            if missing:
                todo.append((f"{row['source']} {row['label']} ({row['benchmark']}/{row['split']}, "
                             f"{match.grid_model}, {_what(row, match, entry)})", missing))
    blocks.append(R.heading("Published rows and ours"))
    if table:
        variants = ", ".join(f"{b} `{layout.evaluation_variant(b)}`"
                             for b in sorted({m.row["benchmark"] for m in matches if m.in_grid}))
        blocks.append(R.paragraph("Ours: mean over seeds and 95% t-interval (one seed has no interval) of the "
                                  "row of exactly this config (method, parametrization, evaluator variant, "
                                  f"hyperparameters), scored with evaluator variant {variants}. Delta = ours - "
                                  "published. Deviations: the config's named deviations from the paper's "
                                  "official settings that concern the row (listed below)."))
        blocks.append(R.table(["source", "benchmark/split", "model", "published row", "ours", "metric",
                               "published", "ours (mean)", "95% interval", "seeds", "delta",
                               "published in interval", "deviations"], table))
    else:
        blocks.append(R.paragraph("No published row of this config's sources is in its grid."))
    if todo:
        blocks.append(R.heading("Rows without (all) results: what to run", 3))
        blocks.append(R.paragraph("Each command runs only the missing seeds of one row (Snakemake builds their "
                                  "inputs: data, fine-tuned references, the unlearned model):"))
        blocks.append(R.bullets([f"{label}: `snakemake --cores {cores} --configfile {configfile} {' '.join(paths)}`"
                                 for label, paths in todo]))
    return blocks


def deviations_section(config: dict[str, Any]) -> list[R.Block]:
    """The config's named deviations from the paper's official settings, and its extra runs."""
    from workflows.effective import deviations, extra_experiments

    blocks: list[R.Block] = []
    if deviations(config):
        blocks += [R.heading("Deviations from the paper's official settings", 3),
                   R.table(["deviation", "rows", "what differs"],
                           [[d["name"], ", ".join(f"{k}: {v}" for k, v in d.get("when", {}).items()) or "all",
                             d["text"]] for d in deviations(config)])]
    extras = extra_experiments(config)
    if extras:
        def runs(e):
            return " x ".join("/".join(map(str, e[key])) for key in ("objectives", "rectifiers"))

        blocks += [R.heading("Runs beyond the paper's code (label: extra)", 3),
                   R.bullets([f"{e.get('name', '?')}: {runs(e)} ({e.get('note', 'no note')})" for e in extras])]
    return blocks


def excluded_section(matches) -> list[R.Block]:
    rows = [[m.row["source"], f"{m.row['benchmark']}/{m.row['split']}", m.row["model"], m.row["label"],
             m.excluded or f"not in this grid: {m.missing}"] for m in matches if not m.in_grid]
    if not rows:
        return []
    return [R.heading("Published rows not in this grid"), R.table(["source", "benchmark/split", "model",
                                                                    "published row", "reason"], rows)]


def sources_section(block: dict[str, Any], published_rows: list[dict[str, Any]]) -> list[R.Block]:
    seen, items = set(), []
    for row in published_rows:
        if row["source"] in seen:
            continue
        seen.add(row["source"])
        hand = " (second-hand)" if row["second_hand"] else ""
        items.append(f"`{row['source']}`: {row['source_title']}{hand}. {row['cite']} <{row['url']}>. "
                     f"Protocol: {row['protocol']}")
    notes = [f"{r['source']} {r['label']} ({r['benchmark']}/{r['split']}, {r['model']}): {r['note']}"
             for r in published_rows if r.get("note")]
    blocks = [R.heading("Sources"), R.bullets(items)] if items else []
    if notes:
        blocks += [R.heading("Notes on published rows", 3), R.bullets(notes)]
    return blocks


def config_rows(rows: list[dict[str, Any]], grid, layout) -> tuple[list[dict[str, Any]], list[str]]:
    """The aggregated rows that are this config's runs, and why the others are left out.

    A row is the config's when it is one of the grid's configurations (benchmark, split, model,
    method, parametrization, hyperparameters, the config's evaluator variant), holds every seed the
    grid runs for it and is not a submission's; a reference row when the grid runs its benchmark,
    split and model under that variant. A claim checked on other rows (another config's results
    with other seeds or hyperparameters) would not be this config's claim."""
    wanted: dict[tuple, set[int]] = {}
    grounds = set()
    for run in grid.runs:
        variant = layout.evaluation_variant(run.benchmark)
        key = (run.benchmark, run.split, run.model, run.objective, run.rectifier, run.parametrization,
               aggregate.hyperparameters_hash(run.hyperparameters), variant)
        wanted.setdefault(key, set()).add(int(run.seed))
        grounds.add((run.benchmark, run.split, run.model, variant))
    kept, incomplete, foreign = [], [], 0
    for row in rows:
        ground = (row["benchmark"], row["split"], row["model"], row["evaluator_variant"])
        if row.get("submitter") or ground not in grounds:
            foreign += 1
            continue
        if row["role"] in contract.REFERENCE_ROLES:
            kept.append(row)
            continue
        seeds = wanted.get((row["benchmark"], row["split"], row["model"], row["method"], row["rectifier"],
                            row["parametrization"], row["hyperparameters_hash"], row["evaluator_variant"]))
        if seeds is None:
            foreign += 1
            continue
        have = {int(s) for s in str(row.get("seeds") or "").split(",") if s.strip()}
        if seeds <= have:
            kept.append(row)
        else:
            incomplete.append(f"{row['benchmark']}/{row['split']}/{row['model']} "
                              f"{contract.method_dirname(row['method'], row['rectifier'], row['parametrization'])}"
                              f" (seeds {', '.join(map(str, sorted(have))) or 'none'} of "
                              f"{', '.join(map(str, sorted(seeds)))})")
    notes = []
    if foreign:
        notes.append(f"{foreign} aggregated row(s) are not runs of this config (another configuration, "
                     "evaluator variant or a submission) and are not used for the claims")
    if incomplete:
        shown = "; ".join(incomplete[:5]) + (f"; and {len(incomplete) - 5} more" if len(incomplete) > 5 else "")
        notes.append(f"{len(incomplete)} row(s) of this config lack some of its seeds and are not used for "
                     f"the claims until they are complete: {shown}")
    return kept, notes


def _mean_ci(row: dict[str, Any], column: str | None, low: str | None = None, high: str | None = None) -> str:
    """`mean [low, high]` of one aggregated column (metric:<name> or utility_at_matched)."""
    if not column:
        return "—"
    low, high = row.get(low or f"{column}:ci_low"), row.get(high or f"{column}:ci_high")
    interval = f" [{fmt(low)}, {fmt(high)}]" if low is not None and high is not None else ""
    return f"{fmt(row.get(column))}{interval}"


def results_section(rows: list[dict[str, Any]]) -> list[R.Block]:
    """Every row of the grid: reference models first, then the unlearned methods, with the headline
    forget and utility metrics and the utility at matched forgetting (mean over seeds, 95% t-interval)."""
    def order(row):
        return (row["role"] == "unlearned", row["benchmark"], row["split"], row["model"], row["method"],
                row["rectifier"], row.get("parametrization") or "")

    # the forget metric after each attack (leaderboard/attacks.py columns attack:<label>:<metric>)
    attacks = sorted({key.split(":")[1] for row in rows for key in row
                      if key.startswith("attack:") and key.endswith(f":{row.get('forget_metric')}")})
    table = []
    for row in sorted(rows, key=order):
        forget, utility = row.get("forget_metric"), row.get("utility_metric")
        label = row["role"] if row["role"] != "unlearned" else contract.method_dirname(
            row["method"], row["rectifier"], row.get("parametrization") or "full")
        table.append([f"{row['benchmark']}/{row['split']}/{row['model']}", label, row.get("seeds") or "—",
                      f"{forget}: {_mean_ci(row, f'metric:{forget}')}" if forget else "—",
                      f"{utility}: {_mean_ci(row, f'metric:{utility}')}" if utility else "—",
                      _mean_ci(row, "utility_at_matched", "utility_at_matched_ci_low", "utility_at_matched_ci_high")
                      if row["role"] == "unlearned" else "—",
                      row.get("matched_status") or "—",
                      *(_mean_ci(row, f"attack:{label}:{forget}") if forget else "—" for label in attacks)])
    if not table:
        return [R.heading("Results"), R.paragraph("No complete row of this grid yet.")]
    return [R.heading("Results"),
            R.paragraph("Mean over seeds with the 95% t-interval; utility at matched forgetting is read off each "
                        "seed's trajectory where it reaches the matched forgetting level (leaderboard/matched.py)."),
            R.table(["benchmark", "row", "seeds", "forget", "utility", "utility@matched", "matched",
                     *(f"forget after {label}" for label in attacks)], table)]


def claims_section(names: list[str], rows, documents, notes: list[str] | None = None) -> list[R.Block]:
    """The claims, checked on `rows` (the config's own: `config_rows`) and their documents."""
    blocks = [R.heading("Seed-paper claims")]
    if notes:
        blocks.append(R.bullets(notes))
    verdicts = []
    for name in names:
        claim = claims.check(name, rows, documents)
        verdicts.append([claim.name, claim.verdict, claim.summary])
        blocks += [R.heading(f"{claim.name}: {claim.verdict}", 3), R.paragraph(f"Claim: {claim.paper}"),
                   R.paragraph(f"Here: {claim.summary}")]
        if claim.rows:
            blocks.append(R.table(claim.headers, claim.rows))
        if claim.notes:
            blocks.append(R.bullets(claim.notes))
    head = 2 if notes else 1
    return [*blocks[:head], R.table(["claim", "verdict", "numbers"], verdicts), *blocks[head:]]


def build(configfile: str | Path, results: list[str] | None = None, cores: int = 2) -> tuple[str, list[R.Block]]:
    from workflows.layout import Layout

    grid = load_grid(configfile)
    layout = Layout(grid)
    block = report_mapping.report_block(grid.config)
    results = list(results) if results else [layout.results]
    rows, documents, notes = load_rows(results)
    matches = report_mapping.match_all(grid.config, grid)
    published_rows = [m.row for m in matches]
    name = grid.config.get("name", Path(configfile).stem)
    title = block.get("title") or f"Reproduction report: {name}"
    blocks = [R.heading(title, 1),
              R.paragraph(f"Config `{configfile}` ({grid.config.get('description', name)}); results from "
                          + ", ".join(f"`{r}`" for r in results) + f": {len(documents)} metrics.json, "
                          f"{len(rows)} aggregated rows. Regenerate with "
                          f"`ubench report --configfile {configfile}`."),
              R.paragraph(f"Run the whole grid: `snakemake --cores {cores} --configfile {configfile}` "
                          f"({len(grid.runs)} runs; `ubench grid --configfile {configfile}` lists them).")]
    if notes:
        blocks.append(R.bullets(notes))
    if block["sources"]:
        blocks += published_section(matches, rows, layout, str(configfile), cores)
        blocks += excluded_section(matches)
        blocks += sources_section(block, published_rows)
    elif not block["claims"]:
        blocks.append(R.paragraph("This config names no published sources (`report.sources`): no published "
                                  "table of this paper is transcribed in leaderboard/data/published.yaml "
                                  "(see /work/shared/reference/published.md section 8)."))
    blocks += deviations_section(grid.config)
    if block.get("results"):
        blocks += results_section(config_rows(rows, grid, layout)[0])
    if block["claims"]:
        own, own_notes = config_rows(rows, grid, layout)
        ids = {row["row_id"] for row in own}
        own_documents = [(path, d) for path, d in documents if aggregate.row_id(d) in ids]
        blocks += claims_section(block["claims"], own, own_documents, own_notes)
    return title, blocks


def write(configfile: str | Path, out: str | Path, results: list[str] | None = None, cores: int = 2,
          stem: str = STEM) -> tuple[Path, Path]:
    title, blocks = build(configfile, results, cores)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    md = atomic.write_text(out / f"{stem}.md", R.to_markdown(blocks))
    page = atomic.write_text(out / f"{stem}.html", R.to_html(blocks, title))
    return Path(md), Path(page)
