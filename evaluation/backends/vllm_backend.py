"""Greedy generation from token-id prompts with vLLM's offline engine (`vllm.LLM`).

Written against vLLM's documented offline API: `LLM(model=folder, dtype=..., ...)`,
`SamplingParams(temperature=0, max_tokens=n, stop_token_ids=[...])` and
`LLM.generate([{"prompt_token_ids": ids}, ...], params)` whose `RequestOutput.outputs[0].token_ids`
are the new tokens. The engine reads the checkpoint folder itself; it shares the GPU with the
transformers model the harness already holds, so it asks for a share of the memory that is free.
"""
from __future__ import annotations

from pathlib import Path

GPU_SHARE_OF_FREE_MEMORY = 0.8  # of the memory free once the transformers model is loaded

_ENGINES: dict[tuple[str, str], "VLLMGenerator"] = {}


class VLLMGenerator:
    def __init__(self, folder: str | Path, dtype: str):
        import torch
        import vllm

        free, total = torch.cuda.mem_get_info()
        self.folder, self.dtype = str(folder), dtype
        self._vllm = vllm
        # generation_config="vllm": sampling defaults come from our SamplingParams only, never from the
        # checkpoint's generation_config.json; seed fixed so nothing random enters (greedy needs none)
        self.engine = vllm.LLM(model=self.folder, tokenizer=self.folder, dtype=dtype, seed=0,
                               gpu_memory_utilization=round(GPU_SHARE_OF_FREE_MEMORY * free / total, 3),
                               generation_config="vllm")

    @classmethod
    def for_model(cls, model, folder: Path) -> "VLLMGenerator":
        """One engine per (checkpoint, dtype) and process: loading one costs seconds to minutes."""
        dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
        key = (str(folder), dtype)
        if key not in _ENGINES:
            _ENGINES[key] = cls(folder, dtype)
        return _ENGINES[key]

    def generate(self, prompts: list[list[int]], max_new_tokens: int, stop_ids: list[int]) -> list[list[int]]:
        """New tokens per prompt, the stop token included when the sequence stopped on one (as the
        transformers path returns them)."""
        if max_new_tokens <= 0 or not prompts:
            return [[] for _ in prompts]
        params = self._vllm.SamplingParams(temperature=0.0, max_tokens=int(max_new_tokens),
                                           stop_token_ids=list(stop_ids), detokenize=False)
        outputs = self.engine.generate([{"prompt_token_ids": list(p)} for p in prompts], params, use_tqdm=False)
        stops = set(stop_ids)
        rows = []
        for output in outputs:
            completion = output.outputs[0]
            row = list(completion.token_ids)
            stopped_on = getattr(completion, "stop_reason", None)
            if (getattr(completion, "finish_reason", None) == "stop" and isinstance(stopped_on, int)
                    and stopped_on in stops and (not row or row[-1] != stopped_on)):
                row.append(stopped_on)  # a version that leaves the stop id out of token_ids
            cut = next((i + 1 for i, t in enumerate(row) if t in stops), len(row))
            rows.append(row[:cut])
        return rows
