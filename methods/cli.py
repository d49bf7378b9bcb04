"""`ubench methods list`: the registered plug-ins; `ubench plot ...`: figures from the engine's
outputs (drawing lives in methods/plots.py).

  ubench methods list --markdown
  ubench plot geffect results/.../geffect.jsonl --out geffect.png
  ubench plot train-log results/tofu-tiny/forget10/tiny-llama --out curves.png
"""
from __future__ import annotations

import argparse
from pathlib import Path

from methods.registry import REGISTRIES, Registry


def plugin_rows(registry: Registry) -> list[tuple[str, str]]:
    """(name, summary) of every registered plug-in of one kind; attacks also name their variants."""
    rows = []
    for name in registry.names():
        variants = registry.class_literal(name, "variants")
        label = f"{name} ({', '.join(variants)})" if variants else name
        rows.append((label, registry.summary(name)))
    return rows


def plugin_listing(markdown: bool) -> str:
    """Every registry's names and one-line summaries, read from source (no torch import). The
    Markdown form is the generated block of methods/README.md (a test keeps the two equal)."""
    blocks = []
    for registry in REGISTRIES:
        rows = plugin_rows(registry)
        if markdown:
            lines = [f"**{registry.kind}s** ({len(rows)}, `{registry.package.replace('.', '/')}/`)", "",
                     f"| {registry.kind} | what |", "|---|---|"]
            lines += [f"| `{label}` | {summary.replace('|', '/')} |" for label, summary in rows]
        else:
            width = max(len(label) for label, _ in rows)
            lines = [f"{registry.kind}s ({len(rows)}):"] + [f"  {label:<{width}}  {summary}" for label, summary in rows]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


README = Path(__file__).with_name("README.md")
BEGIN, END = "<!-- begin: ubench methods list --markdown -->", "<!-- end: ubench methods list --markdown -->"


def readme_with_listing(text: str, listing: str) -> str:
    """`text` with the generated block between the README's markers replaced by `listing`."""
    if BEGIN not in text or END not in text:
        raise ValueError(f"{README}: the markers {BEGIN!r} and {END!r} are missing; put them back around "
                         "the 'Registered plug-ins' block")
    head, rest = text.split(BEGIN, 1)
    return f"{head}{BEGIN}\n{listing}{END}{rest.split(END, 1)[1]}"


def _list_command(args) -> int:
    if args.update_readme:
        README.write_text(readme_with_listing(README.read_text(encoding="utf-8"), plugin_listing(True)),
                          encoding="utf-8")
        print(f"updated {README}")
        return 0
    print(plugin_listing(args.markdown), end="")
    return 0


def _geffect_command(args) -> int:
    from methods.plots import plot_geffect, read_geffect  # matplotlib only when drawing

    out = plot_geffect(read_geffect(Path(args.geffect)), Path(args.out), args.title or "")
    print(out)
    return 0


def _train_log_command(args) -> int:
    from methods.plots import find_train_logs, plot_train_logs, read_train_log

    logs = find_train_logs([Path(p) for p in args.paths])
    runs = {label: read_train_log(path) for label, path in logs.items()}
    print(plot_train_logs(runs, Path(args.out), args.title or ""))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    methods = subparsers.add_parser("methods", help="the registered plug-ins: objectives, rectifiers, ...",
                                    description="List the engine's registered plug-ins.")
    methods_sub = methods.add_subparsers(dest="methods_command", metavar="<command>", required=True)
    listing = methods_sub.add_parser(
        "list", help="every objective, rectifier, parametrization, analyzer and attack with its summary",
        description="Every registered objective, rectifier, parametrization, analyzer and attack (with "
                    "its variants), read from the plug-in files' source without importing torch.")
    listing.add_argument("--markdown", action="store_true", help="Markdown tables (methods/README.md's block)")
    listing.add_argument("--update-readme", action="store_true",
                         help="rewrite the generated block of methods/README.md with the Markdown tables")
    listing.set_defaults(func=_list_command)
    plot = subparsers.add_parser("plot", help="draw figures from training outputs (G-effect, train logs)",
                                 description="Draw figures from the engine's analyzer outputs.")
    kinds = plot.add_subparsers(dest="plot_kind", metavar="<figure>", required=True)
    geffect = kinds.add_parser("geffect", help="per-group bars and per-step curves of a geffect.jsonl",
                               description="Per-layer-group bars (mean over the recorded steps) and per-step "
                                           "curves of the unlearning (e_u) and retaining (e_r) G-effect.")
    geffect.add_argument("geffect", help="geffect.jsonl written by the geffect analyzer")
    geffect.add_argument("--out", required=True, help="PNG file to write")
    geffect.add_argument("--title", help="figure title (e.g. the run's method)")
    geffect.set_defaults(func=_geffect_command)
    curves = kinds.add_parser(
        "train-log", help="per-step losses and gradient cosines of one or more runs",
        description="Overlay the train_log.jsonl of several runs: forget and retain losses, "
                    "cos(forget, retain), cos(update, retain) per optimizer step, one line per run. "
                    "Arguments are train_log.jsonl files or folders searched for them.")
    curves.add_argument("paths", nargs="+", help="train_log.jsonl files or folders (searched recursively)")
    curves.add_argument("--out", required=True, help="PNG file to write")
    curves.add_argument("--title", help="figure title")
    curves.set_defaults(func=_train_log_command)
