"""`ubench plot ...`: figures from the engine's analyzer outputs.

  ubench plot geffect results/.../geffect.jsonl --out geffect.png
"""
from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

from common import atomic


def read_geffect(path: Path) -> list[dict]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: run training with analyzers: [geffect] "
                                "(it writes geffect.jsonl next to train_log.jsonl)")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not rows or "e_u" not in rows[0]:
        raise ValueError(f"{path} holds no G-effect rows (expected lines with 'e_u' and 'e_r')")
    return rows


def plot_geffect(rows: list[dict], out: Path, title: str = "") -> Path:
    """Left: mean per-group e_u and e_r over the recorded steps; right: totals per step."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from methods.analysis.geffect import block_order

    groups = sorted(rows[0]["e_u"], key=block_order)  # embed, block0..n, lm_head, other
    steps = [r["step"] for r in rows]
    fig, (bars, curves) = plt.subplots(1, 2, figsize=(max(8, 0.5 * len(groups) + 6), 4))
    x = np.arange(len(groups))
    for offset, key, label in ((-0.2, "e_u", "unlearning e_u = <∇L, ∇R_f>"), (0.2, "e_r", "retaining e_r = <∇L, ∇R_r>")):
        means = [float(np.mean([r[key][g] for r in rows])) for g in groups]
        bars.bar(x + offset, means, width=0.4, label=label)
    bars.axhline(0, color="black", linewidth=0.8)
    bars.set_xticks(x, groups, rotation=60, ha="right", fontsize=8)
    bars.set_title(f"per group, mean over {len(rows)} steps")
    bars.legend(fontsize=8, loc="best")
    for key, label in (("e_u_total", "e_u (want < 0)"), ("e_r_total", "e_r (want ≥ 0)")):
        curves.plot(steps, [r[key] for r in rows], marker="o", label=label)
    curves.axhline(0, color="black", linewidth=0.8)
    curves.set_xlabel("optimizer step")
    curves.set_title("G-effect per step (exact batch gradients)")
    curves.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    return atomic.write_bytes(out, buffer.getvalue())


def _geffect_command(args) -> int:
    out = plot_geffect(read_geffect(Path(args.geffect)), Path(args.out), args.title or "")
    print(out)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    plot = subparsers.add_parser("plot", help="draw figures from analyzer outputs (G-effect)",
                                 description="Draw figures from the engine's analyzer outputs.")
    kinds = plot.add_subparsers(dest="plot_kind", metavar="<figure>", required=True)
    geffect = kinds.add_parser("geffect", help="per-group bars and per-step curves of a geffect.jsonl",
                               description="Per-layer-group bars (mean over the recorded steps) and per-step "
                                           "curves of the unlearning (e_u) and retaining (e_r) G-effect.")
    geffect.add_argument("geffect", help="geffect.jsonl written by the geffect analyzer")
    geffect.add_argument("--out", required=True, help="PNG file to write")
    geffect.add_argument("--title", help="figure title (e.g. the run's method)")
    geffect.set_defaults(func=_geffect_command)
