"""The seed papers' qualitative claims, checked on aggregated leaderboard rows and run files.

Each check is a pure function of the rows of `leaderboard.aggregate.aggregate` (and, for G-effect
and GRUN gates, the per-seed run files) returning a `Claim`: the paper's statement, a verdict and
the numbers behind it. Nothing is decided in advance: a claim that fails on the data is reported
as not replicating, and one whose inputs are missing says what is missing.

Utility at matched forgetting (`utility_at_matched`, I2) compares methods at the same forgetting
level; two rows' matched utilities differ significantly when their seeds' 95% t-intervals are
disjoint. Comparisons of the final models (GRUN's forgetting) use the significance groups
(`forget_group`: compact letters from the paired per-item bootstrap) where the table has them:
rows that share no letter differ.

`attack_robustness` asks issue #26's open question instead of checking a paper's claim: each
rectifier or GRUN row against its objective's +none/full row on the attack columns of
leaderboard/attacks.py (recovery, OU's R, worst-case knowledge), with disjoint seed intervals as
the test; its verdict is more robust, less robust, no difference or mixed.
"""
from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

REPLICATES, PARTLY, DOES_NOT, CANNOT = "replicates", "partly replicates", "does not replicate", "cannot be checked"
GROUP = ("benchmark", "split", "model", "evaluator_variant")
GRUN_FRACTION = 1e-3        # GRUN: "< 0.1% of the parameters"
GATE_AUC = 0.9              # gates "separate" forget from retain prompts: forget above retain for >= 90% of pairs
GEFFECT_FILE = "geffect.jsonl"
WGA_NAMES = ("wga_forget", "wga")   # G-effect's WGA is forget-only; the +retain variant counts when alone
TNPO_NAMES = ("tnpo",)


@dataclass
class Claim:
    name: str
    paper: str                      # the claim in the paper's words (ours), with its source
    verdict: str
    summary: str                    # one sentence with the deciding numbers
    headers: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# small helpers

def _ok_unlearned(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r.get("role") == "unlearned" and r.get("status") == "ok"]


def _groups(rows: Iterable[dict[str, Any]]) -> dict[tuple, list[dict[str, Any]]]:
    found: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        found[tuple(row.get(k) for k in GROUP)].append(row)
    return dict(sorted(found.items(), key=lambda item: tuple(str(v) for v in item[0])))


def _label(key: tuple) -> str:
    benchmark, split, model, variant = key
    return f"{benchmark}/{split}/{model}" + (f" ({variant})" if variant else "")


def _pick(rows: list[dict[str, Any]], objective: str, rectifier: str, parametrization: str = "full"):
    """The row of one method in a group; with several configurations, the one with most seeds."""
    found = [r for r in rows if (r["method"], r["rectifier"], r.get("parametrization", "full"))
             == (objective, rectifier, parametrization)]
    return max(found, key=lambda r: (r.get("n_seeds") or 0, r["row_id"])) if found else None


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def fmt(value: Any, digits: int = 3) -> str:
    value = _finite(value)
    if value is None:
        return "—"
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"{value:.{digits - 1}e}"
    return f"{value:.{digits}g}" if abs(value) >= 1 else f"{value:.{digits}f}"


def _letters(value: Any) -> set[str] | None:
    return set(value) if isinstance(value, str) and value else None


def differ(a: dict[str, Any], b: dict[str, Any], group_column: str | None, low: str,
           high: str) -> tuple[bool | None, str]:
    """(significantly different?, which test): significance letters first (when `group_column`
    names them), else disjoint seed intervals."""
    la, lb = (_letters(a.get(group_column)), _letters(b.get(group_column))) if group_column else (None, None)
    if la is not None and lb is not None:
        return not (la & lb), "paired bootstrap"
    bounds = [_finite(r.get(k)) for r in (a, b) for k in (low, high)]
    if None in bounds:
        return None, "no test (single seed)"
    a_low, a_high, b_low, b_high = bounds
    return a_high < b_low or b_high < a_low, "seed intervals"


def _verdict(outcomes: list[bool]) -> str:
    if not outcomes:
        return CANNOT
    if all(outcomes):
        return REPLICATES
    return PARTLY if any(outcomes) else DOES_NOT


def _matched_missing(row: dict[str, Any]) -> str:
    status = row.get("matched_status")
    return f"{row['method']}+{row['rectifier']}: utility_at_matched missing" + (
        f" (matched_status: {status})" if status else " (column absent: aggregate without I2 columns)")


def _u(row: dict[str, Any]) -> float | None:
    return _finite(row.get("utility_at_matched"))


def _u_text(row: dict[str, Any]) -> str:
    low, high = _finite(row.get("utility_at_matched_ci_low")), _finite(row.get("utility_at_matched_ci_high"))
    ci = f" [{fmt(low)}, {fmt(high)}]" if low is not None and high is not None else ""
    return f"{fmt(_u(row))}{ci}"


def _u_differ(a, b):
    # seed intervals of the matched utility itself: the letters test the final models' utility,
    # a different quantity from the utility where both runs reach the same forgetting level
    return differ(a, b, None, "utility_at_matched_ci_low", "utility_at_matched_ci_high")


# ---------------------------------------------------------------------------------------------
# GRU: utility over the base objective at matched forgetting

def gru_utility(rows: list[dict[str, Any]]) -> Claim:
    paper = ("GRU (Wang et al., ICML 2025, arXiv 2503.09117): projecting the unlearning gradient "
             "away from conflicts with the retain gradient raises utility over its base objective "
             "at comparable forgetting.")
    table, outcomes, missing = [], [], []
    for key, members in _groups(_ok_unlearned(rows)).items():
        for objective in sorted({r["method"] for r in members}):
            base, gru = _pick(members, objective, "none"), _pick(members, objective, "gru")
            if base is None or gru is None:
                continue
            if _u(base) is None or _u(gru) is None:
                missing += [f"{_label(key)} {_matched_missing(r)}" for r in (base, gru) if _u(r) is None]
                continue
            delta = _u(gru) - _u(base)
            significant, test = _u_differ(gru, base)
            outcomes.append(delta > 0)
            table.append([_label(key), objective, _u_text(base), _u_text(gru), fmt(delta),
                          "raised" if delta > 0 else "not raised", _significance(significant, test)])
    verdict = _verdict(outcomes)
    if verdict == CANNOT:
        reason = "; ".join(missing) if missing else "no objective has both a +none and a +gru row"
        return Claim("gru_utility", paper, CANNOT, f"cannot be checked: {reason}")
    raised = sum(outcomes)
    summary = (f"GRU raised utility at matched forgetting for {raised} of {len(outcomes)} objective x "
               f"benchmark pairs" + _significant_count(table, "raised"))
    return Claim("gru_utility", paper, verdict, summary,
                 ["benchmark", "objective", "none: utility@matched", "+gru: utility@matched", "delta",
                  "outcome", "difference"], table, [f"not compared: {m}" for m in missing])


def _significance(significant: bool | None, test: str) -> str:
    if significant is None:
        return test
    return f"{'significant' if significant else 'not significant'} ({test})"


def _significant_count(table: list[list[Any]], outcome: str) -> str:
    wanted = [row for row in table if row[-2] == outcome]
    tested = [row for row in wanted if not str(row[-1]).startswith("no test")]
    significant = [row for row in tested if str(row[-1]).startswith("significant")]
    return f" ({len(significant)} of those significantly, {len(tested)} tested)." if wanted else "."


# ---------------------------------------------------------------------------------------------
# SAGO >= PCGrad >= none on retention at matched forgetting

def rectifier_order(rows: list[dict[str, Any]]) -> Claim:
    paper = ("SAGO (arXiv 2604.14808): sign-agreement gating retains more utility than PCGrad, "
             "which retains more than the plain objective, at matched forgetting "
             "(SAGO >= PCGrad >= none).")
    table, outcomes, missing = [], [], []
    for key, members in _groups(_ok_unlearned(rows)).items():
        for objective in sorted({r["method"] for r in members}):
            trio = [_pick(members, objective, name) for name in ("none", "pcgrad", "sago")]
            if None in trio:
                continue
            lacking = [r for r in trio if _u(r) is None]
            if lacking:
                missing += [f"{_label(key)} {_matched_missing(r)}" for r in lacking]
                continue
            none, pcgrad, sago = (_u(r) for r in trio)
            holds = sago >= pcgrad >= none
            outcomes.append(holds)
            violations = []
            if sago < pcgrad:
                violations.append("SAGO < PCGrad " + _significance(*_u_differ(trio[2], trio[1])))
            if pcgrad < none:
                violations.append("PCGrad < none " + _significance(*_u_differ(trio[1], trio[0])))
            table.append([_label(key), objective, *(_u_text(r) for r in trio),
                          "holds" if holds else "; ".join(violations)])
    verdict = _verdict(outcomes)
    if verdict == CANNOT:
        reason = "; ".join(missing) if missing else "no objective has +none, +pcgrad and +sago rows"
        return Claim("rectifier_order", paper, CANNOT, f"cannot be checked: {reason}")
    summary = (f"SAGO >= PCGrad >= none held for {sum(outcomes)} of {len(outcomes)} objective x "
               "benchmark triples (utility at matched forgetting, mean over seeds).")
    return Claim("rectifier_order", paper, verdict, summary,
                 ["benchmark", "objective", "none", "+pcgrad", "+sago", "order"], table,
                 [f"not compared: {m}" for m in missing])


# ---------------------------------------------------------------------------------------------
# NPO / SimNPO over GA at matched forgetting (same rectifier)

BOUNDED_OBJECTIVES = ("npo", "simnpo")


def objective_utility(rows: list[dict[str, Any]]) -> Claim:
    paper = ("NPO (Zhang et al., COLM 2024, arXiv 2404.05868) and SimNPO (Fan et al., arXiv 2410.07163): "
             "a bounded preference loss on the forget set keeps more utility than gradient ascent (GA) at "
             "comparable forgetting; checked under each rectifier.")
    table, outcomes, missing = [], [], []
    for key, members in _groups(_ok_unlearned(rows)).items():
        for rectifier in sorted({r["rectifier"] for r in members}):
            ga = _pick(members, "ga", rectifier)
            for objective in BOUNDED_OBJECTIVES:
                other = _pick(members, objective, rectifier)
                if ga is None or other is None:
                    continue
                if _u(ga) is None or _u(other) is None:
                    missing += [f"{_label(key)} {_matched_missing(r)}" for r in (ga, other) if _u(r) is None]
                    continue
                delta = _u(other) - _u(ga)
                outcomes.append(delta > 0)
                table.append([_label(key), rectifier, objective, _u_text(ga), _u_text(other), fmt(delta),
                              "more" if delta > 0 else "not more", _significance(*_u_differ(other, ga))])
    verdict = _verdict(outcomes)
    if verdict == CANNOT:
        reason = "; ".join(dict.fromkeys(missing)) if missing else "no rectifier has a GA row and an NPO or SimNPO row"
        return Claim("objective_utility", paper, CANNOT, f"cannot be checked: {reason}")
    summary = (f"NPO / SimNPO kept more utility than GA at matched forgetting in {sum(outcomes)} of "
               f"{len(outcomes)} objective x rectifier x benchmark pairs" + _significant_count(table, "more"))
    return Claim("objective_utility", paper, verdict, summary,
                 ["benchmark", "rectifier", "objective", "ga: utility@matched", "objective: utility@matched",
                  "delta", "outcome", "difference"], table, [f"not compared: {m}" for m in dict.fromkeys(missing)])


# ---------------------------------------------------------------------------------------------
# GRUN: < 0.1% of the parameters, comparable forgetting, gates that separate

def _gate_stats(documents: list[tuple[Path, dict[str, Any]]], row: dict[str, Any]) -> list[dict[str, Any]]:
    seeds = {int(s) for s in str(row.get("seeds") or "").split(",") if s.strip()}
    found = []
    for _, doc in documents:
        ident = doc["identity"]
        if (ident["benchmark"], ident["split"], ident["model"], ident["method"], ident["rectifier"],
                ident["parametrization"]) == (row["benchmark"], row["split"], row["model"], row["method"],
                                              row["rectifier"], row["parametrization"]) \
                and ident["seed"] in seeds and doc.get("evaluator", {}).get("variant") == row.get("evaluator_variant"):
            gates = (doc.get("metric_details") or {}).get("grun_gates")
            if isinstance(gates, dict):
                found.append(gates)
    return found


def _mean(values: list[float]) -> float | None:
    values = [v for v in (_finite(x) for x in values) if v is not None]
    return math.fsum(values) / len(values) if values else None


def grun_efficiency(rows: list[dict[str, Any]], documents: list[tuple[Path, dict[str, Any]]]) -> Claim:
    paper = ("GRUN (arXiv 2502.17823): gated representation edits train < 0.1% of the model's "
             "parameters with forgetting comparable to fine-tuning, and the gates open on forget "
             "prompts and stay closed on retain prompts.")
    table, parts, notes = [], {"parameters": [], "forgetting": [], "gates": []}, []
    for key, members in _groups(_ok_unlearned(rows)).items():
        full_rows = [r for r in members if r.get("parametrization") == "full"
                     and _finite(r.get("cost:trainable_parameters"))]
        total = max((r["cost:trainable_parameters"] for r in full_rows), default=None)
        for grun in sorted((r for r in members if r.get("parametrization") == "grun"), key=lambda r: r["row_id"]):
            trained = _finite(grun.get("cost:trainable_parameters"))
            fraction = trained / total if trained is not None and total else None
            if fraction is not None:
                parts["parameters"].append(fraction < GRUN_FRACTION)
            else:
                notes.append(f"{_label(key)} {grun['method']}: no parameter count "
                             + ("(no full fine-tuning row gives the model's total)" if not total else "(cost missing)"))
            forget_text = "no full-fine-tuning row of this objective"
            full = _pick(members, grun["method"], grun["rectifier"], "full")
            metric = grun.get("forget_metric")
            if full is not None and metric:
                significant, test = differ(grun, full, "forget_group", f"metric:{metric}:ci_low", f"metric:{metric}:ci_high")
                g, f = grun.get(f"metric:{metric}"), full.get(f"metric:{metric}")
                forget_text = f"{metric} {fmt(g)} vs full {fmt(f)}: " + (
                    "comparable" if significant is False else "different" if significant else "untested") + f" ({test})"
                if significant is not None:
                    parts["forgetting"].append(not significant)
            gates = _gate_stats(documents, grun)
            auc = _mean([g.get("auc") for g in gates])
            gate_text = "no grun_gates in metric_details"
            if auc is not None:
                forget_gate, retain_gate = _mean([g.get("forget_mean") for g in gates]), _mean([g.get("retain_mean") for g in gates])
                separates = auc >= GATE_AUC and (forget_gate or 0) > (retain_gate or 0)
                parts["gates"].append(separates)
                gate_text = (f"forget {fmt(forget_gate)} / retain {fmt(retain_gate)}, AUC {fmt(auc)} over "
                             f"{len(gates)} seeds: " + ("separate" if separates else "do not separate"))
            table.append([_label(key), grun["method"], fmt(trained, 4), fmt(total, 4),
                          f"{fraction * 100:.3f}%" if fraction is not None else "—", forget_text, gate_text])
    if not table:
        return Claim("grun_efficiency", paper, CANNOT, "cannot be checked: no GRUN (parametrization grun) rows")
    verdicts = {name: _verdict(outcomes) for name, outcomes in parts.items()}
    checked = [v for v in verdicts.values() if v != CANNOT]
    if not checked:
        verdict = CANNOT
    elif all(v == REPLICATES for v in verdicts.values()):
        verdict = REPLICATES
    elif all(v == DOES_NOT for v in checked):
        verdict = DOES_NOT
    else:
        verdict = PARTLY  # some parts hold, or some could not be checked
    summary = (f"trainable < {GRUN_FRACTION:.1%} of the parameters: {verdicts['parameters']}; "
               f"comparable forgetting: {verdicts['forgetting']}; gates separate (AUC >= {GATE_AUC}): "
               f"{verdicts['gates']}.")
    return Claim("grun_efficiency", paper, verdict, summary,
                 ["benchmark", "objective", "trained", "model total", "fraction", "forgetting", "gates"],
                 table, notes)


# ---------------------------------------------------------------------------------------------
# G-effect: WGA / TNPO better balanced than GA

def read_geffect(path: Path) -> list[dict[str, Any]]:
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def harm_ratio(points: list[dict[str, Any]]) -> tuple[float | None, float, float]:
    """(retain harm per unit of forgetting, Σ e_u, Σ e_r) over the probed steps.

    With R(θ − η∇L) − R(θ) ≈ −η·e, −Σe_u is (up to the step size) how much the forget risk rose
    and −Σe_r how much the retain risk rose. The ratio Σe_r / Σe_u is the retain risk gained per
    unit of forget risk gained: lower is better balanced, negative means the retain risk fell.
    None when the objective did not raise the forget risk at all (Σe_u >= 0).
    """
    e_u = math.fsum(float(p["e_u_total"]) for p in points)
    e_r = math.fsum(float(p["e_r_total"]) for p in points)
    return (e_r / e_u if e_u < 0 else None), e_u, e_r


def geffect_balance(documents: list[tuple[Path, dict[str, Any]]]) -> Claim:
    paper = ("G-effect (arXiv 2502.19301): GA's forget G-effect comes with a large negative retain "
             "G-effect (retain risk rises with the forget risk); the weighted objectives WGA and TNPO "
             "are better balanced: less retain harm per unit of forgetting.")
    per: dict[tuple, dict[str, list[tuple]]] = defaultdict(lambda: defaultdict(list))
    for path, doc in documents:
        ident = doc["identity"]
        file = Path(path).with_name(GEFFECT_FILE)
        if ident["role"] != "unlearned" or ident["rectifier"] != "none" or not file.is_file():
            continue
        points = read_geffect(file)
        if points:
            key = (ident["benchmark"], ident["split"], ident["model"], ident["parametrization"])
            per[key][ident["method"]].append(harm_ratio(points))
    table, outcomes, notes = [], [], []
    for key, methods in sorted(per.items()):
        label = "/".join(key[:3]) + ("" if key[3] == "full" else f" ({key[3]})")
        if "ga" not in methods:
            notes.append(f"{label}: no GA run with geffect.jsonl to compare with")
            continue
        ga_ratio = _mean([r for r, _, _ in methods["ga"]])
        for family, names in (("WGA", WGA_NAMES), ("TNPO", TNPO_NAMES)):
            name = next((n for n in names if n in methods), None)
            if name is None:
                notes.append(f"{label}: no {family} run with geffect.jsonl")
                continue
            ratio = _mean([r for r, _, _ in methods[name]])
            if ga_ratio is None or ratio is None:
                better = None
            else:
                better = ratio < ga_ratio
                outcomes.append(better)
            table.append([label, name, len(methods[name]), fmt(_mean([u for _, u, _ in methods[name]])),
                          fmt(_mean([r for _, _, r in methods[name]])), fmt(ratio), fmt(ga_ratio),
                          "better balanced" if better else "not better balanced" if better is False
                          else "undefined: no forgetting (sum e_u >= 0)"])
        table.append([label, "ga", len(methods["ga"]), fmt(_mean([u for _, u, _ in methods["ga"]])),
                      fmt(_mean([r for _, _, r in methods["ga"]])), fmt(ga_ratio), fmt(ga_ratio), "reference"])
    verdict = _verdict(outcomes)
    if verdict == CANNOT:
        reason = "; ".join(notes) if notes else f"no run folder has {GEFFECT_FILE} (run with analyzers: [geffect])"
        return Claim("geffect_balance", paper, CANNOT, f"cannot be checked: {reason}")
    summary = (f"{sum(outcomes)} of {len(outcomes)} weighted objectives have a lower retain-harm ratio "
               "sum(e_r)/sum(e_u) than GA (mean over seeds; lower = less retain harm per unit of forgetting).")
    return Claim("geffect_balance", paper, verdict, summary,
                 ["benchmark", "objective", "seeds", "sum e_u", "sum e_r", "harm ratio", "GA harm ratio",
                  "outcome"], table, notes)


# ---------------------------------------------------------------------------------------------
# Is forgetting more or less robust under GRU / SAGO / PCGrad or GRUN than under the base objective?

MORE, LESS, SAME, MIXED = "more robust", "less robust", "no difference", "mixed"


def _variant_name(row: dict[str, Any]) -> str:
    """`gru`, `sago`, `pcgrad`, `grun`, or `grun+gru`: what the row adds to its base objective."""
    parametrization = row.get("parametrization", "full")
    if parametrization == "full":
        return row["rectifier"]
    return parametrization if row["rectifier"] == "none" else f"{parametrization}+{row['rectifier']}"


def _attack_labels(row: dict[str, Any]) -> set[str]:
    return {key.split(":")[1] for key, value in row.items()
            if key.startswith("attack:") and key.endswith(":recovery") and _finite(value) is not None}


def _with_ci(row: dict[str, Any], column: str) -> str:
    low, high = _finite(row.get(f"{column}:ci_low")), _finite(row.get(f"{column}:ci_high"))
    return fmt(row.get(column)) + (f" [{fmt(low)}, {fmt(high)}]" if low is not None and high is not None else "")


def _worst_column(row: dict[str, Any]) -> str | None:
    """The column holding the row's worst-case knowledge with its interval (that attack's, or the
    unattacked value when no attack beat it)."""
    metric, attack = row.get("knowledge_metric"), row.get("worst_case_attack")
    if not metric or not attack:
        return None
    return f"metric:{metric}" if attack == "none" else f"attack:{attack}:{metric}"


def _forgetting_match(base: dict[str, Any], variant: dict[str, Any], metric: str | None) -> tuple[bool | None, str]:
    """(forgetting matched?, text): the unattacked knowledge of both rows and whether their seed
    intervals overlap."""
    if not metric:
        return None, "no knowledge metric"
    column = f"metric:{metric}"
    significant, test = differ(variant, base, None, f"{column}:ci_low", f"{column}:ci_high")
    text = f"{_with_ci(base, column)} / {_with_ci(variant, column)}"
    if significant is None:
        return None, f"{text}: {test}"
    return not significant, f"{text}: {'matched' if not significant else 'not matched'} ({test})"


def _robustness_outcome(delta: float, significant: bool | None, more_is_robust: bool) -> str:
    """The variant against its base for one measure (delta = variant − base)."""
    robust = SAME if delta == 0 else MORE if (delta > 0) == more_is_robust else LESS
    if significant is None:
        return f"untested ({'equal means' if delta == 0 else robust + ' by the means'}; single seed)"
    return robust if significant else SAME


def _compare_measure(base, variant, column: str, more_is_robust: bool) -> tuple[str, str, str, str] | None:
    """(base text, variant text, difference, outcome) of one column with seed intervals."""
    b, v = _finite(base.get(column)), _finite(variant.get(column))
    if b is None or v is None:
        return None
    significant, _ = differ(variant, base, None, f"{column}:ci_low", f"{column}:ci_high")
    return _with_ci(base, column), _with_ci(variant, column), fmt(v - b), _robustness_outcome(v - b, significant, more_is_robust)


def _worst_case_measure(base, variant) -> tuple[str, str, str, str] | None:
    """Worst-case knowledge: lower knowledge is more robust (for a metric where lower is better
    forgetting; the opposite where higher is)."""
    from leaderboard import headline

    columns = _worst_column(base), _worst_column(variant)
    metric = variant.get("knowledge_metric")
    direction = headline.metric_direction(metric) if metric else None
    b, v = _finite(base.get("worst_case_knowledge")), _finite(variant.get("worst_case_knowledge"))
    if None in columns or b is None or v is None or direction not in (headline.LOWER, headline.HIGHER):
        return None
    bounds = [_finite(row.get(f"{column}:{end}")) for row, column in zip((base, variant), columns)
              for end in ("ci_low", "ci_high")]
    significant = None if None in bounds else (bounds[1] < bounds[2] or bounds[3] < bounds[0])
    texts = [f"{_with_ci(row, column)} ({row.get('worst_case_attack')})" for row, column in zip((base, variant), columns)]
    return texts[0], texts[1], fmt(v - b), _robustness_outcome(v - b, significant, direction == headline.HIGHER)


def _kind_verdict(outcomes: list[str]) -> str:
    tested = [o for o in outcomes if o in (MORE, LESS, SAME)]
    if not tested:
        return CANNOT
    found = {o for o in tested if o != SAME}
    if not found:
        return SAME
    return found.pop() if len(found) == 1 else MIXED


def attack_robustness(rows: list[dict[str, Any]]) -> Claim:
    paper = ("Issue #26's open question (no paper has answered it): at matched forgetting, do GRU, SAGO, "
             "PCGrad or GRUN make forgetting more or less robust to attacks than their base objective? "
             "Recovery = share of the row's forgetting an attack undoes (lower = more robust); worst case = "
             "the most knowledge any attack brings back; R = OU's relearning ratio (higher = more robust).")
    headers = ["benchmark", "objective", "variant", "attack (measure)", "knowledge before attack: base / variant",
               "base", "variant", "difference", "outcome"]
    table, notes = [], []
    outcomes: dict[str, list[str]] = defaultdict(list)
    unmatched: dict[str, int] = defaultdict(int)   # recovery comparisons where the two rows forgot unequally
    matched: dict[str, list[bool]] = defaultdict(list)
    for key, members in _groups(_ok_unlearned(rows)).items():
        for variant in sorted(members, key=lambda r: r["row_id"]):
            if (variant["rectifier"], variant.get("parametrization", "full")) == ("none", "full"):
                continue
            name = _variant_name(variant)
            base = _pick(members, variant["method"], "none", "full")
            labels = sorted(_attack_labels(variant) & _attack_labels(base)) if base is not None else []
            if not labels:
                notes.append(f"{_label(key)} {variant['method']} {name}: " + (
                    "no base objective row (+none, full)" if base is None else "no attack with a recovery on both rows"))
                continue
            is_matched, before = _forgetting_match(base, variant, variant.get("knowledge_metric"))
            if is_matched is not None:
                matched[name].append(is_matched)
            lead = [_label(key), variant["method"], name]
            for label in labels:
                measures = [("recovery", f"attack:{label}:recovery", False)]
                if f"attack:{label}:R" in variant:
                    measures.append(("R", f"attack:{label}:R", True))
                for measure, column, more_is_robust in measures:
                    found = _compare_measure(base, variant, column, more_is_robust)
                    if found is None:
                        continue
                    if measure == "recovery":
                        # the question is asked at matched forgetting: a row that forgot more or less
                        # than its base is shown, not counted (its recovery is a share of other forgetting)
                        if is_matched is False:
                            unmatched[name] += 1
                        else:
                            outcomes[name].append(found[3])
                    table.append([*lead, f"{label} ({measure})", before, *found])
            worst = _worst_case_measure(base, variant)
            if worst is not None:
                table.append([*lead, f"worst case ({variant.get('knowledge_metric')})", before, *worst])
    if not outcomes and not unmatched:
        reason = "; ".join(notes[:5]) if notes else "no rectifier or GRUN row beside a +none row of its objective"
        if not any(_attack_labels(r) for r in rows):
            reason = "no attack results (run the config's `attacks:`)"
        return Claim("attack_robustness", paper, CANNOT, f"cannot be checked: {reason}")
    names = sorted(set(outcomes) | set(unmatched))
    kinds = {name: _kind_verdict(outcomes.get(name, [])) for name in names}
    decided = {v for v in kinds.values() if v != CANNOT}
    verdict = CANNOT if not decided else decided.pop() if len(decided) == 1 else MIXED
    parts = []
    for name in names:
        found = outcomes.get(name, [])
        counts = ", ".join(f"{sum(o == kind for o in found)} {kind}" for kind in (MORE, LESS, SAME))
        untested = sum(o.startswith("untested") for o in found)
        at_level = matched.get(name, [])
        parts.append(f"{name}: {kinds[name]} ({counts}" + (f", {untested} untested" if untested else "")
                     + (f", {unmatched[name]} not counted at unmatched forgetting" if unmatched.get(name) else "")
                     + f"; forgetting matched in {sum(at_level)} of {len(at_level)} tested objective x benchmark pairs)")
    summary = ("Attack recovery against the base objective (+none, full) at matched forgetting, per objective x "
               "benchmark x attack, 95% seed intervals: " + "; ".join(parts) + ".")
    notes = ["The attacks hit the final models, not a checkpoint at a common forgetting level: recovery is a "
             "share of each row's own forgetting, and the knowledge before the attack says whether both rows "
             "forgot as much (seed intervals overlap: matched). Only matched pairs count toward the verdict; "
             "the others stay in the table with their outcome."] + [f"not compared: {n}" for n in notes]
    return Claim("attack_robustness", paper, verdict, summary, headers, table, notes)


CHECKS = ("gru_utility", "rectifier_order", "objective_utility", "grun_efficiency", "geffect_balance",
          "attack_robustness")


def check(name: str, rows: list[dict[str, Any]], documents: list[tuple[Path, dict[str, Any]]]) -> Claim:
    if name == "gru_utility":
        return gru_utility(rows)
    if name == "rectifier_order":
        return rectifier_order(rows)
    if name == "objective_utility":
        return objective_utility(rows)
    if name == "grun_efficiency":
        return grun_efficiency(rows, documents)
    if name == "geffect_balance":
        return geffect_balance(documents)
    if name == "attack_robustness":
        return attack_robustness(rows)
    raise KeyError(f"unknown claim {name!r}; known: {', '.join(CHECKS)}")
