"""Which RWKU targets does SmolLM2-135M-Instruct measurably know? The base model (no unlearning) on the
forget and neighbour probes of candidate targets, SAGO's evaluator variant (the one config/real.yaml
uses), every probe file capped at its first N items. `make real` unlearns the targets with the highest
forget ROUGE-L recall: on a target the model does not know there is nothing to forget.

  UBENCH_MODEL_CACHE=~/.cache/unlearn-bench/models python benchmarks/rwku_known_targets.py \
      --cap 8 --out docs/real-targets.json 117 106 116 14 140 ...

Prints one row per target and writes them (sorted by forget-All) as JSON with the command that made
them, and as a markdown table beside it (same name, .md).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PRESET = "smollm2-135m"
COLUMNS = ("forget_fb", "forget_qa", "forget_aa", "forget_all", "neighbor_fb", "neighbor_qa", "neighbor_all")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("targets", nargs="+", type=int, help="RWKU target ids (1..200)")
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "rwku"), help="RWKU folder")
    parser.add_argument("--cap", type=int, default=8, help="first N items of every probe file")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--out", help="JSON file for the rows")
    return parser.parse_args(argv)


def measure(model, tokenizer, data, target: int, cap: int, batch_size: int) -> dict:
    from evaluation.benchmarks.item_cap import CappedData
    from evaluation.benchmarks.rwku import evaluator

    start = time.perf_counter()
    result, _, _ = evaluator.evaluate(model, tokenizer, CappedData(data, cap), evaluator.Scope([target], []),
                                      evaluator.get_variant("sago"), batch_size=batch_size, progress=False)
    row = {"target": target, "subject": data.target(target).subject,
           **{k: round(result["metrics"][k], 4) for k in COLUMNS},
           "items": result["metric_details"]["items"], "seconds": round(time.perf_counter() - start, 1)}
    return row


def main(argv=None) -> int:
    import torch

    from evaluation import models
    from evaluation.benchmarks.rwku.data import RwkuData

    args = parse_args(argv)
    torch.manual_seed(0)
    data = RwkuData.from_folder(args.data)
    model, tokenizer, _ = models.load_model(PRESET)
    command = "python benchmarks/rwku_known_targets.py " + " ".join(sys.argv[1:] if argv is None else argv)
    rows = []
    for target in args.targets:
        rows.append(measure(model, tokenizer, data, target, args.cap, args.batch_size))
        r = rows[-1]
        print(f"{r['target']:>4} {r['subject'][:28]:<28} forget_all {r['forget_all']:.3f} "
              f"(fb {r['forget_fb']:.2f} qa {r['forget_qa']:.2f} aa {r['forget_aa']:.2f})  "
              f"neighbor_all {r['neighbor_all']:.3f}  {r['seconds']} s", flush=True)
        if args.out:  # after every target: an interrupted measurement keeps what it measured
            record = {"command": command, "model": PRESET, "variant": "sago", "item_cap": args.cap,
                      "torch_threads": torch.get_num_threads(), "complete": len(rows) == len(args.targets),
                      "rows": sorted(rows, key=lambda r: -r["forget_all"])}
            Path(args.out).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
            Path(args.out).with_suffix(".md").write_text(markdown(record), encoding="utf-8")
    return 0


def markdown(record: dict) -> str:
    """The measurement as a table, best-known first."""
    lines = [f"# Which RWKU targets does {record['model']} know?", "",
             f"Base model, evaluator variant `{record['variant']}`, first {record['item_cap']} items of every probe "
             f"file, ROUGE-L recall. Made by `{record['command']}`"
             + ("" if record.get("complete", True) else " (interrupted: the targets measured so far)") + ".", "",
             "| target | subject | forget FB | forget QA | forget AA | forget All | neighbour All |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['target']} | {r['subject']} | {r['forget_fb']:.3f} | {r['forget_qa']:.3f} | {r['forget_aa']:.3f} "
              f"| {r['forget_all']:.3f} | {r['neighbor_all']:.3f} |" for r in record["rows"]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
