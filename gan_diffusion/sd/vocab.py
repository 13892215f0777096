"""The stand-in CLIP vocabulary of random weights.

The real CLIP BPE vocabulary (49,408 tokens learnt on web text) ships with a checkpoint's
`tokenizer/` folder and cannot be downloaded here. Random weights ("random:SEED") have no
checkpoint folder, so they use this one: the same byte-level alphabet and the same ids for
what the model sees the most (ids 0-255 the 256 byte characters, 256-511 the same at the end
of a word "</w>", 49406 "<|startoftext|>", 49407 "<|endoftext|>", the padding token of SD
v1), with no merges, so every word is spelt out letter by letter. Ids 512-49405 are unused
placeholders that keep the vocabulary the model's size (49,408).

It is a real vocabulary in the diffusers/transformers file format: transformers'
CLIPTokenizer reads it too (tests/sd/test_sd_pipelines.py gives it to diffusers' pipelines).
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

VOCAB_SIZE = 49408
BOS, EOS = "<|startoftext|>", "<|endoftext|>"


@functools.lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2 / CLIP's reversible map from the 256 bytes to printable unicode characters."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def stand_in_vocabulary() -> dict[str, int]:
    """token -> id of the stand-in vocabulary (see the module docstring)."""
    chars = list(bytes_to_unicode().values())
    tokens = chars + [c + "</w>" for c in chars]
    tokens += [f"<|unused{i}|>" for i in range(VOCAB_SIZE - 2 - len(tokens))] + [BOS, EOS]
    return {t: i for i, t in enumerate(tokens)}


def write_stand_in_vocabulary(folder: str | os.PathLike) -> Path:
    """Write vocab.json, merges.txt (a version line, no merges) and the special-token files
    into `folder`; returns it."""
    from gan_diffusion.utils.io import atomic_write_json, atomic_write_text

    folder = Path(folder)
    atomic_write_json(folder / "vocab.json", stand_in_vocabulary())
    atomic_write_text(folder / "merges.txt", "#version: 0.2\n")
    specials = {"bos_token": BOS, "eos_token": EOS, "unk_token": EOS, "pad_token": EOS}
    atomic_write_json(folder / "special_tokens_map.json", specials)
    atomic_write_json(folder / "tokenizer_config.json",
                      {**specials, "model_max_length": 77, "do_lower_case": True,
                       "tokenizer_class": "CLIPTokenizer"})
    return folder
