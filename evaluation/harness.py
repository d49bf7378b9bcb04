"""The evaluation harness: one teacher-forced scoring pass and one greedy generation pass per model.

Metrics never call the model. They declare (prompt, continuation) pairs to score and prompts to
generate from; the harness de-duplicates both, runs each set once in length-sorted batches (little
padding waste), and caches per-token values every metric reads: answer-token log-probs, argmax
hits, and Min-K++'s μ_t / σ_t. Counts and seconds go into the result's `cost` block.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from evaluation.encoding import IGNORE_INDEX, encode_prompt_continuation, pad_batch

MINKPP_VARIANCE_FLOOR = 1e-6  # OU clamps σ_t² here so near-deterministic positions do not divide by 0


@dataclass(frozen=True)
class TokenScores:
    """Per labelled token of one continuation (answer tokens + EOS)."""

    target_ids: np.ndarray  # int64
    logprobs: np.ndarray    # log p(y_t | y_<t)
    hits: np.ndarray        # argmax_v p(v | y_<t) == y_t
    mu: np.ndarray          # Σ_v p_v log p_v
    sigma: np.ndarray       # sqrt(Σ_v p_v (log p_v)² − μ_t²), variance clamped

    @property
    def num_tokens(self) -> int:
        return len(self.logprobs)

    @property
    def mean_loss(self) -> float:
        """L̄ = Σ CE / |labelled tokens|; inf when truncation left no answer token."""
        return float(-self.logprobs.mean()) if self.num_tokens else float("inf")


@dataclass
class Harness:
    model: torch.nn.Module
    tokenizer: object
    max_length: int = 512          # encoding length for teacher forcing
    batch_size: int = 32
    gen_batch_size: int = 64
    max_new_tokens: int | None = 200
    gen_max_length: int | None = None  # legacy TOFU: total length incl. the (padded) prompt
    progress: bool = True
    sequences_scored: int = 0
    prompts_generated: int = 0
    seconds: float = 0.0
    _scores: dict = field(default_factory=dict, repr=False)
    _generations: dict = field(default_factory=dict, repr=False)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _batches(self, items: list, lengths: list[int], size: int):
        order = np.argsort(-np.asarray(lengths), kind="stable")  # longest first: similar lengths share a batch
        for start in range(0, len(order), size):
            yield [items[i] for i in order[start:start + size]]

    @torch.inference_mode()
    def score(self, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], TokenScores]:
        """Teacher-forced scores for every unique (prompt, continuation) not scored yet."""
        start = time.perf_counter()
        todo = list(dict.fromkeys(p for p in pairs if p not in self._scores))
        encoded = [encode_prompt_continuation(self.tokenizer, p, c, self.max_length) for p, c in todo]
        indices = list(range(len(todo)))
        bar = tqdm(total=len(todo), desc="score", unit="seq", disable=not self.progress or not todo, leave=False)
        for chunk in self._batches(indices, [len(e["input_ids"]) for e in encoded], self.batch_size):
            batch = pad_batch([encoded[i] for i in chunk], self.tokenizer.pad_token_id)
            for i, scores in zip(chunk, self._score_batch(batch)):
                self._scores[todo[i]] = scores
            bar.update(len(chunk))
        bar.close()
        self.sequences_scored += len(todo)
        self.seconds += time.perf_counter() - start
        return {p: self._scores[p] for p in pairs}

    def _score_batch(self, batch: dict[str, torch.Tensor]) -> list[TokenScores]:
        batch = {k: v.to(self.device) for k, v in batch.items()}
        logits = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        targets = batch["labels"][:, 1:]
        mask = targets != IGNORE_INDEX
        # Only labelled positions go through the vocabulary-wide maths: [N, V] instead of [B, T, V].
        logp = torch.log_softmax(logits[:, :-1][mask].float(), dim=-1)
        flat_targets = targets[mask]
        token_logp = logp.gather(1, flat_targets[:, None])[:, 0]
        hits = logp.argmax(dim=-1) == flat_targets
        p = logp.exp()
        mu = (p * logp).sum(-1)
        variance = ((p * logp.square()).sum(-1) - mu.square()).clamp_min(MINKPP_VARIANCE_FLOOR)
        columns = [flat_targets, token_logp, hits, mu, variance.sqrt()]
        columns = [c.cpu().numpy() for c in columns]
        counts = mask.sum(dim=1).tolist()
        out, offset = [], 0
        for count in counts:
            part = [c[offset:offset + count] for c in columns]
            out.append(TokenScores(*part))
            offset += count
        return out

    @torch.inference_mode()
    def generate(self, prompts: list[str]) -> dict[str, str]:
        """Greedy continuations (special tokens removed, stripped) for every unique prompt."""
        start = time.perf_counter()
        todo = list(dict.fromkeys(p for p in prompts if p not in self._generations))
        tok = self.tokenizer
        add_special = not (tok.bos_token and all(p.startswith(tok.bos_token) for p in todo))
        lengths = [len(tok(p, add_special_tokens=add_special)["input_ids"]) for p in todo]
        previous_side, tok.padding_side = tok.padding_side, "left"
        bar = tqdm(total=len(todo), desc="generate", unit="prompt", disable=not self.progress or not todo, leave=False)
        try:
            for chunk in self._batches(todo, lengths, self.gen_batch_size):
                inputs = tok(chunk, return_tensors="pt", padding=True, add_special_tokens=add_special).to(self.device)
                budget = ({"max_length": self.gen_max_length} if self.gen_max_length
                          else {"max_new_tokens": self.max_new_tokens})
                output = self.model.generate(**inputs, do_sample=False, pad_token_id=tok.pad_token_id,
                                             eos_token_id=tok.eos_token_id, **budget)
                new_tokens = output[:, inputs["input_ids"].shape[1]:]
                for prompt, text in zip(chunk, tok.batch_decode(new_tokens, skip_special_tokens=True)):
                    self._generations[prompt] = text.strip()
                bar.update(len(chunk))
        finally:
            tok.padding_side = previous_side
            bar.close()
        self.prompts_generated += len(todo)
        self.seconds += time.perf_counter() - start
        return {p: self._generations[p] for p in prompts}

    def _prompt_lengths(self, prompts: list[str]) -> tuple[bool, list[int]]:
        """(add special tokens?, token counts): prompts already rendered with BOS get no second one."""
        tok = self.tokenizer
        add_special = not (tok.bos_token and all(p.startswith(tok.bos_token) for p in prompts))
        return add_special, [len(tok(p, add_special_tokens=add_special)["input_ids"]) for p in prompts]

    @torch.inference_mode()
    def generate_until(self, prompts: list[str], max_new_tokens: int, stop_ids: tuple[int, ...] = (),
                       stop_strings: tuple[str, ...] = ()) -> dict[str, str]:
        """Greedy continuations with their own budget and stops (RWKU-style evaluators).

        Each sequence stops at EOS or any id of `stop_ids` (the output is cut before the first
        one, as open-instruct's KeyWordsCriteria post-processing does); the decoded text (special
        tokens removed, not stripped) is then cut before the first occurrence of any of
        `stop_strings` (OU's stop words). Cached by (prompt, budget, stops), so probes sharing a
        budget share one generation pass; `generate` is untouched."""
        start = time.perf_counter()
        tok = self.tokenizer
        stops = tuple(dict.fromkeys(i for i in (tok.eos_token_id, *stop_ids) if i is not None))
        key = lambda p: (p, max_new_tokens, stops, tuple(stop_strings))  # noqa: E731
        todo = list(dict.fromkeys(p for p in prompts if key(p) not in self._generations))
        add_special, lengths = self._prompt_lengths(todo)
        previous_side, tok.padding_side = tok.padding_side, "left"
        bar = tqdm(total=len(todo), desc="generate", unit="prompt", disable=not self.progress or not todo, leave=False)
        try:
            for chunk in self._batches(todo, lengths, self.gen_batch_size):
                inputs = tok(chunk, return_tensors="pt", padding=True, add_special_tokens=add_special).to(self.device)
                output = self.model.generate(**inputs, do_sample=False, pad_token_id=tok.pad_token_id,
                                             eos_token_id=list(stops), max_new_tokens=max_new_tokens)
                for prompt, row in zip(chunk, output[:, inputs["input_ids"].shape[1]:].tolist()):
                    cut = next((i for i, token in enumerate(row) if token in stops), len(row))
                    text = tok.decode(row[:cut], skip_special_tokens=True)
                    for word in stop_strings:
                        text = text.split(word)[0]
                    self._generations[key(prompt)] = text
                bar.update(len(chunk))
        finally:
            tok.padding_side = previous_side
            bar.close()
        self.prompts_generated += len(todo)
        self.seconds += time.perf_counter() - start
        return {p: self._generations[key(p)] for p in prompts}

    @torch.inference_mode()
    def score_texts(self, texts: list[str]) -> dict[str, TokenScores]:
        """Teacher-forced scores of whole texts (MIA on raw text): BOS + text, every token after BOS
        labelled, no EOS appended (RWKU's eval_mia: `model(ids, labels=ids)`). Truncated to
        `max_length` tokens."""
        start = time.perf_counter()
        key = lambda t: ("\0text", t)  # noqa: E731  (never collides with a (prompt, continuation) pair)
        todo = list(dict.fromkeys(t for t in texts if key(t) not in self._scores))
        tok = self.tokenizer
        encoded = []
        for text in todo:
            ids = tok(text, add_special_tokens=True)["input_ids"][:self.max_length]
            labels = [IGNORE_INDEX] + ids[1:]
            encoded.append({"input_ids": torch.tensor(ids, dtype=torch.long),
                            "attention_mask": torch.ones(len(ids), dtype=torch.long),
                            "labels": torch.tensor(labels, dtype=torch.long)})
        indices = list(range(len(todo)))
        for chunk in self._batches(indices, [len(e["input_ids"]) for e in encoded], self.batch_size):
            batch = pad_batch([encoded[i] for i in chunk], tok.pad_token_id)
            for i, scores in zip(chunk, self._score_batch(batch)):
                self._scores[key(todo[i])] = scores
        self.sequences_scored += len(todo)
        self.seconds += time.perf_counter() - start
        return {t: self._scores[key(t)] for t in texts}

    @torch.inference_mode()
    def next_token_logprobs(self, prompts: list[str], candidate_ids: list[int]) -> dict[str, np.ndarray]:
        """log p(candidate | prompt) at the position after each prompt (MMLU-style next-token choice);
        one forward per prompt, left-padded batches. Not cached across calls."""
        start = time.perf_counter()
        tok = self.tokenizer
        todo = list(dict.fromkeys(prompts))
        add_special, lengths = self._prompt_lengths(todo)
        previous_side, tok.padding_side = tok.padding_side, "left"
        out = {}
        try:
            for chunk in self._batches(todo, lengths, self.batch_size):
                inputs = tok(chunk, return_tensors="pt", padding=True, add_special_tokens=add_special).to(self.device)
                mask = inputs["attention_mask"]
                positions = (mask.cumsum(-1) - 1).clamp_min(0)  # left padding scores as if unpadded (batch 1)
                logits = self.model(input_ids=inputs["input_ids"], attention_mask=mask, position_ids=positions).logits
                logp = torch.log_softmax(logits[:, -1].float(), dim=-1)[:, candidate_ids].cpu().numpy()
                out.update(zip(chunk, logp))
        finally:
            tok.padding_side = previous_side
        self.sequences_scored += len(todo)
        self.seconds += time.perf_counter() - start
        return {p: out[p] for p in prompts}

    def cost(self) -> dict:
        return {"sequences_scored": self.sequences_scored, "prompts_generated": self.prompts_generated,
                "eval_seconds": round(self.seconds, 3)}
