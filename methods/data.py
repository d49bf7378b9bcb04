"""Streams of encoded examples, right-padding collate, and the deterministic batch schedule.

A stream is a list of encoded examples {"input_ids", "attention_mask", "labels"} (1-D long
tensors). The objective's first stream defines the epoch; aligned streams are indexed like it;
every other stream (retain) is paired per global index by a seeded RNG, identically on all ranks
(OU draws retain partners with the global torch RNG, which repeats them across ranks — #139).
"""
from __future__ import annotations

import collections.abc
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch

from methods import tokens

Example = dict[str, torch.Tensor]
# TOFU's data/idontknow.jsonl, shipped unchanged (MIT; attribution in idontknow.LICENSE.txt)
REFUSALS_PATH = Path(__file__).with_name("idontknow.jsonl")


def refusals() -> list[str]:
    """TOFU's 100 refusal answers: plain-text lines (not JSON despite the extension), each stripped,
    as TOFU, open-unlearning, GRUN and G-effect read them."""
    return [line.strip() for line in REFUSALS_PATH.read_text(encoding="utf-8").splitlines() if line.strip()]


IDK_DRAWS = ("epoch", "once")


class RedrawnRefusals(collections.abc.Sequence):
    """The stream forget_idk: forget question i with a refusal drawn at random, per epoch or once.

    TOFU, open-unlearning and G-effect draw `torch.randint(len(idk))` inside the dataset's
    `__getitem__`, so an item gets a fresh refusal each time it is served (`draw="epoch"`). GRUN
    draws one per item when it builds its dataset and keeps it (`draw="once"`). Here the draw is a
    pure function of (seed, epoch, i), the same on every rank and for any world size. The stream has
    one row per forget pair; with `redrawn_per_epoch` the schedule addresses row i of epoch e as
    e·len + i; indexing and iterating from 0 gives epoch 0. Rows are encoded on first use.
    """

    def __init__(self, forget_pairs: Sequence[tuple[str, str]], encode: Callable[[str, str], Example],
                 seed: int, lines: Sequence[str], draw: str = "epoch"):
        if not lines:
            raise ValueError("forget_idk needs at least one refusal line")
        if draw not in IDK_DRAWS:
            raise ValueError(f"idk_draw must be one of {IDK_DRAWS} (a refusal redrawn each epoch, as the "
                             f"original QA-benchmark code, OU and G-effect, or drawn once per item, as GRUN), "
                             f"got {draw!r}")
        self.redrawn_per_epoch = draw == "epoch"
        self.questions = [q for q, _ in forget_pairs]
        self.lines, self.encode, self.seed = list(lines), encode, seed
        self._picks: dict[int, np.ndarray] = {}
        self._encoded: dict[tuple[int, int], Example] = {}

    def __len__(self) -> int:
        return len(self.questions)

    def refusal_index(self, epoch: int, row: int) -> int:
        if epoch not in self._picks:
            self._picks[epoch] = np.random.default_rng([self.seed, 0x1D, epoch]).integers(
                len(self.lines), size=len(self.questions))
        return int(self._picks[epoch][row])

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if index < 0 or not self.questions:
            raise IndexError(index)
        epoch, row = divmod(int(index), len(self.questions))
        epoch = epoch if self.redrawn_per_epoch else 0
        key = (row, self.refusal_index(epoch, row))
        if key not in self._encoded:
            self._encoded[key] = self.encode(self.questions[row], self.lines[key[1]])
        return self._encoded[key]

    def __iter__(self):
        return (self[i] for i in range(len(self)))


def collate(examples: Sequence[Example], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Right-pad to the longest example: pad id, attention 0, label -100."""
    if pad_token_id is None:
        raise ValueError("pad_token_id is None: set tokenizer.pad_token (e.g. to the EOS token) first")
    longest = max(len(e["input_ids"]) for e in examples)
    fill = {"input_ids": pad_token_id, "attention_mask": 0, "labels": tokens.IGNORE}
    out = {}
    for key, value in fill.items():
        out[key] = torch.full((len(examples), longest), value, dtype=torch.long)
        for row, example in enumerate(examples):
            out[key][row, :len(example[key])] = example[key]
    return out


def build_streams(objective, forget_pairs: Sequence[tuple[str, str]], retain_pairs: Sequence[tuple[str, str]],
                  encode: Callable[[str, str], Example], seed: int, idk_draw: str = "epoch") -> dict[str, list[Example]]:
    """Streams an objective reads, from (question, answer) pairs.

    forget → forget pairs; forget_idk → each forget question with one of TOFU's refusals, redrawn
    per epoch (`idk_draw` "epoch") or once (`"once"`) by a seeded RNG (RedrawnRefusals);
    retain → retain pairs; train → forget then retain pairs (fine-tuning on the full set). forget and
    retain are always built when given, whatever the objective reads: rectifiers need retain, GRUN's
    gate loss needs both (e.g. under IDK+NLL, which reads forget_idk). `objective` is a name or an
    Objective.
    """
    from methods.registry import OBJECTIVES
    if isinstance(objective, str):
        objective = OBJECTIVES.get(objective)()
    needed = set(objective.streams) | ({"retain"} if retain_pairs else set()) | ({"forget"} if forget_pairs else set())
    builders = {
        "forget": lambda: [encode(q, a) for q, a in forget_pairs],
        "retain": lambda: [encode(q, a) for q, a in retain_pairs],
        "train": lambda: [encode(q, a) for q, a in list(forget_pairs) + list(retain_pairs)],
        "forget_idk": lambda: RedrawnRefusals(forget_pairs, encode, seed, refusals(), idk_draw),
    }
    unknown = sorted(needed - set(builders))
    if unknown:
        raise ValueError(f"build_streams cannot build stream(s) {unknown}; it knows {sorted(builders)}")
    return {name: builders[name]() for name in sorted(needed)}


def build_text_streams(objective, forget: Sequence[Example], retain: Sequence[Example]) -> dict[str, list[Example]]:
    """Streams from raw-text chunks (MUSE, WMDP, RWKU corpora): forget, retain, and train = forget
    then retain. Objectives that need question/answer structure (forget_idk) cannot run on text."""
    from methods.registry import OBJECTIVES
    if isinstance(objective, str):
        objective = OBJECTIVES.get(objective)()
    available = {"forget": list(forget), "retain": list(retain), "train": list(forget) + list(retain)}
    needed = set(objective.streams) | ({"retain"} if retain else set())
    unknown = sorted(needed - set(available))
    if unknown:
        raise ValueError(f"objective {objective.name!r} reads stream(s) {unknown}, which a raw-text corpus "
                         "cannot provide (they need question/answer pairs); choose another objective")
    return {name: available[name] for name in sorted(needed)}


@dataclass
class Schedule:
    """Which examples each rank uses at each optimizer step; a pure function of (seed, step).

    Optimizer step s of epoch e takes global indices [w·G, (w+1)·G) of epoch e's permutation of the
    primary stream, G = batch_size·grad_accum·world_size (the last window of an epoch may be
    partial). The window is cut into micro-batches of batch_size; micro-batch j goes to rank
    j mod world_size. So 1 rank × GA 4 and 2 ranks × GA 2 see the same micro-batches. A stream in
    `redrawn` (its rows change every epoch: RedrawnRefusals) is addressed as epoch·length + row.
    """
    lengths: dict[str, int]
    primary: str
    aligned: tuple[str, ...]
    batch_size: int
    grad_accum: int
    world_size: int
    seed: int
    redrawn: tuple[str, ...] = ()

    @property
    def window(self) -> int:
        return self.batch_size * self.grad_accum * self.world_size

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.lengths[self.primary] / self.window)

    def _epoch_order(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch, 0]).permutation(self.lengths[self.primary])

    def _partners(self, epoch: int, stream: int, name: str) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch, 1 + stream]).integers(
            self.lengths[name], size=self.lengths[self.primary])

    def micro_batches(self, step: int) -> list[dict[str, list[int]]]:
        """All micro-batches of optimizer step `step` (0-based): stream name → example indices."""
        epoch, position = divmod(step, self.steps_per_epoch)
        order = self._epoch_order(epoch)
        chosen = order[position * self.window:(position + 1) * self.window]
        paired = [n for n in sorted(self.lengths) if n != self.primary and n not in self.aligned]
        partners = {n: self._partners(epoch, i, n) for i, n in enumerate(paired)}
        out = []
        for start in range(0, len(chosen), self.batch_size):
            idx = chosen[start:start + self.batch_size]
            micro = {self.primary: idx.tolist()}
            micro.update({n: idx.tolist() for n in self.aligned})
            micro.update({n: partners[n][idx].tolist() for n in paired})
            for name in self.redrawn:
                micro[name] = [epoch * self.lengths[name] + i for i in micro[name]]
            out.append(micro)
        return out

    def for_rank(self, step: int, rank: int) -> tuple[list[dict[str, list[int]]], int]:
        """(this rank's micro-batches, number of micro-batches in the whole window)."""
        micro = self.micro_batches(step)
        return micro[rank::self.world_size], len(micro)


def gather(streams: dict[str, list[Example]], micro: dict[str, list[int]], pad_token_id: int,
           device) -> dict[str, dict[str, torch.Tensor]]:
    return {name: {k: v.to(device) for k, v in collate([streams[name][i] for i in idx], pad_token_id).items()}
            for name, idx in micro.items()}


def check_examples(name: str, examples: Iterable[Example]) -> None:
    for i, example in enumerate(examples):
        missing = {"input_ids", "attention_mask", "labels"} - set(example)
        if missing:
            raise ValueError(f"stream {name!r} example {i} lacks {sorted(missing)}; encode examples with "
                             "evaluation.encoding (input_ids, attention_mask, labels as 1-D long tensors)")
