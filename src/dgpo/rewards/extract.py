"""Find the final answer in a completion: the last ``\\boxed{...}`` / ``\\fbox{...}`` with balanced braces.

Written by hand (a linear scan) rather than with a regex: nested braces are not regular, and a scan cannot
backtrack, so a 1 MB completion or 10k nested braces cost linear time.
"""

from __future__ import annotations

import re
from typing import Any

BOX_COMMANDS = ("\\boxed", "\\fbox")
MAX_BOXES_TRIED = 8
_BARE_TOKEN = re.compile(r"[^\s$]+?(?=[.,;]?(?:\s|\$|$))")
#: Optional fallback: "The answer is X" / "the final answer is: X" (last occurrence), up to a newline or
#: a sentence-ending period. Off unless asked for.
ANSWER_IS = re.compile(r"answer is[:\s]*\$?(?P<answer>[^\n$]{1,200}?)\$?\s*(?:\.\s|\.$|\n|$)", re.IGNORECASE)


def completion_text(completion: Any) -> str | None:
    """Plain text of a TRL completion: a string as is, a conversation (list of chat messages) → its last message's
    string content; None for anything else (``None``, bytes, numbers, a message without text), which every reward
    scores 0 instead of raising: a reward that raises ends a training run."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        content = completion[-1].get("content")
        return content if isinstance(content, str) else None
    return None


_BRACE_TOKENS = re.compile(r"\\.|[{}]", re.DOTALL)  # an escaped character (\{, \}, \\) or a brace


def _braced(text: str, start: int) -> str | None:
    """Content of the brace group opening at ``text[start] == '{'``; None when it never closes.

    The regex only skips plain characters in C; the nesting itself is counted here.
    """
    depth = 0
    for token in _BRACE_TOKENS.finditer(text, start):
        if token.group() == "{":
            depth += 1
        elif token.group() == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : token.start()]
    return None


def extract_boxed(text: str) -> str | None:
    """The content of the last complete ``\\boxed{...}`` or ``\\fbox{...}`` in ``text``, else None.

    Also accepts the brace-less form ``\\boxed 5`` (one token), which appears in MATH solutions.
    """
    best = max(text.rfind(c) for c in BOX_COMMANDS)
    # Only a few unbalanced boxes are skipped, so adversarial input stays linear in its length.
    for _ in range(MAX_BOXES_TRIED):
        if best < 0:
            break
        command = next(c for c in BOX_COMMANDS if text.startswith(c, best))
        after = best + len(command)
        start = after + len(text[after : after + 64]) - len(text[after : after + 64].lstrip(" "))
        if text.startswith("{", start):
            content = _braced(text, start)
            if content is not None:
                return content.strip()
        elif start > after:  # "\boxed 5": one brace-less token
            token = _BARE_TOKEN.match(text, start)
            if token:
                return token.group()
        # Unbalanced or malformed: try the previous box.
        best = max(text.rfind(c, 0, best) for c in BOX_COMMANDS)
    return None


def extract_answer(text: str, fallback: str | None = None) -> str | None:
    """The final answer of ``text``: the last box, else the fallback (``"answer_is"`` or None for none)."""
    boxed = extract_boxed(text)
    if boxed is not None or fallback is None:
        return boxed
    if fallback != "answer_is":
        raise ValueError(f"unknown answer fallback {fallback!r}; valid fallbacks: answer_is, None")
    matches = list(ANSWER_IS.finditer(text[-20_000:]))
    return matches[-1].group("answer").strip() if matches else None
