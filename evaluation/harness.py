"""The evaluation harness: the two requests every benchmark's evaluator makes of a model.

- `loglikelihood(requests)`: teacher-forced per-token scores of `Continuation`s (context +
  continuation), `Rolling` sequences (every token after the first: MIA on raw text) and `NextToken`
  choices (one-token continuations: multiple choice);
- `generate_until(requests)`: greedy continuations of `Generation`s (context, budget, stop ids, stop
  strings).

A context is text (encoded by the harness's prompt rules) or token ids the benchmark encoded itself.
Metrics never call the model: evaluators gather their requests, the harness de-duplicates them, runs
each set once in length-sorted batches (little padding waste), and caches per-token values every
metric reads: log-probs, argmax hits, and Min-K++'s μ_t / σ_t. Counts and seconds go into `cost`.

Continuations of one context share its tokens: TOFU scores 7-8 answers after each question. With
`share_prefixes` the shared token prefix of such a group runs once (its keys/values cached) and
each continuation runs only its own tokens against that cache, so the token positions processed
approach the number of unique tokens; the values equal per-sequence scoring up to float rounding.
The vocabulary head runs on labelled positions only; generation decodes greedily in length buckets
sized by memory (evaluation.generation_batch), dropping finished rows (evaluation.greedy).
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from evaluation import backends, decoding, generation_batch
from evaluation.encoding import IGNORE_INDEX, SPAN_OFFSETS, encode_prompt_continuation, pad_batch
from evaluation.greedy import cache_keyword, greedy_decode, plain_greedy_model
from evaluation.growing_cache import GROWTH_STEP
from evaluation.token_statistics import split_head, token_statistics

VLLM_BATCH_SIZE = 4096  # prompts handed to vLLM per call (it schedules them itself)


@dataclass(frozen=True)
class TokenScores:
    """Per labelled token of one scored request (a text continuation: answer tokens + EOS; a NextToken:
    its candidates, all at the one next position)."""

    target_ids: np.ndarray  # int64
    logprobs: np.ndarray    # log p(y_t | y_<t)
    hits: np.ndarray        # argmax_v p(v | y_<t) == y_t
    mu: np.ndarray | None     # Σ_v p_v log p_v (None: not requested, Continuation.moments)
    sigma: np.ndarray | None  # sqrt(Σ_v p_v (log p_v)² − μ_t²), variance clamped
    tag_tokens: int = 0     # leading labelled tokens of the answer tag (TOFU-legacy labelling), not answer
    eos_labelled: bool = True  # the last value is the EOS position (False when truncation cut it)

    def answer_slice(self, include_eos: bool) -> slice:
        """Positions of the answer tokens (tag skipped), with or without the EOS position."""
        stop = self.num_tokens - (1 if self.eos_labelled and not include_eos else 0)
        return slice(min(self.tag_tokens, stop), stop)

    @property
    def num_tokens(self) -> int:
        return len(self.logprobs)

    @property
    def mean_loss(self) -> float:
        """L̄ = Σ CE / |labelled tokens|; inf when truncation left no answer token."""
        return float(-self.logprobs.mean()) if self.num_tokens else float("inf")


Tokens = tuple[int, ...]


def _as_tokens(value):
    """Token ids as a tuple (hashable request fields); text stays text."""
    return value if isinstance(value, str) else tuple(int(i) for i in value)


# ---- requests: what an evaluator asks of the harness (frozen: they key the caches) -------------
# A context or text is either a string, which the harness encodes by its prompt rules, or token ids
# the benchmark encoded (and truncated) itself, which the harness scores or extends as given.

@dataclass(frozen=True)
class Continuation:
    """log p(continuation | context) per labelled token (`Harness.loglikelihood`).

    Text: `context + continuation` + EOS encoded with the harness's label rules (label_span,
    labelled_prompt_suffix, double_bos, max_length); the continuation and the EOS are labelled.
    Token ids: `context + continuation` as given, the continuation labelled; the context holds at
    least one token. Continuations of one context share its keys/values (`share_prefixes`)."""

    context: str | Tokens
    continuation: str | Tokens
    moments: bool = True  # Min-K++ μ/σ wanted; False skips that vocabulary-wide maths (mu = sigma = None)

    def __post_init__(self):
        object.__setattr__(self, "context", _as_tokens(self.context))
        object.__setattr__(self, "continuation", _as_tokens(self.continuation))


@dataclass(frozen=True)
class Rolling:
    """log p of every token of a sequence after its first (`Harness.loglikelihood`; MIA on raw text).

    Text: BOS + text, truncated to `max_length` tokens, no EOS appended; token ids: as given."""

    text: str | Tokens
    moments: bool = True

    def __post_init__(self):
        object.__setattr__(self, "text", _as_tokens(self.text))


@dataclass(frozen=True)
class NextToken:
    """log p(candidate | context) of one-token continuations (`Harness.loglikelihood`; multiple
    choice): the scores' values follow `candidates`, `hits` marks the argmax token. The context is
    encoded as a generation prompt is (no second BOS after a rendered chat template)."""

    context: str
    candidates: Tokens

    def __post_init__(self):
        object.__setattr__(self, "candidates", _as_tokens(self.candidates))


@dataclass(frozen=True)
class Generation:
    """A greedy continuation of `context` (`Harness.generate_until`).

    Stops at the model's EOS ids and at `stop_ids`; the text ends before the stop token, or, with
    `decode_stop_token`, is decoded with it (special tokens drop out: model.generate + batch_decode,
    as TOFU and MUSE read it), and is then cut before the first of `stop_strings`."""

    context: str | Tokens
    max_new_tokens: int | None = None  # None: the harness's budget (max_new_tokens, or legacy gen_max_length)
    stop_ids: Tokens = ()
    stop_strings: tuple[str, ...] = ()
    decode_stop_token: bool = False

    def __post_init__(self):
        object.__setattr__(self, "context", _as_tokens(self.context))
        object.__setattr__(self, "stop_ids", _as_tokens(self.stop_ids))
        object.__setattr__(self, "stop_strings", tuple(self.stop_strings))


@dataclass
class Harness:
    model: torch.nn.Module
    tokenizer: object
    max_length: int = 512          # encoding length for teacher forcing
    batch_size: int = 32
    gen_batch_size: int | None = None  # None: as many rows as memory holds (evaluation.generation_batch)
    max_new_tokens: int | None = 200
    gen_max_length: int | None = None  # legacy TOFU: total length incl. the (padded) prompt
    progress: bool = True
    # text at the end of every prompt the labels also cover (TOFU-legacy labels Phi's "Answer: ")
    labelled_prompt_suffix: str = ""
    # which token starts the labels (evaluation.encoding.LABEL_SPAN_RULES): character offsets, or
    # open-unlearning's / TOFU's index len(tokenizer(prompt))
    label_span: str = SPAN_OFFSETS
    # prompts already rendered with BOS (chat templates) get the tokenizer's BOS again when they are
    # tokenised for generation, next-token choice and scoring: RWKU's official code as published
    double_bos: bool = False
    # clean_up_tokenization_spaces rule for generated text (evaluation.decoding.CLEAN_UP_RULES)
    decode_clean_up: str = decoding.AS_LOADED
    # generation stops on any of these ids (the model's generation_config list); None: tokenizer EOS
    eos_token_ids: list[int] | None = None
    # score continuations of one prompt against its cached keys/values (plain HF causal LMs only)
    share_prefixes: bool = True
    sequences_scored: int = 0
    positions_scored: int = 0      # token positions the model processed while scoring
    unique_tokens: int = 0         # distinct token positions of the scored sequences (shared prefixes once)
    prompts_generated: int = 0
    tokens_generated: int = 0      # new tokens produced (stop tokens included)
    generation_seconds: float = 0.0
    generation_batch_rows: int = 0  # the largest generation batch formed (vLLM: prompts per call)
    # drop finished rows from the batch (evaluation.greedy); False: model.generate keeps them to the end
    evict_finished: bool = True
    # generation engine: auto | transformers | vllm (evaluation.backends); None: the process's request
    backend: str | None = None
    selection: backends.Selection | None = None
    seconds: float = 0.0
    _scores: dict = field(default_factory=dict, repr=False)
    _generations: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        decoding.check_rule(self.decode_clean_up)
        if self.gen_batch_size is not None and self.gen_batch_size < 1:
            raise ValueError(f"gen_batch_size must be a positive number of rows or None (sized by memory), "
                             f"not {self.gen_batch_size}")

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _scoring_batches(self, items: list, lengths: list[int], full_logits: bool):
        """Longest first, as `_batches`, each batch as many rows (at most batch_size) as memory holds
        for its longest sequence (generation_batch.forward_rows); `full_logits`: the forward forms
        [rows, length, vocab] logits (no head on labelled positions only)."""
        order = np.argsort(-np.asarray(lengths), kind="stable")
        dtype = getattr(self.model, "dtype", None) or next(self.model.parameters()).dtype
        per_position = (dtype.itemsize + 4) if full_logits else 0
        start = 0
        while start < len(order):
            rows = generation_batch.forward_rows(self.model, int(lengths[order[start]]), self.batch_size, per_position)
            yield [items[i] for i in order[start:start + rows]]
            start += rows

    def _batches(self, items: list, lengths: list[int], size: int):
        order = np.argsort(-np.asarray(lengths), kind="stable")  # longest first: similar lengths share a batch
        for start in range(0, len(order), size):
            yield [items[i] for i in order[start:start + size]]

    @torch.inference_mode()
    def loglikelihood(self, requests: Sequence[Continuation | Rolling | NextToken]) -> list[TokenScores]:
        """Teacher-forced scores per request, in request order; each unique request runs once per
        harness (cached), in length-sorted batches.

        Continuations of one context share its keys/values (`share_prefixes`); rolling and token-id
        requests of one call are batched together per sequence; next-token requests run one
        left-padded forward per context."""
        start = time.perf_counter()
        wanted: dict = {}  # cache key -> (its first request, Min-K++ moments wanted by any of this call)
        for request in requests:
            key = _cache_key(request)
            first, moments = wanted.get(key, (request, False))
            wanted[key] = first, moments or getattr(request, "moments", False)
        todo = [key for key, (_, moments) in wanted.items()
                if key not in self._scores or (moments and self._scores[key].mu is None)]
        sequences = [key for key in todo if not isinstance(key, NextToken)]
        self._score_sequences(sequences, [wanted[key][0] for key in sequences], [wanted[key][1] for key in sequences])
        self._score_next_tokens([key for key in todo if isinstance(key, NextToken)])
        self.seconds += time.perf_counter() - start
        return [self._scores[_cache_key(r)] for r in requests]

    def _score_sequences(self, keys: list, requests: list[Continuation | Rolling], moments: list[bool]) -> None:
        """Continuation and Rolling requests: shared-prefix groups through `_score_shared`, the rest
        per sequence. Token positions and unique tokens are counted where they always were (text
        continuations, shared groups), so the MUSE and RWKU cost blocks stay comparable with older
        results; sequences are counted for every request. `keys`: the requests' cache keys."""
        encoded = [self._encode(request) for request in requests]
        counted = [isinstance(r, Continuation) and isinstance(r.context, str) for r in requests]
        bar = tqdm(total=len(keys), desc="score", unit="seq", disable=not self.progress or not keys, leave=False)
        contexts = [r.context if isinstance(r, Continuation) else None for r in requests]
        groups = shared_prefix_groups(contexts, encoded) if self._can_share_prefixes() else [
            (0, [i]) for i in range(len(keys))]
        self.unique_tokens += sum(prefix + sum(len(encoded[i]["input_ids"]) - prefix for i in members)
                                  for prefix, members in groups if counted[members[0]])
        single = [i for prefix, members in groups if prefix == 0 or len(members) == 1 for i in members]
        shared = [(prefix, members) for prefix, members in groups if prefix > 0 and len(members) > 1]
        full_logits = self._forward_and_head()[1] is None
        for chunk in self._scoring_batches(single, [len(encoded[i]["input_ids"]) for i in single], full_logits):
            batch = pad_batch([encoded[i] for i in chunk], self.tokenizer.pad_token_id)
            self.positions_scored += int(batch["input_ids"].shape[1]) * sum(counted[i] for i in chunk)
            self._store(keys, encoded, chunk, self._score_batch(batch, [moments[i] for i in chunk]))
            bar.update(len(chunk))
        for chunk in self._group_batches(shared, encoded):
            members = [i for _, group in chunk for i in group]
            self._store(keys, encoded, members, self._score_shared(chunk, encoded, [moments[i] for i in members]))
            bar.update(len(members))
        bar.close()
        self.sequences_scored += len(keys)

    def _encode(self, request: Continuation | Rolling) -> dict:
        """input_ids / attention_mask / labels of one request (+ the answer-tag count and whether the
        EOS label survived truncation, which only text continuations can change)."""
        if isinstance(request, Continuation) and isinstance(request.context, str):
            context = request.context
            return encode_prompt_continuation(self.tokenizer, context, request.continuation, self.max_length,
                                              label_start=self._label_start(context), label_span=self.label_span,
                                              add_special_tokens=True if self.double_bos else None)
        if isinstance(request, Continuation):
            if not request.context:
                raise ValueError("a token-id continuation needs a non-empty context (at least the BOS token)")
            ids, start = list(request.context) + list(request.continuation), len(request.context)
        elif isinstance(request.text, str):
            ids, start = self.tokenizer(request.text, add_special_tokens=True)["input_ids"][:self.max_length], 1
        else:
            ids, start = list(request.text), 1
        labels = [IGNORE_INDEX] * start + ids[start:]
        return {"input_ids": torch.tensor(ids, dtype=torch.long),
                "attention_mask": torch.ones(len(ids), dtype=torch.long),
                "labels": torch.tensor(labels, dtype=torch.long), "prefix_labels": 0, "eos_kept": True}

    def _score_next_tokens(self, todo: list[NextToken]) -> None:
        """Log-probs of the candidates after each unique context: full logits at the last position of
        left-padded rows whose positions count from their first real token (as unpadded, batch 1)."""
        contexts = list(dict.fromkeys(request.context for request in todo))
        asked: dict[str, list[NextToken]] = {}
        for request in todo:
            asked.setdefault(request.context, []).append(request)
        ids = self._prompt_ids(contexts)
        for chunk in self._scoring_batches(list(range(len(contexts))), [len(row) for row in ids], full_logits=True):
            input_ids, mask = left_pad([torch.tensor(ids[i], dtype=torch.long) for i in chunk],
                                       self.tokenizer.pad_token_id)
            input_ids, mask = input_ids.to(self.device), mask.to(self.device)
            positions = (mask.cumsum(-1) - 1).clamp_min(0)
            logits = self.model(input_ids=input_ids, attention_mask=mask, position_ids=positions).logits
            logp = torch.log_softmax(logits[:, -1].float(), dim=-1)
            best = logp.argmax(dim=-1)
            for row, i in enumerate(chunk):
                for request in asked[contexts[i]]:
                    candidates = list(request.candidates)
                    values = logp[row, candidates].cpu().numpy()
                    hits = (best[row] == torch.tensor(candidates, device=best.device)).cpu().numpy()
                    self._scores[request] = TokenScores(np.asarray(candidates, dtype=np.int64), values, hits,
                                                        None, None, eos_labelled=False)
        self.sequences_scored += len(contexts)

    def _store(self, todo, encoded, indices, scores) -> None:
        for i, score in zip(indices, scores):
            self._scores[todo[i]] = dataclasses.replace(
                score, tag_tokens=encoded[i]["prefix_labels"], eos_labelled=encoded[i]["eos_kept"])

    def _can_share_prefixes(self) -> bool:
        # GRUN's edits locate their position from the whole input: keep those models on full sequences
        return self.share_prefixes and not getattr(self.model, "edits_prompt_positions", False)

    def _group_batches(self, groups, encoded):
        """Groups of continuations, longest first, in chunks of at most `batch_size` continuations."""
        longest = [max(len(encoded[i]["input_ids"]) for i in members) for _, members in groups]
        order = np.argsort(-np.asarray(longest), kind="stable")
        chunk, size = [], 0
        for g in order:
            count = len(groups[g][1])
            if chunk and size + count > self.batch_size:
                yield chunk
                chunk, size = [], 0
            chunk.append(groups[g])
            size += count
        if chunk:
            yield chunk

    def _score_shared(self, chunk, encoded, moments: list[bool]) -> list[TokenScores]:
        """Prefixes once (left-padded, cached), then every continuation's own tokens against its
        group's cache; position t predicts token t+1 exactly as in a full-sequence forward."""
        pad, device = self.tokenizer.pad_token_id, self.device
        prefix_ids, prefix_mask = left_pad([encoded[members[0]]["input_ids"][:length] for length, members in chunk], pad)
        width = prefix_ids.shape[1]
        prefix_ids, prefix_mask = prefix_ids.to(device), prefix_mask.to(device)
        positions = (prefix_mask.cumsum(1) - 1).clamp_min(0)
        forward, head = self._forward_and_head()
        keep_last = {} if head is not None else {"logits_to_keep": 1}
        out = forward(input_ids=prefix_ids, attention_mask=prefix_mask, position_ids=positions, use_cache=True,
                      **keep_last)
        last = _model_values(out, head)[:, -1]
        cache = out.cache if getattr(out, "cache", None) is not None else out.past_key_values
        owner = [g for g, (_, members) in enumerate(chunk) for _ in members]
        members = [i for _, group in chunk for i in group]
        suffixes = [encoded[i]["input_ids"][chunk[g][0]:] for i, g in zip(members, owner)]
        labels = [encoded[i]["labels"][chunk[g][0]:] for i, g in zip(members, owner)]
        suffix_width = max(len(x) for x in suffixes)
        suffix_ids = torch.full((len(members), suffix_width), pad, dtype=torch.long)
        suffix_mask = torch.zeros((len(members), suffix_width), dtype=torch.long)
        targets = torch.full((len(members), suffix_width), IGNORE_INDEX, dtype=torch.long)
        for row, (ids, lab) in enumerate(zip(suffixes, labels)):
            suffix_ids[row, :len(ids)], suffix_mask[row, :len(ids)], targets[row, :len(lab)] = ids, 1, lab
        index = torch.tensor(owner, device=device)
        cache.batch_select_indices(index)
        lengths = torch.tensor([chunk[g][0] for g in owner], device=device)
        suffix_positions = lengths[:, None] + torch.arange(suffix_width, device=device)[None, :]
        mask = torch.cat([prefix_mask[index], suffix_mask.to(device)], dim=1)
        values = _model_values(forward(input_ids=suffix_ids.to(device), attention_mask=mask,
                                       position_ids=suffix_positions, use_cache=True,
                                       cache_position=torch.arange(width, width + suffix_width, device=device),
                                       **{cache_keyword(forward): cache}), head)
        self.positions_scored += int(prefix_ids.numel() + suffix_ids.numel())
        # prediction of suffix token j comes from position j-1: the prefix's last position for j = 0
        values = torch.cat([last[index][:, None], values[:, :-1]], dim=1)
        return self._token_scores(values, targets.to(device), head, moments)

    def _forward_and_head(self):
        """(decoder, head) when logits are head(hidden) (the head then runs on labelled positions only,
        evaluation.token_statistics), else (model, None)."""
        split = split_head(self.model)
        return split if split is not None else (self.model, None)

    def _label_start(self, prompt: str) -> int:
        suffix = self.labelled_prompt_suffix
        return len(prompt) - len(suffix) if suffix and prompt.endswith(suffix) else len(prompt)

    def _score_batch(self, batch: dict[str, torch.Tensor], moments: list[bool] | None = None) -> list[TokenScores]:
        batch = {k: v.to(self.device) for k, v in batch.items()}
        forward, head = self._forward_and_head()
        values = _model_values(forward(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]), head)
        return self._token_scores(values[:, :-1], batch["labels"][:, 1:], head, moments)

    @staticmethod
    def _token_scores(values: torch.Tensor, targets: torch.Tensor, head=None,
                      moments: list[bool] | None = None) -> list[TokenScores]:
        """Per-row TokenScores where values[b, t] (logits, or hidden states when `head` gives the
        logits) predicts targets[b, t] (−100 = not scored); μ/σ only for rows with `moments` (None: all)."""
        mask = targets != IGNORE_INDEX
        rows = [True] * mask.shape[0] if moments is None else moments
        selected = None if all(rows) else torch.tensor(rows, device=mask.device)[:, None].expand_as(mask)[mask]
        # Only labelled positions go through the vocabulary-wide maths: [N, V] instead of [B, T, V].
        columns = token_statistics(values[mask], targets[mask], head, selected)
        counts = mask.sum(dim=1).tolist()
        out, offset = [], 0
        for count, with_moments in zip(counts, rows):
            ids, logprobs, hits, mu, sigma = (c[offset:offset + count] for c in columns)
            out.append(TokenScores(ids, logprobs, hits, mu if with_moments else None, sigma if with_moments else None))
            offset += count
        return out

    @torch.inference_mode()
    def generate_until(self, requests: Sequence[Generation]) -> list[str]:
        """Greedy continuations per request, in request order; each unique request runs once per
        harness (cached). One pass per (budget, stops): left-padded, length-bucketed batches through
        `_greedy`. The text is decoded without special tokens and not stripped."""
        start = time.perf_counter()
        todo = list(dict.fromkeys(r for r in requests if r not in self._generations))
        ids = self._context_ids(todo)
        passes: dict[tuple, list[int]] = {}
        for index, request in enumerate(todo):
            passes.setdefault((request.max_new_tokens, self._stops(request)), []).append(index)
        bar = tqdm(total=len(todo), desc="generate", unit="prompt", disable=not self.progress or not todo, leave=False)
        for (budget, stops), members in sorted(passes.items(), key=lambda item: _pass_order(*item[0])):
            for chunk, rows_per_batch in self._generation_batches(members, [len(ids[i]) for i in members], budget):
                input_ids, mask = left_pad([torch.tensor(ids[i], dtype=torch.long) for i in chunk],
                                           self.tokenizer.pad_token_id)
                new_tokens = self._greedy(input_ids.to(self.device), mask.to(self.device), budget, list(stops),
                                          rows=rows_per_batch)
                self.tokens_generated += sum(len(row) for row in new_tokens)
                requests_of_chunk = [todo[i] for i in chunk]
                for request, text in zip(requests_of_chunk, self._texts(requests_of_chunk, new_tokens, stops)):
                    self._generations[request] = text
                bar.update(len(chunk))
        bar.close()
        self.prompts_generated += len(todo)
        self.generation_seconds += time.perf_counter() - start
        self.seconds += time.perf_counter() - start
        return [self._generations[r] for r in requests]

    def _stops(self, request: Generation) -> tuple[int, ...]:
        """The model's EOS ids, then the request's own stop ids."""
        return tuple(dict.fromkeys(i for i in (*self.stop_ids(), *request.stop_ids) if i is not None))

    def _context_ids(self, requests: Sequence[Generation]) -> list[list[int]]:
        """Prompt token ids per request: token-id contexts as given, text ones encoded together
        (`_prompt_ids`: one BOS rule for all of them)."""
        texts = list(dict.fromkeys(r.context for r in requests if isinstance(r.context, str)))
        encoded = dict(zip(texts, self._prompt_ids(texts)))
        return [encoded[r.context] if isinstance(r.context, str) else list(r.context) for r in requests]

    def _texts(self, requests: list[Generation], rows: list[list[int]], stops: tuple[int, ...]) -> list[str]:
        """Generated text per row: cut before the first stop token unless the request decodes it
        (special tokens drop out in decoding), then before the first of its stop strings."""
        stop_set = set(stops)
        kept = [row if request.decode_stop_token else _before_stop(row, stop_set)
                for request, row in zip(requests, rows)]
        texts = decoding.batch_decode(self.tokenizer, kept, self.decode_clean_up)
        for index, request in enumerate(requests):
            for word in request.stop_strings:
                texts[index] = texts[index].split(word)[0]
        return texts

    @property
    def generation_backend(self) -> str:
        if self.selection is not None and self.selection.backend == "vllm":
            return "vllm"
        return "greedy-evict" if self.evict_finished and plain_greedy_model(self.model) else "transformers-generate"

    def _select_backend(self) -> backends.Selection:
        if self.selection is None:
            self.selection = backends.select(self.backend or backends.requested(), self.model)
        return self.selection

    def _budget(self, width: int) -> int:
        """New tokens per row of a batch `width` tokens wide: legacy `gen_max_length` counts the
        padded prompt, as `generate(max_length=...)` does; else `max_new_tokens`."""
        return (self.gen_max_length - width) if self.gen_max_length else self.max_new_tokens

    def _new_tokens(self, longest_prompt: int, budget: int | None) -> int:
        """The most tokens a batch whose longest prompt has `longest_prompt` tokens may generate."""
        return max((self._budget(longest_prompt) if budget is None else budget) or 0, 0)

    def _transformers_batch_size(self, longest_prompt: int, budget: int | None) -> int:
        if self.gen_batch_size is not None:
            return self.gen_batch_size
        return generation_batch.rows_that_fit(self.model, longest_prompt, self._new_tokens(longest_prompt, budget),
                                              GROWTH_STEP)

    def _generation_batches(self, items: list, lengths: list[int], budget: int | None):
        """(prompts of one `_greedy` call, rows per transformers batch), longest prompts first: a fixed
        `gen_batch_size`, or length buckets sized by memory (evaluation.generation_batch)."""
        if not items:
            return
        longest = max(lengths)
        # vLLM batches continuously: hand it many prompts at once, unless the legacy budget depends on
        # the padded width of each batch (gen_max_length), which must stay as transformers forms it
        to_vllm = self._select_backend().backend == "vllm" and not self.gen_max_length
        if self.gen_batch_size is not None or to_vllm:
            rows = self._transformers_batch_size(longest, budget)
            for chunk in self._batches(items, lengths, max(rows, VLLM_BATCH_SIZE) if to_vllm else rows):
                self.generation_batch_rows = max(self.generation_batch_rows, len(chunk))
                yield chunk, rows
            return
        plan = lambda width: self._transformers_batch_size(width, budget)  # noqa: E731
        for indices in generation_batch.length_buckets(lengths, self._new_tokens(longest, budget), plan):
            self.generation_batch_rows = max(self.generation_batch_rows, len(indices))
            yield [items[i] for i in indices], len(indices)

    def _external_generator(self, input_ids, attention_mask, budget: int, stop_ids: list[int]):
        """The vLLM generator once its greedy rows on the first prompts match transformers', else None."""
        selection = self._select_backend()
        if selection.backend != "vllm":
            return None
        if selection.sample_check is None:
            count = min(backends.SAMPLE_PROMPTS, input_ids.shape[0])
            reference = self._transformers_greedy(input_ids[:count], attention_mask[:count], budget, stop_ids)
            candidate = selection.generator.generate(unpadded(input_ids[:count], attention_mask[:count]),
                                                     budget, stop_ids)
            selection.sample_check = backends.compare_sample(reference, candidate, stop_ids)
            if not selection.sample_check["passed"]:
                check = selection.sample_check
                selection.fall_back(f"sample check failed: {check['differing']} of {check['prompts']} prompts differ "
                                    f"from transformers within their first {check['compare_tokens']} tokens")
                return None
        return selection.generator

    def _greedy(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, budget: int | None = None,
                stop_ids: list[int] | None = None, rows: int | None = None) -> list[list[int]]:
        """New tokens per row of a left-padded batch, the stop token included. Default budget:
        `_budget`; default stops: `stop_ids()`; `rows`: rows per transformers batch (default: all)."""
        if budget is None:
            budget = self._budget(input_ids.shape[1])
        stop_ids = list(stop_ids) if stop_ids is not None else self.stop_ids()
        generator = self._external_generator(input_ids, attention_mask, budget, stop_ids)
        if generator is not None:
            return generator.generate(unpadded(input_ids, attention_mask), budget, stop_ids)
        size = rows or input_ids.shape[0]  # a vLLM-sized batch after a failed sample check: pieces
        tokens = []
        for start in range(0, input_ids.shape[0], size):
            piece = slice(start, start + size)
            tokens += self._transformers_greedy(input_ids[piece], attention_mask[piece], budget, stop_ids)
        return tokens

    def _transformers_greedy(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, budget: int,
                             stop_ids: list[int]) -> list[list[int]]:
        if self.evict_finished and plain_greedy_model(self.model):
            tokens, _ = greedy_decode(self.model, input_ids, attention_mask, budget, stop_ids)
            return tokens
        output = self.model.generate(input_ids=input_ids, attention_mask=attention_mask, do_sample=False,
                                     pad_token_id=self.tokenizer.pad_token_id, eos_token_id=stop_ids,
                                     max_new_tokens=max(budget, 0))
        stops = set(stop_ids)
        rows = []
        for row in output[:, input_ids.shape[1]:].tolist():
            cut = next((i + 1 for i, t in enumerate(row) if t in stops), len(row))  # generate pads after a stop
            rows.append(row[:cut])
        return rows

    def stop_ids(self) -> list[int]:
        """The model's own EOS ids (Llama-3 Instruct: three) plus the tokenizer's EOS."""
        ids = list(self.eos_token_ids) if self.eos_token_ids is not None else model_eos_ids(self.model)
        return list(dict.fromkeys(ids + [self.tokenizer.eos_token_id]))

    def _prompt_ids(self, prompts: list[str]) -> list[list[int]]:
        """Token ids of prompts to extend: prompts already rendered with BOS (all of them) get no
        second one, unless `double_bos` asks for it."""
        tok = self.tokenizer
        add_special = self.double_bos or not (tok.bos_token and all(p.startswith(tok.bos_token) for p in prompts))
        return [tok(p, add_special_tokens=add_special)["input_ids"] for p in prompts]

    def cost(self) -> dict:
        return {"sequences_scored": self.sequences_scored, "positions_scored": self.positions_scored,
                "unique_tokens_scored": self.unique_tokens, "prompts_generated": self.prompts_generated,
                "tokens_generated": self.tokens_generated, "generation_batch_rows": self.generation_batch_rows,
                "generation_seconds": round(self.generation_seconds, 3), "eval_seconds": round(self.seconds, 3)}


def unpadded(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> list[list[int]]:
    """The real tokens of each row of a padded batch (token-id prompts for an external engine)."""
    return [row[mask.bool()].tolist() for row, mask in zip(input_ids.cpu(), attention_mask.cpu())]


def left_pad(rows: list[torch.Tensor], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, attention mask) of 1-D token tensors left-padded to the longest: the layout both the
    cached-prefix scoring and greedy decoding read the last real position from."""
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for index, row in enumerate(rows):
        ids[index, width - len(row):] = row
        mask[index, width - len(row):] = 1
    return ids, mask


def first_labelled(labels: torch.Tensor) -> int:
    """Index of the first labelled token (the length when none is)."""
    positions = (labels != IGNORE_INDEX).nonzero()
    return int(positions[0]) if len(positions) else len(labels)


def shared_prefix_groups(contexts: list, encoded: list[dict]) -> list[tuple[int, list[int]]]:
    """(shared prefix length, member indices) per context: the longest token prefix common to every
    continuation of that context, cut before the first labelled position so each member's first
    prediction comes from the prefix's last logits. Length 0: nothing to share. A context None
    (a rolling sequence) is a group of its own."""
    by_context: dict = {}
    for index, context in enumerate(contexts):
        by_context.setdefault(("alone", index) if context is None else ("context", context), []).append(index)
    groups = []
    for members in by_context.values():
        rows = [encoded[i]["input_ids"] for i in members]
        shortest = min(first_labelled(encoded[i]["labels"]) for i in members)
        common = 0
        while common < shortest and all(r[common] == rows[0][common] for r in rows[1:]):
            common += 1
        groups.append((common, members))
    return groups


def _cache_key(request) -> tuple | NextToken:
    """Requests that differ only in the moments they want share one cache entry (it holds the
    moments once any request wanted them)."""
    if isinstance(request, Continuation):
        return "continuation", request.context, request.continuation
    if isinstance(request, Rolling):
        return "rolling", request.text
    return request


def _before_stop(row: list[int], stops: set[int]) -> list[int]:
    """The tokens before the first stop token (all of them when none stopped the row)."""
    return row[:next((i for i, token in enumerate(row) if token in stops), len(row))]


def _pass_order(budget: int | None, stops: tuple[int, ...]) -> tuple:
    """Generation passes by budget, smallest first; the harness's own budget (None) last."""
    return budget is None, budget or 0, stops


def model_eos_ids(model) -> list[int]:
    """generation_config.eos_token_id as a list (it may be an int, a list or None)."""
    config = getattr(model, "generation_config", None)
    value = getattr(config, "eos_token_id", None) if config is not None else None
    if value is None:
        return []
    return [int(v) for v in value] if isinstance(value, (list, tuple)) else [int(value)]


def _model_values(output, head) -> torch.Tensor:
    """The decoder's hidden states when the head is applied later, else the model's logits."""
    return output.last_hidden_state if head is not None else output.logits
