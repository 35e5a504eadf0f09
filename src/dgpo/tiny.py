"""A tiny local causal LM for tests and CPU demos: a Qwen2-architecture model and a byte-level BPE tokenizer,
built in seconds with no download.

The tokenizer splits digits one per token (arithmetic needs it) and carries a ChatML chat template, so the
same prompt code serves it and real chat models. It is saved with ``tokenizer_class = PreTrainedTokenizerFast``;
load it with :func:`load_tokenizer` (``AutoTokenizer`` on a Qwen2 config may swap in Qwen2's own pre-tokenizer).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from dgpo.data.prompts import R1_TEMPLATE

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
MARKER = "dgpo_tiny.json"


def default_corpus(seed: int = 0, lines: int = 2000) -> list[str]:
    """Arithmetic statements, boxed answers and the R1 instruction: enough to learn useful merges."""
    rng = random.Random(seed)
    corpus = [R1_TEMPLATE.format(problem="What is 3 + 4?"), "The answer is \\boxed{7}.", "user", "assistant"]
    for _ in range(lines):
        a, b = rng.randint(0, 999), rng.randint(0, 999)
        op = rng.choice(["+", "-", "*"])
        value = {"+": a + b, "-": a - b, "*": a * b}[op]
        corpus.append(f"Compute {a} {op} {b}. We get {a} {op} {b} = {value}, so the answer is \\boxed{{{value}}}.")
    return corpus


def train_tokenizer(corpus: Iterable[str], vocab_size: int = 512) -> Any:
    """A byte-level BPE ``PreTrainedTokenizerFast`` with digits split one per token and a ChatML template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(corpus, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token="<|im_end|>", pad_token="<|endoftext|>", padding_side="left"
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_tiny_model(
    out_dir: str | Path,
    corpus: Iterable[str] | None = None,
    seed: int = 0,
    vocab_size: int = 512,
    hidden_size: int = 128,
    layers: int = 2,
    max_positions: int = 4096,
) -> Path:
    """Build, randomly initialise and save a tiny Qwen2 model and its tokenizer into ``out_dir``."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(default_corpus(seed) if corpus is None else corpus, vocab_size)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=4 * hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max_positions,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / MARKER).write_text(json.dumps({"seed": seed, "vocab_size": len(tokenizer), "hidden_size": hidden_size}))
    return out


def load_tokenizer(path: str | Path) -> Any:
    """The tokenizer of a model directory or hub id: the exact fast tokenizer for dgpo's tiny models, else
    ``AutoTokenizer``. Left padding, and a pad token (EOS) when the tokenizer has none."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    local = Path(path)
    if (local / MARKER).is_file():
        tokenizer = PreTrainedTokenizerFast.from_pretrained(local)
    else:
        tokenizer = AutoTokenizer.from_pretrained(str(path))
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
