"""Prompt construction: the R1-distill instruction, applied through the tokenizer's chat template."""

from __future__ import annotations

from typing import Any

#: DeepSeek-R1-Distill's math instruction; ``{problem}`` is replaced by the problem text.
R1_TEMPLATE = "{problem}\nPlease reason step by step, and put your final answer within \\boxed{{}}."


def format_problem(problem: str, template: str = R1_TEMPLATE) -> str:
    """The user message for ``problem``; the template must contain ``{problem}``."""
    if "{problem}" not in template:
        raise ValueError("prompt template must contain '{problem}'")
    return template.format(problem=problem)


def build_prompt(tokenizer: Any, problem: str, template: str = R1_TEMPLATE, system: str | None = None) -> str:
    """The full prompt text: the chat template (with the generation prompt) when the tokenizer has one,
    else the plain user message."""
    content = format_problem(problem, template)
    if not getattr(tokenizer, "chat_template", None):
        return content
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": content}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
