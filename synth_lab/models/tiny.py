"""The embedded default model, ``synth-lab/tiny-chat``: built locally, deterministically, offline.

Nothing is downloaded. The tokenizer is a byte-level BPE trained in-process on a small built-in
corpus, with a ChatML chat template (``<|im_start|>`` / ``<|im_end|>``); the model is a 2-layer
Qwen3 causal LM created from a config with a fixed seed. The result is random-weight, so it
only learns what it is finetuned on, but every code path (tokenising, masking, training,
checkpointing, generation) runs on it in seconds on a CPU.

The build runs once per cache folder. It writes into a temporary sibling folder and renames it
into place, so a reader never sees a half-built model and concurrent first uses are safe: the
loser of the rename race drops its copy and uses the winner's, which is byte-identical.

Torch and transformers are imported inside the functions that need them; building the
tokenizer alone needs ``tokenizers`` and ``transformers`` but not torch.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from synth_lab.errors import MissingDependencyError

TINY_CHAT_ID = "synth-lab/tiny-chat"
"""The name under which the embedded model is known everywhere (configs, magics, loaders)."""

# Bump when anything below changes what is built, so old caches are never reused by mistake.
_BUILD_NAME = "tiny-chat-v1"
_SEED = 1234
_VOCAB_SIZE = 1024
_SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")

TINY_CHAT_TEMPLATE = (
    "{%- if tools %}"
    "{{- '<|im_start|>system\\n' }}"
    "{%- if messages and messages[0].role == 'system' %}{{- messages[0].content + '\\n\\n' }}"
    "{%- endif %}"
    "{{- '# Tools\\n\\nYou may call these functions:\\n' }}"
    "{%- for tool in tools %}{{- tool | tojson }}{{- '\\n' }}{%- endfor %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- elif messages and messages[0].role == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message.role == 'system' and loop.first %}"
    "{%- elif message.role == 'assistant' %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- if message.content %}{{- message.content }}{%- endif %}"
    "{%- for call in message.tool_calls or [] %}"
    "{%- if call.function %}{%- set call = call.function %}{%- endif %}"
    "{%- if message.content or not loop.first %}{{- '\\n' }}{%- endif %}"
    '{{- \'<tool_call>\\n{"name": "\' + call.name + \'", "arguments": \' }}'
    "{%- if call.arguments is string %}{{- call.arguments }}"
    "{%- else %}{{- call.arguments | tojson }}{%- endif %}"
    "{{- '}\\n</tool_call>' }}"
    "{%- endfor %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message.role + '\\n' + (message.content or '') + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
"""ChatML, with tools listed in the system turn and tool calls as ``<tool_call>`` JSON blocks."""

# A small, varied corpus: enough merges that chat text, JSON and code tokenise into a few
# characters per token, so sequences stay short in tests and demos.
_CORPUS = """
<|im_start|>system
You are a helpful assistant. Answer briefly and clearly.<|im_end|>
<|im_start|>user
What is the capital of France?<|im_end|>
<|im_start|>assistant
The capital of France is Paris.<|im_end|>
<|im_start|>user
Can you explain what a neural network is, in one or two sentences?<|im_end|>
<|im_start|>assistant
A neural network is a function made of layers of simple units. Training adjusts its weights so
that its outputs match the examples it is shown.<|im_end|>
<|im_start|>tool
{"temperature": 21, "unit": "celsius", "city": "Berlin", "condition": "sunny"}<|im_end|>
<tool_call>
{"name": "get_weather", "arguments": {"city": "Berlin"}}
</tool_call>
Thank you! Please summarize the following text. Sure, here is a short summary of the main points.
I'm sorry, I don't know the answer to that question. Could you give me more details?
The quick brown fox jumps over the lazy dog. A journey of a thousand miles begins with one step.
Translate "good morning" into Spanish: "buenos días". In German it is "guten Morgen".
def add(a, b):
    return a + b

for i in range(10):
    print(i * i)
SELECT name, count(*) FROM users WHERE active = 1 GROUP BY name ORDER BY name;
1 + 1 = 2, 2 * 3 = 6, 10 / 4 = 2.5, 3.14159, 2024-05-17, 08:30, $19.99, 100%, #1.
Learning rate, batch size, epochs, loss, tokens, sequence length, validation, checkpoint.
Water boils at 100 degrees Celsius at sea level. The Earth orbits the Sun once a year.
Step 1: read the question. Step 2: think about it. Step 3: write the answer.
- apples
- bananas
- oranges
Hello! Hi there. Good morning, good evening, good night. How are you today? I am fine, thanks.
Here is what you asked for. Let me know if you have any other questions, and I will help you.
Yes, that is right. No, that is not correct. Maybe; it depends on the context and on the details.
The answer is 42. The result is shown below. Please check the numbers before you use them.
People often ask about time, money, health, travel, food, weather, work, music, books and sports.
You can write a short story, a poem, an email, a list, a plan, a recipe, a summary or a report.
First, open the file. Then, read each line. Finally, close the file and print the total count.
This example shows a simple function that returns the sum of two numbers and a list of values.
Why? Because the data says so. How? By counting. When? Tomorrow at noon. Where? In the lab.
"""


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The synth-lab cache folder: ``cache_dir``, else ``$SYNTH_LAB_CACHE``, else the default.

    The default is ``~/.cache/synth-lab``; built artifacts live in versioned subfolders.
    """
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("SYNTH_LAB_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "synth-lab"


def build_tiny_tokenizer() -> Any:
    """Train the tiny-chat tokenizer in memory (deterministic; no torch needed).

    Returns:
        A ``transformers`` fast tokenizer with the ChatML template, ``eos_token`` =
        ``<|im_end|>`` and ``pad_token`` = ``<|endoftext|>``.
    """
    try:
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
        from transformers import PreTrainedTokenizerFast
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise MissingDependencyError(
            "transformers", "The tiny-chat tokenizer", extra="notebook"
        ) from exc

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=_VOCAB_SIZE,
        min_frequency=2,
        special_tokens=list(_SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # The special tokens are in the corpus as text; strip them so merges learn real words only.
    text = _CORPUS
    for token in _SPECIAL_TOKENS:
        text = text.replace(token, "\n")
    backend.train_from_iterator(text.splitlines(keepends=True), trainer=trainer)

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        bos_token=None,
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
        model_max_length=2048,
        clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = TINY_CHAT_TEMPLATE
    return tokenizer


def _build_model(tokenizer: Any, out: Path) -> None:
    """Create the seeded random-weight model for ``tokenizer`` and save it into ``out``."""
    try:
        import torch
        from transformers import AutoModelForCausalLM, GenerationConfig, Qwen3Config
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise MissingDependencyError("torch", "The tiny-chat model", extra="train") from exc

    eos_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    pad_id = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
        torch_dtype="float32",
    )
    # Seed a private generator state so the build neither depends on nor disturbs the caller's RNG.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_SEED)
        model = AutoModelForCausalLM.from_config(config)
    model.generation_config = GenerationConfig(
        eos_token_id=eos_id, pad_token_id=pad_id, max_new_tokens=64, do_sample=False
    )
    model.save_pretrained(out, safe_serialization=True)


def tiny_chat_path(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Folder of the ``synth-lab/tiny-chat`` model, built on first use.

    Args:
        cache_dir: The synth-lab cache folder (default: :func:`cache_root`). The model goes
            into its ``tiny-chat-v1`` subfolder.

    Returns:
        A folder that ``AutoTokenizer.from_pretrained`` and
        ``AutoModelForCausalLM.from_pretrained`` load offline.
    """
    final = cache_root(cache_dir) / _BUILD_NAME
    if (final / "config.json").is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{_BUILD_NAME}.", dir=final.parent))
    try:
        tokenizer = build_tiny_tokenizer()
        tokenizer.save_pretrained(tmp)
        _build_model(tokenizer, tmp)
        try:
            os.rename(tmp, final)
        except OSError:
            # Another process finished first (the target exists and is not empty): use its copy.
            if not (final / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final
