"""Relearning attacks: fine-tune the unlearned model for a fixed budget, then evaluate it again
(Hu et al., ICLR 2025; Łucki et al. 2024; Deeb & Roger 2024).

- `forget-split`: train on one half of the forget questions, judge the forget metrics on the other
  half only: recovery of knowledge the attack never saw (Deeb & Roger's protocol). The halves are a
  fixed permutation (seed `split_seed`), the same for every model of a split.
- `forget-all`: OU's relearning recipe: 1 epoch on the whole forget set, lr 2e-5, effective batch 32,
  judged on the same items.
- `benign`: the same budget on retain data only (as many retain examples as forget examples).

The training is the suite's own loop (`methods.train.train` with the `finetune` objective, as the
target and retain models are fine-tuned); a config changes the budget per entry with `args:`
(lr, epochs, max_steps, batch_size, grad_accum, scheduler, seed). The defaults are OU's real-model
recipe; the tiny twins need a larger lr to move a randomly initialised model (config/default.yaml).
"""
from __future__ import annotations

from typing import Any

from methods.attacks.base import Attack, AttackContext, edit_modules
from methods.registry import ATTACKS

OU_RECIPE = {"lr": 2e-5, "epochs": 1, "max_steps": None, "batch_size": 32, "grad_accum": 1,
             "scheduler": "constant", "seed": 0}


def split_halves(questions: list[str], seed: int) -> tuple[set[str], set[str]]:
    """(trained, held out): a fixed random half of the distinct forget questions and the rest."""
    import numpy as np

    distinct = sorted(set(questions))
    if len(distinct) < 2:
        raise ValueError("relearn/forget-split needs at least 2 distinct forget questions")
    order = np.random.default_rng(seed).permutation(len(distinct))
    half = len(distinct) // 2
    return {distinct[i] for i in order[:half]}, {distinct[i] for i in order[half:]}


@ATTACKS.register("relearn")
class Relearn(Attack):
    variants = ("forget-split", "forget-all", "benign")
    needs = ()
    changes_weights = True
    applied_in_evaluation = True  # trained in the evaluation job (in the run's dtype): no attacked copy on disk
    defaults = {**OU_RECIPE, "split_seed": 0}

    def _corpora(self, context: AttackContext):
        corpora = context.benchmark.unlearning_corpora(context.data, context.split)
        forget = corpora["forget"]
        if self.variant == "forget-split" and forget.kind != "qa":
            raise ValueError(f"relearn/forget-split needs question/answer forget items; {context.benchmark.name} "
                             f"forgets raw text ({forget.source}): use relearn/forget-all")
        return forget, corpora.get("retain")

    def training_corpus(self, context: AttackContext):
        import dataclasses

        import numpy as np

        forget, retain = self._corpora(context)
        if self.variant == "forget-all":
            return forget
        if self.variant == "forget-split":
            trained, _ = split_halves([q for q, _ in forget.items], self.args["split_seed"])
            return dataclasses.replace(forget, items=tuple(p for p in forget.items if p[0] in trained),
                                       source=f"{forget.source} (forget-split training half)")
        if retain is None:
            raise ValueError(f"relearn/benign needs a retain corpus; {context.benchmark.name}/{context.split} has none")
        count = min(len(forget.items), len(retain.items))
        chosen = np.random.default_rng(self.args["split_seed"]).choice(len(retain.items), count, replace=False)
        return dataclasses.replace(retain, items=tuple(retain.items[i] for i in sorted(chosen)),
                                   source=f"{retain.source} ({count} retain examples)")

    def evaluation_questions(self, context: AttackContext) -> set[str] | None:
        if self.variant != "forget-split":
            return None
        forget, _ = self._corpora(context)
        return split_halves([q for q, _ in forget.items], self.args["split_seed"])[1]

    def apply(self, model, context: AttackContext) -> dict[str, Any]:
        from methods.train import TrainConfig, train

        if context.encode_corpus is None:
            raise ValueError("relearn needs AttackContext.encode_corpus (evaluation.encoding.encode_corpus) "
                             "to turn its training corpus into examples")
        corpus = self.training_corpus(context)
        examples = context.encode_corpus(context.tokenizer, context.prompt_format, corpus, context.max_length)
        args = self.args
        config = TrainConfig(objective="finetune", lr=float(args["lr"]), epochs=int(args["epochs"]),
                             max_steps=args["max_steps"], batch_size=int(args["batch_size"]),
                             grad_accum=int(args["grad_accum"]), scheduler=args["scheduler"],
                             seed=int(args["seed"]), compute_dtype=context.compute_dtype)
        config.validate()
        result = train(model, {"train": examples}, config, context.scratch, context.tokenizer.pad_token_id,
                       progress=context.progress)
        if result.status != "ok":
            raise RuntimeError(f"relearn/{self.variant} diverged at step {result.diverged_step}: {result.reason}")
        model.eval()
        edits = edit_modules(model)
        return {"corpus": corpus.source, "examples": len(examples), "optimizer_steps": result.optimizer_steps,
                "train_seconds": result.train_seconds, "effective_batch": config.batch_size * config.grad_accum,
                # a GRUN run relearns every weight with its gates in the forward, edits included
                **({"edits_trained_with_the_base": edits} if edits else {})}
