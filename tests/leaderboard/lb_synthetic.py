"""Synthetic, schema-valid metrics.json documents for leaderboard tests (no real runs exist yet)."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from common import contract
from common.provenance import config_hash
from leaderboard import validate

METHODS = ("ga", "graddiff", "npo", "simnpo")
RECTIFIERS = ("none", "gru", "pcgrad", "sago")


def config_for(method: str, rectifier: str, seed: int) -> dict[str, Any]:
    return {"method": method, "rectifier": rectifier, "seed": seed, "lr": 1e-5}


def document(benchmark="tofu-tiny", split="forget10", model="tiny-llama", role="unlearned",
             method="npo", rectifier="none", parametrization="full", seed=0,
             metrics: dict[str, Any] | None = None, flags: dict[str, bool] | None = None,
             variant="ours", state="ok", step=None, config=None) -> dict[str, Any]:
    config = config if config is not None else config_for(method, rectifier, seed)
    return {
        "schema_version": contract.SCHEMA_VERSION,
        "identity": {"benchmark": benchmark, "split": split, "model": model, "role": role,
                     "method": method, "rectifier": rectifier, "parametrization": parametrization,
                     "seed": seed, "hyperparameters": {"lr": 1e-5}},
        "metrics": metrics if metrics is not None else {"forget_quality": 0.5, "model_utility": 0.5},
        "flags": flags or {},
        "evaluator": {"name": validate.expected_evaluator(benchmark), "variant": variant, "item_cap": None},
        "cost": {"train_seconds": 10.0 + seed, "optimizer_steps": 20, "backward_passes": 40,
                 "peak_memory_bytes": 1000, "trainable_parameters": 1600000},
        "provenance": {"config_hash": config_hash(config), "code_version": "git:test",
                       "libraries": {"torch": "2.13.0"}, "hardware": {"accelerator": "cpu", "cpu_count": 2}},
        "status": {"state": state, "step": step},
    }


def result_dir(root: Path, ident: dict[str, Any]) -> Path:
    """The run's (or reference model's) folder of the result contract."""
    if ident["role"] in contract.REFERENCE_ROLES:
        return contract.reference_dir(root, ident["benchmark"], ident["split"], ident["model"], ident["role"])
    return contract.run_dir(root, ident["benchmark"], ident["split"], ident["model"], ident["method"],
                            ident["rectifier"], ident["seed"], ident["parametrization"])


def write(root: Path, doc: dict[str, Any]) -> Path:
    folder = result_dir(root, doc["identity"])
    body = {k: v for k, v in doc.items() if k != "schema_version"}
    return contract.write_metrics(folder / "metrics.json", body)


def demo_grid(root: Path, seeds=(0, 1)) -> None:
    """16 unlearned rows (4 objectives x 4 rectifiers) plus target and retain, like `make demo`."""
    for i, method in enumerate(METHODS):
        for j, rectifier in enumerate(RECTIFIERS):
            for seed in seeds:
                fq = 0.05 + 0.2 * i + 0.01 * seed
                mu = 0.6 - 0.1 * i + 0.05 * j + 0.005 * seed
                write(root, document(method=method, rectifier=rectifier, seed=seed,
                                     metrics={"forget_quality": fq, "model_utility": mu,
                                              "forget_truth_ratio": 0.6, "privleak": -10.0 + i}))
    write(root, document(role="target", method="target", metrics={"forget_quality": 1e-5, "model_utility": 0.62}))
    write(root, document(role="retain", method="retain", metrics={"forget_quality": 1.0, "model_utility": 0.6}))


def attack_document(doc: dict[str, Any], label: tuple[str, str], attacked: float | None, before: float | None,
                    target: float = 0.9, args: dict[str, Any] | None = None, state: str = "ok") -> dict[str, Any]:
    """`doc` (a run's or a reference's document) after one attack: its identity plus the attack, the
    knowledge metric (forget_prob) after it and the values before it on the same items."""
    out = copy.deepcopy(doc)
    out["identity"]["attack"] = {"name": label[0], "variant": label[1], "args": dict(args or {})}
    out["metrics"] = {"forget_prob": attacked} if state == "ok" else {}
    out["status"] = {"state": state}
    out["metric_details"] = {"attack": {"basis": {"before": {"forget_prob": before},
                                                  "target": {"forget_prob": target}}}}
    return out


def write_attack(root: Path, doc: dict[str, Any]) -> Path:
    """An attack document where the DAG writes it: `<run or reference>/attacks/<name>-<variant>/`."""
    ident = doc["identity"]
    folder = result_dir(root, ident)
    label = f"{ident['attack']['name']}-{ident['attack']['variant']}"
    body = {k: v for k, v in doc.items() if k != "schema_version"}
    return contract.write_metrics(folder / "attacks" / label / "metrics.json", body)


def attack_grid(root: Path, attacks=(("quantize", "int4"), ("relearn", "forget-split"))) -> None:
    """Every metrics.json under `root` attacked: forget_prob 0.1 before (target 0.9, retain 0.2),
    the attack adds 0.05 (quantize) or 0.3 (relearn; retain: 0.1), more for later methods."""
    for file in sorted(root.rglob("metrics.json")):
        if "attacks" in file.parts:
            continue
        doc = contract.read_metrics(file)
        role = doc["identity"]["role"]
        before = {"target": 0.9, "retain": 0.2}.get(role, 0.1)
        shift = METHODS.index(doc["identity"]["method"]) / 20 if role == "unlearned" else 0.0
        for label in attacks:
            gain = 0.05 if label[0] == "quantize" else (0.1 if role == "retain" else 0.3)
            write_attack(root, attack_document(doc, label, min(before + gain + shift + doc["identity"]["seed"] / 100, 1.0),
                                               before))
