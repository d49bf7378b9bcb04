"""MUSE: metrics, truncation rules, data validation (bad input), identity of the stand-in retain
corpus, and the tiny Llama on the real MUSE-News eval sets (shared data)."""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from evaluation import benchmarks, evaluate, models
from evaluation.benchmarks.muse import data as muse_data
from evaluation.benchmarks.muse import evaluator, tiny
from evaluation.encoding import text_stream
from evaluation.metrics import mia
from evaluation.benchmarks.muse import metrics as m

REPO = Path(__file__).resolve().parents[2]
SHARED_MUSE = REPO.parent / "shared" / "data" / "muse"


@pytest.fixture(scope="module")
def tiny_muse(tmp_path_factory) -> Path:
    return tiny.write(tmp_path_factory.mktemp("muse_tiny") / "data", n=4)


@pytest.fixture
def shared_muse() -> Path:
    if not (SHARED_MUSE / "news" / "verbmem" / "forget.json").is_file():
        pytest.skip(f"real MUSE-News data not found at {SHARED_MUSE} (../shared/data is not part of the repo)")
    return SHARED_MUSE


# ---- metrics -------------------------------------------------------------------------------------

def test_rouge_l_f1_stemming_is_a_switch():
    assert m.rouge_l_f1("the cats are running", "the cat is running", use_stemmer=False) == pytest.approx(0.5)
    assert m.rouge_l_f1("the cats are running", "the cat is running", use_stemmer=True) == pytest.approx(0.75)


def test_stop_strings_cut_successively():
    assert m.cut_at_stop_strings("Paris\n\nQuestion: next") == "Paris"
    assert m.cut_at_stop_strings("Paris\nQuestion: next") == "Paris"
    assert m.cut_at_stop_strings("Paris Question: next") == "Paris "


def test_knowmem_prompt_is_musees_few_shot_format():
    icl = [{"question": "Q1?", "answer": "A1"}, {"question": "Q2?", "answer": "A2"}]
    assert m.knowmem_prompt(icl, "Q?") == "Question: Q1?\nAnswer: A1\n\nQuestion: Q2?\nAnswer: A2\n\nQuestion: Q?\nAnswer: "


def test_min_k_counts_follow_each_convention():
    logprobs = [-1.0, -2.0, -3.0, -4.0, -5.0]
    assert m.min_k_score(logprobs, 0.4) == pytest.approx(4.5)  # ⌊0.4·5⌋ = 2 lowest: −5, −4
    assert m.min_k_score([-1.0, -2.0], 0.4, at_least_one=True) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="averages no token"):
        m.min_k_score([-1.0, -2.0], 0.4)


def test_muse_auc_is_one_minus_ou_auc_and_privleak_agrees():
    rng = np.random.default_rng(0)
    forget, holdout = rng.normal(1.0, 1.0, 50), rng.normal(2.0, 1.0, 60)  # forget = lower loss (member-like)
    muse_auc = m.muse_auc(forget, holdout)
    assert muse_auc == pytest.approx(1 - mia.auc(forget, holdout))
    assert muse_auc < 0.5
    assert m.muse_privleak(muse_auc, 0.4772) == pytest.approx(mia.privleak(1 - muse_auc, 1 - 0.4772), abs=1e-6)
    assert m.muse_privleak(0.0, m.AUC_RETRAIN["news"]) == pytest.approx(-100)


# ---- truncation rules -----------------------------------------------------------------------------

def test_prompts_are_left_truncated_keeping_bos():
    ids = [1] + list(range(10, 30))
    fitted = evaluator.fit_prompt(ids, budget=8, context=16, bos=1)
    assert fitted == [1] + list(range(23, 30)) and len(fitted) + 8 == 16
    assert evaluator.fit_prompt(ids, budget=4, context=None, bos=1) == ids


def test_completions_drop_prompt_tokens_first():
    ids, start = [1, 2, 3, 4, 5, 6, 7, 8], 5  # prompt 1..5 (BOS 1), gt 6..8
    assert evaluator.fit_completion(ids, start, 6) == ([1, 4, 5, 6, 7, 8], 3)
    assert evaluator.fit_completion(ids, start, 3) == ([1, 6, 7], 1)


# ---- document boundary of raw-text training chunks (OU PretrainingDataset) -----------------------

def test_documents_join_with_a_blank_line_when_the_tokenizer_can_encode_it():
    from tokenizers import Regex, Tokenizer, models as tmodels, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "a": 4, "b": 5, "\n\n": 6}
    backend = Tokenizer(tmodels.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"\w+|\n\n"), behavior="isolated")
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>",
                                        pad_token="<pad>", unk_token="<unk>")
    assert text_stream(tokenizer, ["a", "b"]) == ([4, 6, 5], "blank_line")
    word = models.train_word_tokenizer(["a b"])
    stream, boundary = text_stream(word, ["a", "b"])
    assert boundary == "eos" and stream == [word.convert_tokens_to_ids("a"), word.eos_token_id,
                                            word.convert_tokens_to_ids("b")]


# ---- data validation (bad input names the file and the field) -------------------------------------

def _copy(folder: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(folder, target)
    return target


def _open(folder: Path):
    return benchmarks.get("muse-tiny").open(folder).corpus("news")


def test_tiny_folder_validates_and_has_muses_layout(tiny_muse):
    corpus = _open(tiny_muse)
    assert set(corpus.rows) == set(muse_data.EVAL_FILES) | {"raw/forget", "raw/retain1", "raw/retain2", "raw/holdout"}
    assert len(corpus["knowmem/forget_qa_icl"]) == tiny.ICL_SHOTS and corpus.retain_official
    assert tiny.generate(4, 0) == tiny.generate(4, 0)  # deterministic


def test_missing_file_is_named(tiny_muse, tmp_path):
    folder = _copy(tiny_muse, tmp_path)
    (folder / "verbmem" / "forget.json").unlink()
    with pytest.raises(muse_data.MuseDataError, match=r"verbmem/forget\.json not found"):
        _open(folder)


def test_wrong_field_names_file_row_and_field(tiny_muse, tmp_path):
    folder = _copy(tiny_muse, tmp_path)
    path = folder / "knowmem" / "retain_qa.json"
    rows = json.loads(path.read_text())
    rows[2] = {"question": rows[2]["question"], "answers": "x"}
    path.write_text(json.dumps(rows))
    with pytest.raises(muse_data.MuseDataError, match=r"knowmem/retain_qa\.json row 2: missing field 'answer'"):
        _open(folder)


def test_wrong_count_names_file_and_expected_count(tiny_muse, tmp_path):
    folder = _copy(tiny_muse, tmp_path)
    path = folder / "privleak" / "holdout.json"
    path.write_text(json.dumps(json.loads(path.read_text())[:-1]))
    with pytest.raises(muse_data.MuseDataError, match=r"privleak/holdout\.json: 3 rows, expected 4"):
        _open(folder)


def test_books_missing_locally_is_a_clear_error(tiny_muse, tmp_path, monkeypatch):
    monkeypatch.setattr(muse_data, "OFFICIAL_COUNTS", {})  # the tiny corpus stands in for news/ (opened eagerly)
    shutil.copytree(tiny_muse, tmp_path / "news")
    with pytest.raises(muse_data.MuseDataError, match="MUSE-Books is not in .*muse-bench/MUSE-Books"):
        benchmarks.get("muse").unlearning_corpora(benchmarks.get("muse").open(tmp_path), "books")


def test_overlong_generation_budget_is_refused():
    with pytest.raises(ValueError, match="no room for a prompt"):
        evaluator.fit_prompt(list(range(50)), budget=128, context=129, bos=0)


# ---- real MUSE-News (shared data) -----------------------------------------------------------------

@pytest.mark.shared_data
def test_real_news_counts_and_standin_retain(shared_muse):
    bench = benchmarks.get("muse")
    data = bench.open(shared_muse)
    corpus = data.corpus("news")
    assert {name: len(corpus[name]) for name in muse_data.EVAL_FILES} == muse_data.OFFICIAL_COUNTS
    corpora = bench.unlearning_corpora(data, "news")
    assert corpora["retain"].source.endswith("raw/retain_standin.json") and not corpora["retain"].official
    assert len(corpora["forget"]) == 889
    assert bench.identity_notes(data, "news") == {"retain_corpus": "standin"}


CI_ITEMS = 10  # a fixed subset per eval file in CI; benchmarks/bench_muse.py runs all 100


def tiny_llama_for_news(corpus, folder: Path) -> Path:
    """A random-init tiny Llama whose vocabulary is the eval files' words (raw corpora are not scored)."""
    texts = ["Question: Answer:"] + [v for name in muse_data.EVAL_FILES for row in corpus[name]
                                     for v in (row.values() if isinstance(row, dict) else [row])]
    return models.build_tiny_llama(texts, folder, seed=0)


@pytest.fixture(scope="module")
def real_eval(tmp_path_factory):
    if not (SHARED_MUSE / "news" / "verbmem" / "forget.json").is_file():
        pytest.skip(f"real MUSE-News data not found at {SHARED_MUSE}")
    root = tmp_path_factory.mktemp("muse_real")
    corpus = benchmarks.get("muse").open(SHARED_MUSE).corpus("news")
    model, tokenizer, _ = models.load_model(str(tiny_llama_for_news(corpus, root / "model")))
    result, table, _ = evaluator.evaluate(model, tokenizer, corpus.head(CI_ITEMS), evaluator.get_variant("official"),
                                          retain_corpus="standin (non-official)", progress=False)
    return result, table


@pytest.mark.shared_data
@pytest.mark.slow
def test_tiny_llama_on_real_news_eval_sets(real_eval):
    result, table = real_eval
    details, evaluator_block = result["metric_details"], result["evaluator"]
    assert details["verbmem_forget_items"] == CI_ITEMS
    assert details["knowmem_forget_items"] == CI_ITEMS and details["knowmem_retain_items"] == CI_ITEMS
    assert details["privleak"]["items"] == {n: CI_ITEMS for n in ("privleak_forget", "privleak_retain", "privleak_holdout")}
    assert all(math.isfinite(value) for value in result["metrics"].values())
    assert table.groupby("eval_set").size().to_dict() == {
        "knowmem_forget": CI_ITEMS, "knowmem_retain": CI_ITEMS, "verbmem_forget": CI_ITEMS,
        "privleak_forget": CI_ITEMS, "privleak_holdout": CI_ITEMS, "privleak_retain": CI_ITEMS}
    # the tiny model's 256-token context: prompts left-truncated and texts cut, and the block says so
    assert details["truncation"]["prompts_left_truncated"]["verbmem_forget"] == CI_ITEMS
    assert table[table.eval_set == "verbmem_forget"]["prompt_truncated"].all()
    assert result["flags"]["inputs_truncated"] is True
    assert "left" in evaluator_block["prompt_truncation"] and evaluator_block["model_context"] == 256
    assert evaluator_block["retain_corpus"].startswith("standin")
    assert evaluator_block["privleak_reference_used"].startswith("published AUC_RETRAIN['news']")
    assert result["flags"]["privleak_reference_fallback"] is False  # official: the constant is the rule
    for field in ("rouge_stemming", "scale_label", "verbmem_reference", "mia_text_truncation"):
        assert field in evaluator_block


def _privleak_table(forget_scores, holdout_scores):
    import pandas as pd

    rows = [{"eval_set": "privleak_forget", "item_index": i, "prompt": f"f{i}", "mink": s}
            for i, s in enumerate(forget_scores)]
    rows += [{"eval_set": "privleak_holdout", "item_index": i, "prompt": f"h{i}", "mink": s}
             for i, s in enumerate(holdout_scores)]
    return pd.DataFrame(rows)


def test_privleak_reference_rules_are_never_a_silent_half():
    table = _privleak_table([1.0, 2.0, 3.0], [2.5, 3.5, 4.5])
    official, ou = evaluator.get_variant("official"), evaluator.get_variant("ou")
    auc, source, fallback = evaluator.privleak_reference(official, "news", table, None, False)
    assert auc == m.AUC_RETRAIN["news"] and not fallback and "published" in source
    auc, source, fallback = evaluator.privleak_reference(ou, "news", table, None, False)
    assert auc == pytest.approx(1 - m.AUC_RETRAIN["news"]) and fallback and "no retrain model" in source
    reference = evaluator.RetrainReference(table, "ou", "ref-folder")
    auc, source, fallback = evaluator.privleak_reference(ou, "news", table, reference, False)
    assert auc == evaluator.forget_holdout_auc(table, ou) and not fallback and "ref-folder" in source
    auc, source, fallback = evaluator.privleak_reference(official, "tiny", table, None, False)
    assert auc is None and fallback and "no published retrain AUC" in source
    with pytest.raises(ValueError, match="same variant"):
        evaluator.privleak_reference(official, "tiny", table, reference, False)


# ---- `ou` scores what open-unlearning scores (locuslab/open-unlearning@d3d7cf9) ------------------

def _ou_scored(model, tokenizer, prefix: str, text: str, insert_space: bool, max_length: int = 2048):
    """OU's path, restated from its code: preprocess_pretraining_instance (prefix labels ignored,
    manual truncation to prefix_len + max_length, no EOS), then tokenwise_vocab_logprobs (the last
    labelled position dropped as "eos prediction"); returns (log-probs, argmax hits)."""
    import torch

    full = tokenizer(prefix + (" " if insert_space else "") + text, add_special_tokens=True)["input_ids"]
    prefix_len = len(tokenizer(prefix, add_special_tokens=True)["input_ids"])
    full = full[:prefix_len + max_length]
    matched = max(prefix_len, 1)
    labels = [-100] * matched + full[matched:]
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([full])).logits[0].float(), dim=-1)[:-1]
    actual = [i for i, label in enumerate(labels) if label != -100][:-1]
    if not actual:
        return np.array([]), np.array([], dtype=bool)
    rows = logp[actual[0] - 1:actual[-1]]
    targets = torch.tensor([labels[i] for i in actual])
    return (rows.gather(1, targets[:, None])[:, 0].numpy(), (rows.argmax(-1) == targets).numpy())


def _ou_min_k(logprobs, k: float) -> float:
    if logprobs.size == 0:
        return 0
    return float(-np.mean(np.sort(logprobs)[:max(1, int(len(logprobs) * k))]))


def _ou_extraction_strength(hits) -> float:
    valid_len = len(hits)
    if valid_len == 0:
        return 0.0
    for k in range(valid_len):
        if hits[k:].all():
            break
    return 1 - k / valid_len


@pytest.fixture(scope="module")
def tiny_model_muse(tiny_muse, tmp_path_factory):
    data = _open(tiny_muse)
    texts = ["Question: Answer:"] + [v for name in muse_data.EVAL_FILES for row in data[name]
                                     for v in (row.values() if isinstance(row, dict) else [row])]
    model, tokenizer, _ = models.load_model(str(models.build_tiny_llama(
        texts, tmp_path_factory.mktemp("muse_ou") / "model", seed=0)))
    return model, tokenizer, data


def test_ou_variant_scores_what_open_unlearning_scores(tiny_model_muse):
    model, tokenizer, data = tiny_model_muse
    context = evaluator.model_context(model)
    results = {name: evaluator.evaluate(model, tokenizer, data, evaluator.get_variant(name),
                                        retain_corpus="tiny", progress=False)
               for name in ("ou", "ou_all_tokens")}
    table = results["ou"][1]
    checked = 0
    for name in evaluator.PRIVLEAK_SETS:
        for row in evaluator._set(table, name).itertuples():
            logprobs, _ = _ou_scored(model, tokenizer, "", row.prompt, insert_space=False)
            assert row.text_tokens <= context  # OU would run past the context: not compared
            assert row.scored_tokens == len(logprobs) == row.text_tokens - 2  # neither BOS nor the last token
            assert row.mink == pytest.approx(_ou_min_k(logprobs, 0.4), abs=1e-5)
            checked += 1
    for row in evaluator._set(table, "verbmem_forget").itertuples():
        _, hits = _ou_scored(model, tokenizer, row.prompt, row.gt, insert_space=True)
        assert row.extraction_strength == pytest.approx(_ou_extraction_strength(hits), abs=1e-12)
        checked += 1
    assert checked == 4 * len(data["verbmem/forget"])
    # the other variant scores the last token too: one more token per text, other Min-k values
    other = results["ou_all_tokens"][1]
    forget = evaluator._set(table, "privleak_forget")
    other_forget = evaluator._set(other, "privleak_forget")
    assert (other_forget["scored_tokens"].to_numpy() == forget["scored_tokens"].to_numpy() + 1).all()
    assert not np.allclose(other_forget["mink"], forget["mink"])
    block = results["ou"][0]["evaluator"]
    assert block["scores_last_token"] is False and block["extraction_strength_ou_quirk"] is True
    assert "left out" in block["scored_tokens"] and "after BOS" in block["mia_text_truncation"]
    assert results["ou_all_tokens"][0]["evaluator"]["scores_last_token"] is True
    assert block["decode_clean_up"] == "on" and "open-unlearning" in block["decode_clean_up_rule"]
    assert results["ou_all_tokens"][0]["evaluator"]["decode_clean_up"] == "as_loaded"


def test_ou_caps_privleak_texts_after_bos_and_drops_their_last_token(tiny_model_muse):
    _, tokenizer, data = tiny_model_muse
    word = data["privleak/forget"][0].split()[0]
    long_text = " ".join([word] * 2100)
    rows = {key: list(data[key]) for key in ("verbmem/forget", "knowmem/forget_qa", "knowmem/forget_qa_icl",
                                               "knowmem/retain_qa", "knowmem/retain_qa_icl")}
    rows.update({name.replace("_", "/", 1): [long_text] for name in evaluator.PRIVLEAK_SETS})
    keys = {}
    for name in ("ou", "ou_all_tokens", "official"):
        requests = evaluator.build_requests(rows, tokenizer, evaluator.get_variant(name), context=None)
        keys[name] = next(i for i in requests.items if i["eval_set"] == "privleak_forget")["score_key"]
    full = tokenizer(long_text)["input_ids"]
    assert keys["ou"] == (tuple(full[:1 + 2048 - 1]), 1)       # BOS + 2048 tokens, the last not scored
    assert keys["ou_all_tokens"] == (tuple(full[:2048]), 1)    # 2048 tokens in all, every one scored
    assert keys["official"] == (tuple(full), 1)                # MUSE: no cap, every token


def test_scored_span_never_drops_below_the_start():
    assert evaluator.scored_span([1, 5, 6], 1, scores_last_token=False) == ((1, 5), 1)
    assert evaluator.scored_span([1, 5], 2, scores_last_token=False) == ((1, 5), 2)
    assert evaluator.scored_span([1, 5, 6], 1, scores_last_token=True) == ((1, 5, 6), 1)
    assert m.min_k_score([], 0.4, at_least_one=True) == 0.0  # OU scores an empty text 0
