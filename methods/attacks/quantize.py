"""Weight-only post-training quantization, then evaluation (Zhang et al., ICLR 2025: 4-bit
quantization brings back most of what utility-constrained unlearning hid; INT8 is benign).

Every `torch.nn.Linear` weight except the output head (`lm_head`, kept in full precision as
transformers' bitsandbytes loading does) is replaced by its quantize→dequantize image, so the
attacked model is an ordinary checkpoint any evaluator loads. A GRUN run's gated edits are not base
weights: they stay in their dtype and act in the attacked model's evaluation (`ubench attack` saves
it as a GRUN model again, its quantized base beside the edits):

- `nf4`: bitsandbytes' 4-bit NormalFloat, absmax blocks of 64 over the flattened weight, no double
  quantization (`bitsandbytes.functional.quantize_4bit` / `dequantize_4bit`: the OU/UDS
  `BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4")` protocol; bitsandbytes ≥ 0.46 has
  a CPU path). OU computes in bf16; here the dequantized weights keep the model's dtype (recorded).
- `int8`, `int4`: round-to-nearest, asymmetric min/max per group of 128 input weights (the AWQ
  `pseudo_quantize_tensor` scales: s = (max − min)/(2^b − 1), z = −round(min/s)). The rounding,
  clamping and dequantization are torch's own `fake_quantize_per_channel_affine` (one "channel" per
  group). Zhang et al.'s released code loads its 4- and 8-bit models with bitsandbytes' defaults (FP4
  in blocks of 64, LLM.int8), so their published rows shown under these variants share the bit
  width, not the grid (leaderboard/data/published.yaml, source zhang-quant, says so).
"""
from __future__ import annotations

from typing import Any

from methods.attacks.base import EDIT_MODULES, Attack, AttackContext, edit_modules
from methods.registry import ATTACKS

SKIPPED_MODULES = ("lm_head",)
# model types whose projections are transformers' Conv1D (weight stored transposed), not torch.nn.Linear:
# quantizing them would leave every block untouched, so they are refused before any job starts
CONV1D_MODEL_TYPES = ("gpt2", "openai-gpt", "gpt_bigcode")
# config.json sizes that are the in_features of a decoder's linear layers (q/k/v/gate/up: hidden; down: intermediate)
IN_FEATURE_FIELDS = ("hidden_size", "intermediate_size")


def rtn_dequantized(weight, bits: int, group_size: int):
    """Round-to-nearest quantize→dequantize of a 2-D weight, asymmetric per group of `group_size`
    consecutive input weights (each output row is cut into in_features / group_size groups)."""
    import torch

    rows, columns = weight.shape
    if columns % group_size:
        raise ValueError(f"int{bits} RTN: in_features {columns} is not a multiple of the group size {group_size}")
    groups = weight.detach().float().reshape(-1, group_size)
    largest = 2 ** bits - 1
    low, high = groups.amin(dim=1), groups.amax(dim=1)
    scale = (high - low).clamp(min=1e-5) / largest
    zero = (-torch.round(low / scale)).clamp(0, largest).to(torch.int32)
    restored = torch.fake_quantize_per_channel_affine(groups, scale, zero, 0, 0, largest)
    return restored.reshape(rows, columns).to(weight.dtype)


def nf4_dequantized(weight, block_size: int):
    """bitsandbytes NF4 quantize→dequantize (absmax per block of `block_size` flattened weights)."""
    import bitsandbytes.functional as bnb_functional

    packed, state = bnb_functional.quantize_4bit(weight.detach().contiguous(), blocksize=block_size,
                                                 quant_type="nf4")
    return bnb_functional.dequantize_4bit(packed, state).reshape(weight.shape).to(weight.dtype)


def quantized_linears(model) -> list[tuple[str, Any]]:
    import torch

    return [(name, module) for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear) and name.rsplit(".", 1)[-1] not in SKIPPED_MODULES
            and name.split(".", 1)[0] not in EDIT_MODULES]


@ATTACKS.register("quantize")
class Quantize(Attack):
    variants = ("int4", "int8", "nf4")
    needs = ()
    changes_weights = True
    applied_in_evaluation = True
    defaults = {}
    BITS = {"int4": 4, "int8": 8, "nf4": 4}
    GROUP_SIZE = 128     # RTN (Zhang et al.); `args: {group_size: 64}` for widths that 128 does not divide
    NF4_BLOCK_SIZE = 64  # bitsandbytes' default 4-bit block (OU/UDS)

    def __init__(self, variant: str | None = None, **args):
        super().__init__(variant, **args)
        group = self.args.get("group_size")
        if group is not None and (isinstance(group, bool) or not isinstance(group, int) or group < 2):
            raise ValueError(f"quantize/{self.variant}: group_size must be an integer >= 2, got {group!r}")

    def variant_defaults(self, variant: str) -> dict[str, Any]:
        return {} if variant == "nf4" else {"group_size": self.GROUP_SIZE}

    def unsupported_reason(self, model_type: str, fields: dict[str, Any]) -> str | None:
        """Why this variant cannot quantize a model of this architecture (config.json `model_type`
        and sizes), or None. Pure, no torch: the config check calls it for every attacked model."""
        if model_type in CONV1D_MODEL_TYPES:
            return (f"model type {model_type!r} keeps its projections in transformers' Conv1D, not "
                    "torch.nn.Linear, so no layer would be quantized")
        if self.variant == "nf4":
            return None  # bitsandbytes blocks the flattened weight: any shape works
        group = self.args["group_size"]
        for key in IN_FEATURE_FIELDS:
            width = fields.get(key)
            if isinstance(width, int) and width % group:
                divisors = [g for g in (128, 64, 32) if width % g == 0]
                hint = f"set `args: {{group_size: {divisors[0]}}}`" if divisors else "use variant nf4"
                return (f"{key} {width} of model type {model_type!r} is not a multiple of the RTN group "
                        f"size {group}; {hint}")
        return None

    def library(self) -> tuple[str, str]:
        if self.variant == "nf4":
            try:
                import bitsandbytes
            except ImportError as error:
                raise RuntimeError("quantize/nf4 needs bitsandbytes (requirements.lock pins it): "
                                   f"{error}") from None
            return "bitsandbytes", bitsandbytes.__version__
        import torch

        return "torch.ao (fake_quantize_per_channel_affine)", torch.__version__

    def apply(self, model, context: AttackContext) -> dict[str, Any]:
        import torch

        library, version = self.library()
        layers = quantized_linears(model)
        if not layers:
            raise ValueError(f"quantize/{self.variant}: model type {type(model).__name__} has no torch.nn.Linear "
                             "layers to quantize (only Linear weights are supported)")
        with torch.no_grad():
            for _, module in layers:
                weight = module.weight
                if self.variant == "nf4":
                    restored = nf4_dequantized(weight, self.NF4_BLOCK_SIZE)
                else:
                    restored = rtn_dequantized(weight, self.BITS[self.variant], self.args["group_size"])
                weight.copy_(restored)
        grouping = ({"block_size": self.NF4_BLOCK_SIZE, "quant_type": "nf4", "double_quant": False}
                    if self.variant == "nf4" else {"group_size": self.args["group_size"], "scheme": "asymmetric min/max RTN"})
        kept = edit_modules(model)  # quantized_linears leaves them out
        return {"library": library, "library_version": version, "bits": self.BITS[self.variant], **grouping,
                "weights_dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
                "quantized_layers": len(layers), "skipped": list(SKIPPED_MODULES),
                **({"edits_kept_unquantized": kept} if kept else {})}
