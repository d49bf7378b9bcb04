"""`ubench plot ...`: figures from the engine's outputs (drawing lives in methods/plots.py).

  ubench plot geffect results/.../geffect.jsonl --out geffect.png
  ubench plot train-log results/tofu-tiny/forget10/tiny-llama --out curves.png
"""
from __future__ import annotations

import argparse
from pathlib import Path

from methods.plots import find_train_logs, plot_geffect, plot_train_logs, read_geffect, read_train_log


def _geffect_command(args) -> int:
    out = plot_geffect(read_geffect(Path(args.geffect)), Path(args.out), args.title or "")
    print(out)
    return 0


def _train_log_command(args) -> int:
    logs = find_train_logs([Path(p) for p in args.paths])
    runs = {label: read_train_log(path) for label, path in logs.items()}
    print(plot_train_logs(runs, Path(args.out), args.title or ""))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
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
