"""Claim checks on synthetic aggregated rows: each claim both replicating and not replicating."""
from __future__ import annotations

import json

import pytest

from leaderboard import claims
from tests.leaderboard import lb_synthetic as syn


def row(method, rectifier, parametrization="full", u=None, low=None, high=None, group=None, **extra):
    base = {"row_id": f"tofu-tiny/forget10/tiny-llama/{method}+{rectifier}+{parametrization}",
            "benchmark": "tofu-tiny", "split": "forget10", "model": "tiny-llama", "evaluator_variant": "full",
            "role": "unlearned", "status": "ok", "method": method, "rectifier": rectifier,
            "parametrization": parametrization, "n_seeds": 3, "seeds": "0,1,2",
            "utility_at_matched": u, "utility_at_matched_ci_low": low, "utility_at_matched_ci_high": high,
            "utility_group": group, "matched_status": "reached" if u is not None else "no trajectory"}
    return {**base, **extra}


def test_gru_raises_utility_replicates_with_significance():
    # utility letters test the final models, not the matched utility: they must not decide here
    rows = [row("npo", "none", u=0.40, low=0.38, high=0.42, group="a"), row("npo", "gru", u=0.55, low=0.5, high=0.6, group="a"),
            row("ga", "none", u=0.10, low=0.05, high=0.15), row("ga", "gru", u=0.30, low=0.25, high=0.35)]
    claim = claims.gru_utility(rows)
    assert claim.verdict == claims.REPLICATES
    assert "2 of 2" in claim.summary and "2 of those significantly" in claim.summary
    assert {r[1] for r in claim.rows} == {"npo", "ga"}


def test_gru_not_raising_is_reported_as_not_replicating():
    rows = [row("npo", "none", u=0.50, low=0.4, high=0.6, group="a"), row("npo", "gru", u=0.45, low=0.35, high=0.55, group="b")]
    claim = claims.gru_utility(rows)
    assert claim.verdict == claims.DOES_NOT
    assert claim.rows[0][5] == "not raised" and "not significant (seed intervals)" in claim.rows[0][6]


def test_gru_partly_and_missing_matched_level():
    rows = [row("npo", "none", u=0.4), row("npo", "gru", u=0.5), row("ga", "none", u=0.3), row("ga", "gru", u=0.2)]
    assert claims.gru_utility(rows).verdict == claims.PARTLY
    missing = claims.gru_utility([row("npo", "none"), row("npo", "gru", u=0.5)])
    assert missing.verdict == claims.CANNOT and "matched_status: no trajectory" in missing.summary
    absent = claims.gru_utility([row("npo", "none", u=0.4)])
    assert absent.verdict == claims.CANNOT and "+gru" in absent.summary


def test_rectifier_order_holds_and_fails():
    good = [row("npo", "none", u=0.3), row("npo", "pcgrad", u=0.4), row("npo", "sago", u=0.5)]
    assert claims.rectifier_order(good).verdict == claims.REPLICATES
    bad = [row("npo", "none", u=0.5, low=0.48, high=0.52), row("npo", "pcgrad", u=0.4, low=0.38, high=0.42),
           row("npo", "sago", u=0.45, low=0.35, high=0.55)]
    claim = claims.rectifier_order(bad)
    assert claim.verdict == claims.DOES_NOT
    assert "PCGrad < none significant" in claim.rows[0][-1]
    assert claims.rectifier_order(good[:2]).verdict == claims.CANNOT


def _grun_rows(trained, forget, forget_full, groups=("a", "a")):
    return [row("npo", "none", **{"cost:trainable_parameters": 1_000_000, "forget_metric": "forget_quality",
                                  "metric:forget_quality": forget_full, "forget_group": groups[0]}),
            row("npo", "none", "grun", **{"cost:trainable_parameters": trained, "forget_metric": "forget_quality",
                                          "metric:forget_quality": forget, "forget_group": groups[1]})]


def _gate_docs(auc, forget_mean, retain_mean, seeds=(0, 1, 2)):
    docs = []
    for seed in seeds:
        doc = syn.document(method="npo", parametrization="grun", seed=seed, variant="full")
        doc["metric_details"] = {"grun_gates": {"auc": auc, "forget_mean": forget_mean, "retain_mean": retain_mean}}
        docs.append((None, doc))
    return docs


def test_grun_replicates_when_small_comparable_and_separating():
    claim = claims.grun_efficiency(_grun_rows(500, 0.3, 0.32), _gate_docs(0.97, 0.9, 0.05))
    assert claim.verdict == claims.REPLICATES, claim.summary
    assert claim.rows[0][4] == "0.050%"


def test_grun_does_not_replicate_when_large_different_and_mixed_gates():
    claim = claims.grun_efficiency(_grun_rows(5_000, 0.01, 0.5, groups=("a", "b")), _gate_docs(0.55, 0.5, 0.45))
    assert claim.verdict == claims.DOES_NOT, claim.summary
    assert "do not separate" in claim.rows[0][6] and "different" in claim.rows[0][5]
    none = claims.grun_efficiency([row("npo", "none")], [])
    assert none.verdict == claims.CANNOT


def _write_geffect(tmp_path, method, seed, e_u, e_r):
    doc = syn.document(method=method, seed=seed)
    path = syn.write(tmp_path, doc)
    with open(path.with_name("geffect.jsonl"), "w") as handle:
        for step, (u, r) in enumerate(zip(e_u, e_r), start=1):
            handle.write(json.dumps({"step": step, "e_u_total": u, "e_r_total": r}) + "\n")
    return path, doc


def test_harm_ratio_definition():
    assert claims.harm_ratio([{"e_u_total": -2.0, "e_r_total": -1.0}, {"e_u_total": -2.0, "e_r_total": 0.0}]) == (0.25, -4.0, -1.0)
    assert claims.harm_ratio([{"e_u_total": 1.0, "e_r_total": -1.0}])[0] is None


@pytest.mark.parametrize("wga_retain, expected", [(-0.5, claims.REPLICATES), (-5.0, claims.PARTLY)])
def test_geffect_balance(tmp_path, wga_retain, expected):
    docs = []
    for seed in (0, 1):
        docs.append(_write_geffect(tmp_path, "ga", seed, [-4.0, -4.0], [-2.0, -2.0]))        # ratio 0.5
        docs.append(_write_geffect(tmp_path, "wga_forget", seed, [-2.0, -2.0], [wga_retain, wga_retain]))
        docs.append(_write_geffect(tmp_path, "tnpo", seed, [-3.0, -3.0], [-0.3, -0.3]))     # ratio 0.1
    claim = claims.geffect_balance(docs)
    assert claim.verdict == expected
    wga = next(r for r in claim.rows if r[1] == "wga_forget")
    assert wga[-1] == ("better balanced" if expected == claims.REPLICATES else "not better balanced")


def test_geffect_not_replicating_and_missing(tmp_path):
    docs = [_write_geffect(tmp_path, "ga", 0, [-4.0], [-0.1]), _write_geffect(tmp_path, "tnpo", 0, [-1.0], [-0.9])]
    claim = claims.geffect_balance(docs)
    assert claim.verdict == claims.DOES_NOT
    assert claims.geffect_balance([]).verdict == claims.CANNOT


def _attacked(method, rectifier, parametrization="full", recovery=(0.2, 0.15, 0.25), knowledge=(0.1, 0.08, 0.12),
              worst=("relearn-forget-split", 0.4, 0.35, 0.45), r=None, label="relearn-forget-split"):
    """A row with one attack's recovery (mean, low, high), its knowledge before the attack and its worst case."""
    extra = {"knowledge_metric": "forget_prob", "metric:forget_prob": knowledge[0],
             "metric:forget_prob:ci_low": knowledge[1], "metric:forget_prob:ci_high": knowledge[2],
             f"attack:{label}:recovery": recovery[0], f"attack:{label}:recovery:ci_low": recovery[1],
             f"attack:{label}:recovery:ci_high": recovery[2],
             "worst_case_attack": worst[0], "worst_case_knowledge": worst[1],
             f"attack:{worst[0]}:forget_prob": worst[1], f"attack:{worst[0]}:forget_prob:ci_low": worst[2],
             f"attack:{worst[0]}:forget_prob:ci_high": worst[3]}
    if r is not None:
        extra.update({f"attack:{label}:R": r[0], f"attack:{label}:R:ci_low": r[1], f"attack:{label}:R:ci_high": r[2]})
    return row(method, rectifier, parametrization, **extra)


def test_attack_robustness_more_less_and_no_difference_with_numbers():
    rows = [_attacked("npo", "none", r=(0.5, 0.4, 0.6)),
            _attacked("npo", "gru", recovery=(0.6, 0.55, 0.65), worst=("relearn-forget-split", 0.7, 0.65, 0.75),
                      r=(0.2, 0.1, 0.3)),                                        # recovers more: less robust
            _attacked("npo", "sago", recovery=(0.05, 0.0, 0.1)),                  # recovers less: more robust
            _attacked("npo", "pcgrad", recovery=(0.22, 0.1, 0.3), knowledge=(0.5, 0.45, 0.55))]  # overlapping
    claim = claims.attack_robustness(rows)
    assert claim.verdict == claims.MIXED
    by = {(r[2], r[3]): r for r in claim.rows}
    gru = by[("gru", "relearn-forget-split (recovery)")]
    assert gru[5:] == ["0.200 [0.150, 0.250]", "0.600 [0.550, 0.650]", "0.400", claims.LESS]
    assert "matched (seed intervals)" in gru[4]
    assert by[("gru", "relearn-forget-split (R)")][-1] == claims.LESS  # R lower: less robust
    assert by[("gru", "worst case (forget_prob)")][-1] == claims.LESS
    assert by[("sago", "relearn-forget-split (recovery)")][-1] == claims.MORE
    assert by[("sago", "worst case (forget_prob)")][-1] == claims.SAME
    pcgrad = by[("pcgrad", "relearn-forget-split (recovery)")]
    assert pcgrad[-1] == claims.SAME and "not matched" in pcgrad[4]
    assert "gru: less robust (0 more robust, 1 less robust, 0 no difference" in claim.summary
    assert "sago: more robust" in claim.summary
    # pcgrad forgot far less than its base: shown in the table, not counted toward any verdict
    assert ("pcgrad: cannot be checked (0 more robust, 0 less robust, 0 no difference, 1 not counted at "
            "unmatched forgetting; forgetting matched in 0 of 1 tested") in claim.summary


def test_attack_robustness_grun_single_seed_and_missing_inputs():
    rows = [_attacked("npo", "none", recovery=(0.2, None, None)),
            _attacked("npo", "none", "grun", recovery=(0.5, None, None)),
            _attacked("ga", "gru")]  # no ga+none row
    claim = claims.attack_robustness(rows)
    assert claim.verdict == claims.CANNOT  # only an untested (single-seed) comparison
    # the single-seed pair still shows its numbers and direction
    grun = next(r for r in claim.rows if r[3] == "relearn-forget-split (recovery)")
    assert grun[2] == "grun" and grun[5:7] == ["0.200", "0.500"] and grun[-1].startswith("untested (less robust")
    assert "grun: cannot be checked (0 more robust, 0 less robust, 0 no difference, 1 untested" in claim.summary
    assert any("ga gru: no base objective row" in note for note in claim.notes)
    same = claims.attack_robustness([_attacked("npo", "none", recovery=(0.2, None, None)),
                                     _attacked("npo", "gru", recovery=(0.2, None, None))])
    assert same.verdict == claims.CANNOT  # equal single-seed means are no evidence of no difference
    assert same.rows[0][-1] == "untested (equal means; single seed)"
    no_attacks = claims.attack_robustness([row("npo", "none"), row("npo", "gru")])
    assert no_attacks.verdict == claims.CANNOT and "no attack results" in no_attacks.summary


def test_attack_robustness_counts_only_matched_forgetting():
    # sago recovers far less but forgot far less too: no verdict from that pair
    rows = [_attacked("npo", "none"), _attacked("npo", "sago", recovery=(0.01, 0.0, 0.02), knowledge=(0.6, 0.55, 0.65))]
    claim = claims.attack_robustness(rows)
    assert claim.verdict == claims.CANNOT
    assert claim.rows[0][-1] == claims.MORE and "not matched" in claim.rows[0][4]
    assert "1 not counted at unmatched forgetting" in claim.summary


def test_attack_robustness_all_same_and_registered():
    rows = [_attacked("npo", "none"), _attacked("npo", "gru", recovery=(0.21, 0.1, 0.3)),
            _attacked("ga", "none"), _attacked("ga", "sago", recovery=(0.18, 0.1, 0.3))]
    claim = claims.check("attack_robustness", rows, [])
    assert claim.verdict == claims.SAME
    assert "attack_robustness" in claims.CHECKS


def test_objective_utility_npo_and_simnpo_against_ga_per_rectifier():
    rows = [row("ga", "none", u=0.10, low=0.05, high=0.15), row("npo", "none", u=0.40, low=0.35, high=0.45),
            row("simnpo", "none", u=0.12, low=0.0, high=0.3),
            row("ga", "sago", u=0.30, low=0.2, high=0.4), row("npo", "sago", u=0.20, low=0.1, high=0.3)]
    claim = claims.check("objective_utility", rows, [])
    assert claim.verdict == claims.PARTLY
    assert "2 of 3" in claim.summary and "1 of those significantly" in claim.summary
    outcome = {(r[1], r[2]): (r[6], r[7]) for r in claim.rows}
    assert outcome[("none", "npo")] == ("more", "significant (seed intervals)")
    assert outcome[("none", "simnpo")] == ("more", "not significant (seed intervals)")
    assert outcome[("sago", "npo")][0] == "not more"
    missing = claims.objective_utility([row("ga", "none"), row("npo", "none", u=0.4)])
    assert missing.verdict == claims.CANNOT and "ga+none: utility_at_matched missing" in missing.summary
    assert claims.objective_utility([row("npo", "none", u=0.4)]).verdict == claims.CANNOT


def test_report_results_section_lists_references_first_with_intervals():
    from leaderboard import report

    target = {"role": "target", "benchmark": "rwku", "split": "batch-1-1", "model": "m", "method": "target",
              "rectifier": "none", "parametrization": "full", "seeds": "0", "forget_metric": "forget_all",
              "utility_metric": "neighbor_all", "metric:forget_all": 0.4, "metric:neighbor_all": 0.6}
    run = {**target, "role": "unlearned", "method": "npo", "rectifier": "gru", "seeds": "0,1,2",
           "metric:forget_all": 0.2, "metric:forget_all:ci_low": 0.1, "metric:forget_all:ci_high": 0.3,
           "utility_at_matched": 0.5, "utility_at_matched_ci_low": 0.45, "utility_at_matched_ci_high": 0.55,
           "matched_status": "reached", "attack:quantize-int4:forget_all": 0.35}
    table = report.results_section([run, target])[-1]
    assert table.headers[-1] == "forget after quantize-int4"
    assert [r[1] for r in table.rows] == ["target", "npo+gru"]
    assert table.rows[1][3:] == ["forget_all: 0.200 [0.100, 0.300]", "neighbor_all: 0.600",
                                    "0.500 [0.450, 0.550]", "reached", "0.350"]
