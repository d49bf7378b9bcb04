"""Prompt formats: how a model family wants a question wrapped before the answer.

TOFU-legacy encodes `q_start + question + q_end + a_tag + answer` (metrics.md §1.1); chat models use
their tokenizer's chat template instead of fixed tags: `chat-template` renders the user turn through the
model's own template (whatever system prompt the template itself adds), `llama3-chat` is the same plus
the Llama-3 system prompt and date that OU pins for its Llama-3 presets.
"""
from __future__ import annotations

from dataclasses import dataclass

LLAMA3_SYSTEM_PROMPT = "You are a helpful assistant."
LLAMA3_DATE_STRING = "10 Apr 2025"  # pinned by OU so the template renders identically every day


@dataclass(frozen=True)
class PromptFormat:
    """Fixed tags, or `chat_template=True` to render through the tokenizer's chat template."""

    name: str
    question_start: str = ""
    question_end: str = ""
    answer_tag: str = ""
    chat_template: bool = False
    system_prompt: str | None = None
    date_string: str | None = None

    def prompt(self, question: str, tokenizer=None, *, with_answer_tag: bool = True) -> str:
        """The text that precedes the answer. `with_answer_tag=False` reproduces the legacy Phi
        generation quirk (the prompt stops after the question end tag, metrics.md §1.3)."""
        if self.chat_template:
            if tokenizer is None or getattr(tokenizer, "chat_template", None) is None:
                raise ValueError(
                    f"prompt format {self.name!r} needs a tokenizer with a chat template; "
                    "load the model's own tokenizer (it ships the template in tokenizer_config.json)"
                )
            messages = ([{"role": "system", "content": self.system_prompt}] if self.system_prompt else [])
            messages.append({"role": "user", "content": question})
            kwargs = {"date_string": self.date_string} if self.date_string else {}
            return tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True, **kwargs
            )
        tag = self.answer_tag if with_answer_tag else ""
        return self.question_start + question + self.question_end + tag

    def as_record(self) -> dict:
        """What the evaluator block records as the prompt template."""
        return {k: v for k, v in self.__dict__.items() if v not in (None, "", False)}


PHI = PromptFormat("phi", "Question: ", "\n", "Answer: ")
LLAMA2_CHAT = PromptFormat("llama2-chat", "[INST] ", " [/INST]", "")
LLAMA3_CHAT = PromptFormat(
    "llama3-chat", chat_template=True, system_prompt=LLAMA3_SYSTEM_PROMPT, date_string=LLAMA3_DATE_STRING
)
CHAT_TEMPLATE = PromptFormat("chat-template", chat_template=True)  # any chat model: its own template only
PLAIN_QA = PHI  # base models (Llama-2-7b-hf, Llama-3.1-8B, Mistral-7B) use the Question/Answer tags in OU

FORMATS = {fmt.name: fmt for fmt in (PHI, LLAMA2_CHAT, LLAMA3_CHAT, CHAT_TEMPLATE)}


def get_format(name: str) -> PromptFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown prompt format {name!r}; available: {sorted(FORMATS)}") from None
