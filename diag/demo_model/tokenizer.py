"""The demo model's CLIP tokenizer, built from a vocabulary this code writes.

transformers 5: ``CLIPTokenizer`` takes ``vocab=``/``merges=``; the old ``vocab_file=``
is silently ignored and yields a 3-token tokenizer, so the size is checked.
"""

from __future__ import annotations

import json
from typing import Iterable


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable character table."""
    printable = (
        list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars)))


def build_clip_tokenizer(words: Iterable[str] = (), model_max_length: int = 77):
    """A CLIP BPE tokenizer: every byte is a token, and each of ``words`` becomes one token.

    The merges are learned with the ``tokenizers`` BPE trainer on ``words`` (a hand-made
    merge list can let one word's merges split another word), and checked afterwards.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import CLIPTokenizer

    symbols = list(bytes_to_unicode().values())
    words = sorted({w.lower() for w in words})
    vocab = {s: i for i, s in enumerate(symbols + [s + "</w>" for s in symbols])}
    merges: list[tuple[str, str]] = []
    if words:
        bpe = Tokenizer(models.BPE(end_of_word_suffix="</w>"))
        bpe.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        trainer = trainers.BpeTrainer(
            vocab_size=len(vocab) + 40 * len(words),
            initial_alphabet=symbols,
            end_of_word_suffix="</w>",
            show_progress=False,
        )
        bpe.train_from_iterator(words, trainer)
        learned = json.loads(bpe.to_str())["model"]
        for token in sorted(learned["vocab"], key=learned["vocab"].get):
            vocab.setdefault(token, len(vocab))
        merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in learned["merges"]]
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab[special] = len(vocab)
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=model_max_length)
    if len(tokenizer) != len(vocab):
        raise RuntimeError(f"tokenizer has {len(tokenizer)} tokens, expected {len(vocab)} (transformers API change?)")
    split = [w for w in words if len(tokenizer(w, add_special_tokens=False).input_ids) != 1]
    if split:
        raise RuntimeError(f"words not learned as single tokens: {split[:5]}")
    return tokenizer
