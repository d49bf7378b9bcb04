"""Figures from the engine's outputs: G-effect (geffect.jsonl) and training curves (train_log.jsonl).
matplotlib is imported inside the functions so `ubench --help` stays fast."""
from __future__ import annotations

import io
import json
from pathlib import Path

from common import atomic

TRAIN_LOG_PANELS = (  # (title, how to read the value from a log row)
    ("forget loss", lambda row: row["losses"].get("forget")),
    ("retain loss", lambda row: row["losses"].get("retain")),
    ("cos(g_forget, g_retain)", lambda row: row.get("cos_forget_retain")),
    ("cos(update, g_retain)", lambda row: row.get("cos_update_retain")),
)


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    return buffer.getvalue()


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
    return atomic.write_bytes(out, _png(fig))


def read_train_log(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not rows or "step" not in rows[0] or "losses" not in rows[0]:
        raise ValueError(f"{path} holds no training steps (expected train_log.jsonl lines with 'step' and 'losses')")
    return rows


def find_train_logs(paths: list[Path]) -> dict[str, Path]:
    """label -> train_log.jsonl; a label is the run's path below the common parent (e.g. npo+gru/seed0)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(path.rglob("train_log.jsonl"))
        elif path.is_file():
            found.append(path)
        else:
            raise FileNotFoundError(f"{path} does not exist: pass train_log.jsonl files or folders holding them")
    if not found:
        raise FileNotFoundError(f"no train_log.jsonl below {', '.join(map(str, paths))}")
    folders = [f.parent.resolve() for f in found]
    common = Path(*Path(folders[0]).parts[:min(len(f.parts) for f in folders)])
    while not all(f.is_relative_to(common) for f in folders):
        common = common.parent
    return {(str(f.relative_to(common)) if f != common else f.name) or f.name: log
            for f, log in zip(folders, found)}


def plot_train_logs(runs: dict[str, list[dict]], out: Path, title: str = "") -> Path:
    """2 × 2 panels (TRAIN_LOG_PANELS), one line per run; steps without a value are skipped."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True)
    colours = plt.get_cmap("tab20" if len(runs) > 10 else "tab10")
    for axis, (panel, read) in zip(axes.flat, TRAIN_LOG_PANELS):
        for index, (label, rows) in enumerate(runs.items()):
            points = [(row["step"], read(row)) for row in rows if read(row) is not None]
            if points:
                axis.plot(*zip(*points), label=label, linewidth=1.2, color=colours(index % colours.N))
        if panel.startswith("cos"):
            axis.axhline(0, color="black", linewidth=0.8)
        axis.set_title(panel)
    for axis in axes[1]:
        axis.set_xlabel("optimizer step")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(4, max(1, len(labels))), fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.04 + 0.03 * ((len(labels) - 1) // 4), 1, 1))
    return atomic.write_bytes(out, _png(fig))
