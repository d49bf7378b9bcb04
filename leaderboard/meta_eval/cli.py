"""`ubench meta-eval table | render`: the metric meta-evaluation's table of one benchmark and the
docs page of every benchmark's table."""
from __future__ import annotations

import argparse
import json
import sys


def _table(args: argparse.Namespace) -> int:
    from leaderboard.meta_eval import pools, table

    try:
        spec = json.loads(args.spec)
        path = table.write(args.results, spec, args.out)
    except (pools.PoolError, ValueError, KeyError) as error:
        print(f"meta-eval table: error: {error}", file=sys.stderr)
        return 1
    print(f"meta-eval: {path}")
    return 0


def _render(args: argparse.Namespace) -> int:
    from leaderboard.meta_eval import render

    try:
        path = render.write(args.results, args.out, args.source)
    except ValueError as error:
        print(f"meta-eval render: error: {error}", file=sys.stderr)
        return 1
    print(f"meta-eval: {path}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "meta-eval", help="which metrics can be trusted: faithfulness and robustness of every metric",
        description="open-unlearning's metric meta-evaluation: per benchmark, each metric's faithfulness "
                    "(AUC separating models that hold the forget knowledge from models that never saw it) and "
                    "robustness to quantization (Q) and relearning (R), with bootstrap intervals over models.")
    commands = parser.add_subparsers(dest="meta_eval_command", metavar="<subcommand>", required=True)
    table = commands.add_parser("table", help="write <results>/meta_eval/<benchmark>/metric_table.json")
    table.add_argument("--results", default="results", help="results folder (default: results)")
    table.add_argument("--spec", required=True,
                       help="JSON: benchmark, split, pools {P, N: {description, members}}, robustness "
                            "{quantize, relearn}, bootstrap, replication (the DAG passes config meta_eval's block)")
    table.add_argument("--out", default=None, help="output file (default: <results>/meta_eval/<benchmark>/metric_table.json)")
    table.set_defaults(func=_table)
    render = commands.add_parser("render", help="write docs/meta-eval.md from every benchmark's table")
    render.add_argument("--results", default="results", help="results folder (default: results)")
    render.add_argument("--out", default="docs/meta-eval.md", help="Markdown file (default: docs/meta-eval.md)")
    render.add_argument("--source", default=None,
                        help="one line on how these tables were produced (e.g. a reduced config), shown on the page")
    render.set_defaults(func=_render)
