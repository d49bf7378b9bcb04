"""Every `metrics.json` under one or more results folders -> one leaderboard table (list of rows).

One row per (benchmark, split, model, role, submitter, method, rectifier, parametrization, evaluator
variant, hyperparameters): seeds of one row share everything but the seed, so a run with another learning
rate is its own row, never a second seed of another. Seeds are averaged with a 95% t-interval. Rows
that cannot be compared fairly stay in the table with `comparable = False` and their reasons in
`flags`; `pareto_rank` ranks comparable unlearned rows only, within one benchmark, split, model and
evaluator variant. The same rank groups get utility at matched forgetting (`matched.py`, from each
seed's metrics.json `trajectory`) and significance letters (`significance.py`, from each seed's
`per_item.parquet` beside its metrics.json).
"""
from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from common import contract
from evaluation.benchmarks.base import KS_FLOOR
from leaderboard import attacks, comparability, headline, matched, significance, validate
from leaderboard.pareto import pareto_layers
from leaderboard.stats import mean_interval

COST_FIELDS = ("train_seconds", "optimizer_steps", "backward_passes", "peak_memory_bytes",
               "trainable_parameters", "eval_seconds", "sequences_scored", "prompts_generated")
# Costs a machine measures (how long, how much memory) rather than ones the configuration fixes
# (steps, passes, parameters, sequences): the same result on another machine measures them differently.
MEASURED_COSTS = ("train_seconds", "eval_seconds", "peak_memory_bytes")
# Fixed columns; metric and cost columns follow them. Changing this list is a schema change.
FIXED_COLUMNS = (
    "row_id", "benchmark", "family", "split", "model", "role", "submitter", "method", "rectifier",
    "parametrization", "display_name", "n_seeds", "seeds", "hyperparameters", "hyperparameters_hash",
    "evaluator_name",
    "evaluator_variant", "item_cap", "status", "comparable", "flags", "pareto_rank",
    "forget_metric", "utility_metric",
    # 3: utility at matched forgetting and significance groups (docs/architecture.md, leaderboard)
    "matched_metric", "matched_level", "matched_text", "utility_at_matched", "utility_at_matched_ci_low",
    "utility_at_matched_ci_high", "matched_status", "matched_rank", "curve", "forget_group", "utility_group",
    "config_hash", "code_version", "hardware", "source",
)
# 2: row ids carry the evaluator variant and the hyperparameters hash (one row = one configuration).
# 3: matched-forgetting columns, training curves and significance groups.
# 4: `submitter` (a submission's rows are its own rows; their row ids carry it).
TABLE_FORMAT = 4
HASH_DIGITS = 8  # of the hyperparameters hash in row ids: short to read, 2^32 configurations per method


class AggregationError(ValueError):
    pass


def hyperparameters_hash(hyperparameters: dict[str, Any]) -> str:
    digest = hashlib.sha256(_canonical(hyperparameters).encode()).hexdigest()
    return "sha256:" + digest


def row_id(document: dict[str, Any]) -> str:
    """`<benchmark>/<split>/<model>/[submissions/<submitter>/]<method dir>/<evaluator variant>/hp-<hash>`:
    what a row is. A submitted seed never joins this suite's row, nor another submitter's."""
    identity = document["identity"]
    base = f"{identity['benchmark']}/{identity['split']}/{identity['model']}"
    if identity.get("submitter"):
        base += f"/submissions/{identity['submitter']}"
    role = identity["role"]
    if role in contract.REFERENCE_ROLES:
        what = f"reference/{role}"
    else:
        dirname = contract.method_dirname(identity["method"], identity["rectifier"],
                                          identity["parametrization"])
        what = f"imported/{dirname}" if role == "imported" else dirname
    short = hyperparameters_hash(identity["hyperparameters"]).split(":", 1)[1][:HASH_DIGITS]
    return f"{base}/{what}/{document['evaluator']['variant']}/hp-{short}"


def load_results(roots: list[Path]) -> list[tuple[Path, dict[str, Any]]]:
    """Validated documents from every root; any invalid file or duplicate stops the build."""
    documents: list[tuple[Path, dict[str, Any]]] = []
    errors: list[str] = []
    seen: dict[tuple, Path] = {}
    for root in roots:
        if not Path(root).is_dir():
            raise AggregationError(f"results folder {root} does not exist")
        report = validate.validate_path(root)
        errors += [f"{root}/{e}" for e in report.errors]
        for path, document in report.documents.items():
            key = validate.identity_key(document)
            if key in seen:
                errors.append(f"{path}: identity: duplicate of {seen[key]}")
                continue
            seen[key] = path
            documents.append((path, document))
    errors += validate.duplicate_result_problems({path: d for path, d in documents})
    if errors:
        raise AggregationError("invalid results:\n  " + "\n  ".join(errors))
    return sorted(documents, key=lambda item: (row_id(item[1]), item[1]["identity"]["seed"]))


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _unique_text(values: list[Any]) -> str | None:
    distinct = sorted({str(v) for v in values if v not in (None, "")})
    return ", ".join(distinct) if distinct else None


def _hardware_label(hardware: dict[str, Any]) -> str:
    gpus = hardware.get("gpus")
    if gpus:
        return f"{len(gpus)}x {gpus[0]}"
    return f"{hardware.get('accelerator', 'unknown')} ({hardware.get('cpu_count', '?')} cores)"


# The checks a benchmark's `board_flags` may name (evaluation/benchmarks/base.py RowFlag.test).
FLAG_TESTS = {KS_FLOOR: comparability.at_ks_floor}


def _declared_flags(document: dict[str, Any]) -> set[str]:
    """The row flags the benchmark declares (`board_flags`) whose test holds on this seed's metrics."""
    definition = headline.family_definition(document["identity"]["benchmark"])
    found = set()
    for flag in getattr(definition, "board_flags", ()):
        if flag.test not in FLAG_TESTS:
            raise AggregationError(f"benchmark flag {flag.name!r} names an unknown test {flag.test!r}; "
                                   f"known: {', '.join(FLAG_TESTS)}")
        if FLAG_TESTS[flag.test](document["metrics"].get(flag.metric)):
            found.add(flag.name)
    return found


def _seed_flags(seeds: list[dict[str, Any]], main_variant: str | None) -> list[str]:
    flags: set[str] = set()
    for document in seeds:
        flags |= {name for name, on in document.get("flags", {}).items() if on}
        status = document["status"]
        if status["state"] != "ok":
            step = status.get("step")
            flags.add(f"diverged (seed {document['identity']['seed']}"
                      + (f", step {step})" if step is not None else ")"))
        flags |= _declared_flags(document)
    # seeds of a row share the variant and hyperparameters by construction (both are in row_id)
    variant = seeds[0]["evaluator"]["variant"]
    if main_variant is not None and variant != main_variant:
        flags.add(f"evaluator_variant_{variant}_not_main_{main_variant}")
    if seeds[0]["identity"]["role"] == "imported":
        flags.add("imported")
    return sorted(flags)


def _aggregate_row(rid: str, seeds: list[dict[str, Any]], main_variant: str | None) -> dict[str, Any]:
    first = seeds[0]
    identity, evaluator = first["identity"], first["evaluator"]
    metric_names = sorted({name for d in seeds for name in d["metrics"]})
    row: dict[str, Any] = {
        "row_id": rid,
        "benchmark": identity["benchmark"],
        "family": headline.family(identity["benchmark"]),
        "split": identity["split"],
        "model": identity["model"],
        "role": identity["role"],
        "submitter": identity.get("submitter"),
        "method": identity["method"],
        "rectifier": identity["rectifier"],
        "parametrization": identity["parametrization"],
        "display_name": identity.get("display_name"),
        "n_seeds": len(seeds),
        "seeds": ",".join(str(d["identity"]["seed"]) for d in seeds),
        "hyperparameters": _canonical(identity["hyperparameters"]),
        "hyperparameters_hash": hyperparameters_hash(identity["hyperparameters"]),
        "evaluator_name": evaluator["name"],
        "evaluator_variant": _unique_text([d["evaluator"]["variant"] for d in seeds]),
        "item_cap": evaluator.get("item_cap"),
        "status": "ok" if all(d["status"]["state"] == "ok" for d in seeds) else "diverged",
        "config_hash": _unique_text([d["provenance"]["config_hash"] for d in seeds]),
        "code_version": _unique_text([d["provenance"]["code_version"] for d in seeds]),
        "hardware": _unique_text([_hardware_label(d["provenance"]["hardware"]) for d in seeds]),
        "source": _unique_text([d["provenance"].get("source") for d in seeds]),
    }
    for name in metric_names:
        mean, low, high = mean_interval([d["metrics"].get(name) for d in seeds])
        row[f"metric:{name}"] = mean
        row[f"metric:{name}:ci_low"] = low
        row[f"metric:{name}:ci_high"] = high
    for name in COST_FIELDS:
        mean, _, _ = mean_interval([d.get("cost", {}).get(name) for d in seeds])
        row[f"cost:{name}"] = mean
    spec = headline.headline(identity["benchmark"])
    available = {n for n in metric_names if row[f"metric:{n}"] is not None}
    row["forget_metric"] = headline.pick(spec.forget, available) if spec else None
    row["utility_metric"] = headline.pick(spec.utility, available) if spec else None
    flags = _seed_flags(seeds, main_variant)
    if spec is None:
        flags.append("no_headline_metrics_for_benchmark")
    elif row["forget_metric"] is None or row["utility_metric"] is None:
        flags.append("missing_headline_metric")
    row["flags"] = "; ".join(flags)
    row["comparable"] = not flags
    row["pareto_rank"] = None
    return row


RANK_GROUP = ("benchmark", "split", "model", "evaluator_variant")  # only these rows are compared


def _rank_groups(rows: list[dict[str, Any]]) -> dict[tuple, list[dict[str, Any]]]:
    """RANK_GROUP key -> its comparable unlearned rows (the rows that are ranked against each other)."""
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if row["comparable"] and row["role"] == "unlearned":
            groups[tuple(row[key] for key in RANK_GROUP)].append(row)
    return groups


def _rank(rows: list[dict[str, Any]]) -> None:
    """Pareto layers per (benchmark, split, model, evaluator variant) among comparable unlearned rows."""
    for members in _rank_groups(rows).values():
        points = {}
        for row in members:
            fdir = headline.metric_direction(row["forget_metric"])
            udir = headline.metric_direction(row["utility_metric"])
            if fdir is None or udir is None:
                continue
            points[row["row_id"]] = (
                headline.goodness(row[f"metric:{row['forget_metric']}"], fdir),
                headline.goodness(row[f"metric:{row['utility_metric']}"], udir),
            )
        layers = pareto_layers(points)
        for row in members:
            row["pareto_rank"] = layers.get(row["row_id"])


def main_variants(documents: list[tuple[Path, dict[str, Any]]]) -> dict[str, str | None]:
    """Benchmark -> the evaluator variant its rows are compared under."""
    variants: dict[str, list[str]] = defaultdict(list)
    for _, d in documents:
        variants[d["identity"]["benchmark"]].append(d["evaluator"]["variant"])
    return {benchmark: comparability.main_variant(
                found, getattr(headline.headline(benchmark), "main_variant", None))
            for benchmark, found in sorted(variants.items())}


def _reference_rows(rows: list[dict[str, Any]]) -> dict[tuple, dict[str, Any]]:
    """(benchmark, split, model, evaluator variant, role) -> the reference row of that role: this
    suite's own (a submitted reference model never becomes the yardstick of the other rows)."""
    return {tuple(row[key] for key in RANK_GROUP) + (row["role"],): row
            for row in rows if row["role"] in contract.REFERENCE_ROLES and not row.get("submitter")}


def _matched_columns(rows: list[dict[str, Any]], by_row: dict[str, list[tuple[Path, dict]]]) -> None:
    references = _reference_rows(rows)
    for row in rows:
        definition = headline.definition(row["benchmark"])
        spec = getattr(definition, "matched", None)
        group = tuple(row[key] for key in RANK_GROUP)
        target_row = references.get(group + ("target",))
        target = None if target_row is None else {
            key.removeprefix("metric:"): value for key, value in target_row.items()
            if key.startswith("metric:") and key.count(":") == 1}
        reference_value = None
        if spec is not None and spec.reference is not None:
            reference_row = references.get(group + (spec.reference,))
            reference_value = None if reference_row is None else reference_row.get(f"metric:{spec.metric}")
        row.update(matched.row_columns(row, [d for _, d in by_row[row["row_id"]]], spec, reference_value, target))


def _significance_groups(rows: list[dict[str, Any]], by_row: dict[str, list[tuple[Path, dict]]]) -> None:
    """forget_group / utility_group per rank group of comparable unlearned rows; also matched_rank."""
    references = _reference_rows(rows)
    tables = significance.TableCache()
    for row in rows:
        row["forget_group"] = row["utility_group"] = None
    for key, members in _rank_groups(rows).items():
        matched.rank(members)
        definition = headline.definition(key[0])
        if definition is None:
            continue
        reference_tables = {}
        for role in contract.REFERENCE_ROLES:
            reference = references.get(key + (role,))
            if reference is not None:
                table = tables.get(by_row[reference["row_id"]][0][0].parent)
                if table is not None:
                    reference_tables[role] = table
        significance.annotate_group(definition, members, by_row, reference_tables, tables)


def aggregate(documents: list[tuple[Path, dict[str, Any]]]) -> list[dict[str, Any]]:
    by_row: dict[str, list[tuple[Path, dict[str, Any]]]] = defaultdict(list)
    attacked: dict[str, list[tuple[Path, dict[str, Any]]]] = defaultdict(list)  # row id -> its attacks' results
    for path, document in documents:
        if attacks.is_attack(document):  # not a row of its own: columns of its run's row
            attacked[row_id(document)].append((Path(path), document))
            continue
        by_row[row_id(document)].append((Path(path), document))
    documents = [item for items in by_row.values() for item in items]
    main = main_variants(documents)
    rows = []
    for rid in sorted(by_row):
        by_row[rid].sort(key=lambda item: item[1]["identity"]["seed"])
        seeds = [document for _, document in by_row[rid]]
        rows.append(_aggregate_row(rid, seeds, main[seeds[0]["identity"]["benchmark"]]))
    _rank(rows)
    _matched_columns(rows, by_row)
    _significance_groups(rows, by_row)
    attacks.add_columns(rows, attacked)
    return rows


def columns(rows: list[dict[str, Any]]) -> list[str]:
    """Fixed columns first, then metric and cost columns in name order."""
    extra = sorted({key for row in rows for key in row} - set(FIXED_COLUMNS))
    return list(FIXED_COLUMNS) + extra
