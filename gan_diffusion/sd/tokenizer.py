"""CLIP's byte-level BPE tokenizer (Radford et al. 2021), the one Stable Diffusion's text
encoder was trained with; framework-free (NumPy and the `regex` package).

It reads a diffusers tokenizer folder, `<checkpoint>/tokenizer/`: vocab.json and merges.txt,
plus special_tokens_map.json and tokenizer_config.json when present, and reproduces
transformers' `CLIPTokenizer.from_pretrained(folder)` (transformers 5, where CLIPTokenizer is
the `tokenizers`-backed class; CLIPTokenizerFast is the same class; no ftfy, no slow path):

    1. special tokens are cut out of the raw text (bos, eos, unk, pad and the config's
       added_tokens_decoder; SD v2's pad token "!" included, so a "!" in a prompt becomes
       token 0 "!", not "!</w>");
    2. each remaining segment is normalised: NFC, every whitespace run -> " ", lower-cased
       character by character (Rust's rule: no final-sigma form);
    3. special tokens flagged `normalized` are cut out of the normalised text;
    4. CLIP's pattern splits the rest into words (letter runs, single digits, punctuation
       runs, 's 't 're 've 'm 'll 'd); whitespace is dropped;
    5. each word's UTF-8 bytes become GPT-2's printable byte characters, "</w>" marks the
       last one, and BPE merges the leftmost lowest-ranked pair until none applies.

Example:
    >>> tok = CLIPTokenizer.from_folder("stable-diffusion-v1-4/tokenizer")
    >>> out = tok(["a photo of an astronaut riding a horse on mars"])
    >>> out.ids.shape, out.ids.dtype        # [bos, tokens..., eos, pad...]
    ((1, 77), dtype('int64'))
    >>> tok.decode(tok.encode("A Photo"))
    'a photo'

Exact for every character Python's unicodedata knows (Unicode 14.0 on Python 3.11; the tests
check each assigned one, private use aside). `tokenizers`' own Unicode tables differ (NFC: 9.0, reproduced below; lower
case and Oniguruma's letter/digit classes: 16.0; the `regex` package: 17.0), so characters
first assigned after 14.0 may still lower-case or split differently.
"""
from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import regex

from gan_diffusion.errors import CheckpointError, ConfigError

BOS = "<|startoftext|>"
EOS = "<|endoftext|>"
END_OF_WORD = "</w>"
DEFAULT_MAX_LENGTH = 77            # CLIP's text positions; SD's tokenizer_config says the same

LAYOUT = ("expected a diffusers tokenizer folder, <checkpoint>/tokenizer/, holding vocab.json "
          "(token -> id) and merges.txt ('#version' line, then one 'a b' pair per line), "
          "optionally special_tokens_map.json and tokenizer_config.json")

# transformers' CLIPTokenizer pre-tokenizer pattern, verbatim.
_WORDS = regex.compile(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+"""
                       r"""|[\p{N}]|[^\s\p{L}\p{N}]+""")
_WHITESPACE = regex.compile(r"\s+")
# Its second stage, ByteLevel's GPT-2 split, leaves every word above whole except these two
# (letters between punctuation): "<|startoftext|>" -> "<|", "startoftext", "|>".
_SPLIT_AGAIN = {BOS: ("<|", "startoftext", "|>"), EOS: ("<|", "endoftext", "|>")}
_NAMED = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
_NO_LIMIT = int(1e30)              # transformers' model_max_length when none is known


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table (printable Latin-1 bytes map to themselves)."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), 256)]
    table = {b: chr(b) for b in keep}
    extra = (b for b in range(256) if b not in table)
    table.update({b: chr(256 + n) for n, b in enumerate(extra)})
    return table


_BYTE_CHAR = _bytes_to_unicode()
_CHAR_BYTE = {c: b for b, c in _BYTE_CHAR.items()}
_LATIN1_TO_BYTE_CHAR = str.maketrans({chr(b): c for b, c in _BYTE_CHAR.items()})


# `tokenizers`' NFC has Unicode 9.0's tables: to it these combining marks (from Unicode 10 to
# 14) are starters, which block reordering and composition, and it lacks Unicode 13's
# composition U+11935 U+11930 -> U+11938. Cutting the text at them reproduces that.
_NFC_STARTERS = regex.compile("([" + "".join(
    f"\\U{a:08x}-\\U{b:08x}" for a, b in [
        (0x07FD, 0x07FD), (0x0898, 0x089F), (0x08CA, 0x08D3), (0x09FE, 0x09FE), (0x0C3C, 0x0C3C),
        (0x0D3B, 0x0D3C), (0x0EBA, 0x0EBA), (0x1715, 0x1715), (0x1ABF, 0x1ACE), (0x1DF6, 0x1DFA),
        (0xA82C, 0xA82C), (0x10D24, 0x10D27), (0x10EAB, 0x10EAC), (0x10F46, 0x10F50),
        (0x10F82, 0x10F85), (0x11070, 0x11070), (0x1133B, 0x1133B), (0x1145E, 0x1145E),
        (0x11839, 0x1183A), (0x11930, 0x11930), (0x1193D, 0x1193E), (0x11943, 0x11943),
        (0x119E0, 0x119E0), (0x11A34, 0x11A34), (0x11A47, 0x11A47), (0x11A99, 0x11A99),
        (0x11D42, 0x11D42), (0x11D44, 0x11D45), (0x11D97, 0x11D97), (0x16FF0, 0x16FF1),
        (0x1E130, 0x1E136), (0x1E2AE, 0x1E2AE), (0x1E2EC, 0x1E2EF)]) + "])")


def _nfc(text: str) -> str:
    if text.isascii():
        return text
    if _NFC_STARTERS.search(text) is None:
        return unicodedata.normalize("NFC", text)
    return "".join(p if n % 2 else unicodedata.normalize("NFC", p)
                   for n, p in enumerate(_NFC_STARTERS.split(text)))


def normalize(text: str) -> str:
    """CLIPTokenizer's normaliser: NFC, whitespace runs -> " ", per-character lower case."""
    text = _WHITESPACE.sub(" ", _nfc(text))
    if "Σ" in text:                    # str.lower() would write a final sigma, Rust does not
        return "".join(c.lower() for c in text)
    return text.lower()


@dataclass(frozen=True)
class SpecialToken:
    """A token cut out of the text whole, before BPE (transformers' AddedToken)."""
    content: str
    normalized: bool = False       # matched in the normalised (lower-cased) text, not the raw one
    special: bool = True           # dropped by decode(..., skip_special_tokens=True)


@dataclass(frozen=True)
class TokenizerOutput:
    """A batch of prompts as CLIP text-encoder input."""
    ids: np.ndarray                # (B, max_length) int64: [bos, tokens..., eos, pad...]
    truncated: list[bool]          # per prompt: tokens were cut to fit max_length
    truncated_text: list[str]      # per prompt: the cut tokens, decoded ("" when none)


class CLIPTokenizer:
    """CLIP's BPE tokenizer; see the module docstring for the steps and an example.

    vocab: token -> id; merges: "a b" strings or (a, b) pairs, best (lowest rank) first;
    bos/eos/unk/pad_token: str or SpecialToken; added_tokens: further special tokens (the
    config's added_tokens_decoder). Tokens are registered added_tokens first, then bos, eos,
    unk, pad: a later token with the same content replaces the earlier one's flags.
    """

    def __init__(self, vocab: dict[str, int], merges: Sequence[str | tuple[str, str]], *,
                 bos_token: str | SpecialToken = BOS, eos_token: str | SpecialToken = EOS,
                 unk_token: str | SpecialToken = EOS, pad_token: str | SpecialToken = EOS,
                 added_tokens: Iterable[SpecialToken] = (), max_length: int = DEFAULT_MAX_LENGTH):
        if not isinstance(max_length, int) or max_length < 2:
            raise ConfigError(f"max_length must be an int >= 2 (bos and eos), got {max_length!r}")
        self._vocab = dict(vocab)
        self._ranks = self._rank_merges(merges)
        self.max_length = max_length

        specials: dict[str, SpecialToken] = {}
        named = {}
        for key, token in [*((None, t) for t in added_tokens), ("bos", bos_token), ("eos", eos_token),
                           ("unk", unk_token), ("pad", pad_token)]:
            token = SpecialToken(token) if isinstance(token, str) else token
            if not token.content:
                raise ConfigError(f"special token {key or 'added'} is empty")
            specials[token.content] = token            # last one wins, as in `tokenizers`
            if key:
                named[key] = token.content
        self._id_to_token = {i: t for t, i in self._vocab.items()}
        if len(self._id_to_token) != len(self._vocab):
            raise ConfigError("vocab maps two tokens to the same id")
        self._special_ids: dict[str, int] = {}
        for content in specials:                       # new ids after the vocabulary, in order
            if content not in self._vocab:
                new_id = max(self._id_to_token, default=-1) + 1
                self._vocab[content] = new_id
                self._id_to_token[new_id] = content
            self._special_ids[content] = self._vocab[content]
        self._skipped = {self._special_ids[c] for c, t in specials.items() if t.special}
        self._raw_specials = self._matcher(t.content for t in specials.values() if not t.normalized)
        self._normalized_specials = self._matcher(normalize(t.content) for t in specials.values()
                                                  if t.normalized)
        self._normalized_ids = {normalize(c): self._special_ids[c] for c, t in specials.items()
                                if t.normalized}
        self.bos_id, self.eos_id = self._vocab[named["bos"]], self._vocab[named["eos"]]
        self.unk_id, self.pad_id = self._vocab[named["unk"]], self._vocab[named["pad"]]
        self._cache: dict[str, tuple[int, ...]] = {}

    # ------------------------------------------------------------------ loading
    @classmethod
    def stand_in(cls) -> CLIPTokenizer:
        """The tokenizer of random weights: sd/vocab.py's byte-level stand-in vocabulary (no
        merges, SD v1's ids for the byte characters and the specials)."""
        from gan_diffusion.sd.vocab import stand_in_vocabulary

        return cls(stand_in_vocabulary(), [])

    @classmethod
    def from_folder(cls, path: str | Path) -> CLIPTokenizer:
        """Reads `path` = <checkpoint>/tokenizer (or the checkpoint folder holding tokenizer/).

        Raises CheckpointError naming the file for a missing or malformed one.
        """
        folder = Path(path)
        if not (folder / "vocab.json").exists() and (folder / "tokenizer").is_dir():
            folder = folder / "tokenizer"
        if not folder.is_dir():
            raise CheckpointError(f"tokenizer folder {folder} does not exist; {LAYOUT}")
        for name in ("vocab.json", "merges.txt"):
            if not (folder / name).is_file():
                raise CheckpointError(f"{folder / name} is missing; {LAYOUT}")
        vocab = _read_json(folder / "vocab.json")
        if not (isinstance(vocab, dict) and all(isinstance(i, int) and not isinstance(i, bool)
                                                for i in vocab.values())):
            raise CheckpointError(f"{folder / 'vocab.json'} must be a JSON object token -> int id; "
                                  f"{LAYOUT}")
        merges = _read_merges(folder / "merges.txt")
        config = _read_json(folder / "tokenizer_config.json", optional=True)
        special_map = _read_json(folder / "special_tokens_map.json", optional=True)
        kwargs = _special_tokens(config, special_map, folder)
        limit = config.get("model_max_length", DEFAULT_MAX_LENGTH)
        if limit == _NO_LIMIT:
            limit = DEFAULT_MAX_LENGTH
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 2:
            raise CheckpointError(f"{folder / 'tokenizer_config.json'}: model_max_length must be an "
                                  f"int >= 2, got {limit!r}; {LAYOUT}")
        try:
            return cls(vocab, merges, max_length=limit, **kwargs)
        except ConfigError as e:
            raise CheckpointError(f"{folder} (vocab.json, merges.txt): {e}; {LAYOUT}") from None

    def _rank_merges(self, merges: Sequence[str | tuple[str, str]]) -> dict[tuple[str, str], int]:
        pairs = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in merges]
        vocab = self._vocab
        for rank, pair in enumerate(pairs):
            if len(pair) != 2:
                raise ConfigError(f"merge {rank + 1} ({merges[rank]!r}) is not a pair 'a b'")
            if pair[0] not in vocab or pair[1] not in vocab or pair[0] + pair[1] not in vocab:
                missing = [t for t in (*pair, pair[0] + pair[1]) if t not in vocab]
                raise ConfigError(f"merge {rank + 1} ({' '.join(pair)!r}) uses tokens missing "
                                  f"from the vocab: {missing}")
        return {pair: rank for rank, pair in enumerate(pairs)}    # a repeated pair: its last rank

    @staticmethod
    def _matcher(contents: Iterable[str]) -> regex.Pattern | None:
        """Leftmost-longest match of any of `contents` (longest alternative first)."""
        contents = sorted(set(contents), key=len, reverse=True)
        return regex.compile("(" + "|".join(map(regex.escape, contents)) + ")") if contents else None

    # ------------------------------------------------------------------ encoding
    @property
    def vocab_size(self) -> int:
        """Number of ids, special tokens included (len(transformers_tokenizer))."""
        return len(self._id_to_token)

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, without bos/eos and without truncation."""
        ids: list[int] = []
        for raw, is_special in _split(self._raw_specials, text):
            if is_special:
                ids.append(self._special_ids[raw])
                continue
            for part, is_special in _split(self._normalized_specials, normalize(raw)):
                if is_special:
                    ids.append(self._normalized_ids[part])
                    continue
                for word in _WORDS.findall(part):
                    for piece in _SPLIT_AGAIN.get(word, (word,)):
                        ids.extend(self._bpe(piece))
        return ids

    def __call__(self, prompts: str | Sequence[str], max_length: int | None = None) -> TokenizerOutput:
        """ids (B, max_length) int64 = [bos, tokens..., eos, pad...], truncated to fit, as
        transformers' `tokenizer(prompts, padding="max_length", truncation=True)`.

        truncated_text is what diffusers' warning quotes ("The following part of your input was
        truncated because CLIP can only handle sequences up to 77 tokens: ..."), per prompt.
        (diffusers decodes it from the whole batch padded to its longest prompt, so for a
        shorter truncated prompt its text also carries "<|endoftext|>" pads; alone, the same.)
        An empty list gives ids of shape (0, max_length).
        """
        if isinstance(prompts, str):
            prompts = [prompts]
        if not all(isinstance(p, str) for p in prompts):
            raise TypeError(f"prompts must be a str or a list of str, got {prompts!r}")
        length = self.max_length if max_length is None else max_length
        if not isinstance(length, int) or length < 2:
            raise ValueError(f"max_length must be an int >= 2 (bos and eos), got {length!r}")
        ids = np.full((len(prompts), length), self.pad_id, dtype=np.int64)
        truncated, removed = [], []
        for row, prompt in enumerate(prompts):
            tokens = self.encode(prompt)
            kept = tokens[:length - 2]
            ids[row, 0] = self.bos_id
            ids[row, 1:1 + len(kept)] = kept
            ids[row, 1 + len(kept)] = self.eos_id
            truncated.append(len(tokens) > len(kept))
            removed.append(self.decode(tokens[len(kept):]))
        return TokenizerOutput(ids, truncated, removed)

    def _bpe(self, word: str) -> tuple[int, ...]:
        """Ids of one pre-tokenized word (cached)."""
        ids = self._cache.get(word)
        if ids is None:
            parts = list(word.encode("utf-8").decode("latin-1").translate(_LATIN1_TO_BYTE_CHAR))
            parts[-1] += END_OF_WORD
            ranks = self._ranks
            while len(parts) > 1:                      # merge the leftmost lowest-ranked pair
                best, best_rank = -1, len(ranks)
                for i in range(len(parts) - 1):
                    rank = ranks.get((parts[i], parts[i + 1]), best_rank)
                    if rank < best_rank:
                        best, best_rank = i, rank
                if best < 0:
                    break
                parts[best:best + 2] = [parts[best] + parts[best + 1]]
            ids = tuple(self._vocab.get(p, self.unk_id) for p in parts)
            if len(self._cache) >= 100_000:
                self._cache.clear()
            self._cache[word] = ids
        return ids

    # ------------------------------------------------------------------ decoding
    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        """Text of `ids` as transformers' decode: bytes back to UTF-8 (invalid bytes -> U+FFFD),
        "</w>" -> " ", stripped. Raises ValueError for an id outside the vocabulary."""
        data = bytearray()
        for i in ids:
            token = self._id_to_token.get(int(i))
            if token is None:
                raise ValueError(f"token id {int(i)} is outside the vocabulary (0..{self.vocab_size - 1})")
            if skip_special_tokens and int(i) in self._skipped:
                continue
            try:
                data += bytes(_CHAR_BYTE[c] for c in token)
            except KeyError:                            # not byte-level text: its own UTF-8
                data += token.encode("utf-8")
        return data.decode("utf-8", errors="replace").replace(END_OF_WORD, " ").strip()


def _split(pattern: regex.Pattern | None, text: str) -> Iterable[tuple[str, bool]]:
    """(segment, is_special_token) pieces of `text`; empty segments are skipped."""
    if pattern is None:
        yield text, False
        return
    for n, part in enumerate(pattern.split(text)):
        if part or n % 2:
            yield part, bool(n % 2)


def _read_json(path: Path, optional: bool = False):
    if optional and not path.exists():
        return {}
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path} is not valid JSON ({e}); {LAYOUT}") from None
    if optional and not isinstance(value, dict):
        raise CheckpointError(f"{path} must hold a JSON object; {LAYOUT}")
    return value


def _read_merges(path: Path) -> list[tuple[str, str]]:
    """merges.txt as `tokenizers` reads it: '#version' lines skipped, each other line 'a b'."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path} cannot be read ({e}); {LAYOUT}") from None
    merges = [line.split(" ") for line in lines if not line.startswith("#version")]
    if any(len(pair) != 2 for pair in merges):
        number, line = next((n, line) for n, line in enumerate(lines, 1)
                            if not line.startswith("#version") and len(line.split(" ")) != 2)
        raise CheckpointError(f"{path} line {number} ({line!r}) is not a pair 'a b'; {LAYOUT}")
    return [(a, b) for a, b in merges]


def _special_tokens(config: dict, special_map: dict, folder: Path) -> dict:
    """bos/eos/unk/pad_token and added_tokens for the constructor, resolved as transformers 5's
    from_pretrained does: the config's added_tokens_decoder, when present, defines the tokens
    (special_tokens_map.json is then ignored); otherwise special_tokens_map.json overrides the
    config. A plain string is a special token matched in the raw text."""
    def token(value, where: str, special: bool) -> SpecialToken:
        if isinstance(value, str):
            return SpecialToken(value)
        if not (isinstance(value, dict) and isinstance(value.get("content"), str)):
            raise CheckpointError(f"{folder / where}: a special token must be a string or an "
                                  f"object with 'content', got {value!r}; {LAYOUT}")
        flags = [f for f in ("lstrip", "rstrip", "single_word") if value.get(f)]
        if flags:
            raise CheckpointError(f"{folder / where}: special token {value['content']!r} sets "
                                  f"{flags}, which this tokenizer does not implement")
        special = bool(value.get("special", special))
        return SpecialToken(value["content"], bool(value.get("normalized", not special)), special)

    kwargs: dict = {}
    decoder = config.get("added_tokens_decoder")
    if decoder is not None:
        if not isinstance(decoder, dict):
            raise CheckpointError(f"{folder / 'tokenizer_config.json'}: added_tokens_decoder must "
                                  f"be an object id -> token; {LAYOUT}")
        if not all(str(k).isdigit() for k in decoder):
            raise CheckpointError(f"{folder / 'tokenizer_config.json'}: added_tokens_decoder keys "
                                  f"must be ids, got {list(decoder)}; {LAYOUT}")
        added = [token(v, "tokenizer_config.json", False)
                 for _, v in sorted(decoder.items(), key=lambda kv: int(kv[0]))]
        kwargs["added_tokens"] = added
        by_content = {t.content: t for t in added}
        for key in _NAMED:
            value = config.get(key)
            if value is not None:
                named = token(value, "tokenizer_config.json", False)
                kwargs[key] = _as_named(by_content.get(named.content, named))
    else:
        for key in _NAMED:
            if special_map.get(key) is not None:
                kwargs[key] = _as_named(token(special_map[key], "special_tokens_map.json", True))
            elif config.get(key) is not None:
                kwargs[key] = _as_named(token(config[key], "tokenizer_config.json", False))
    unsupported = [k for k in ("sep_token", "cls_token", "mask_token") if kwargs.pop(k, None)]
    if unsupported:
        raise CheckpointError(f"{folder}: {unsupported} are not CLIP tokens; {LAYOUT}")
    return kwargs


def _as_named(token: SpecialToken) -> SpecialToken:
    """A named token (bos, eos, ...) is always special; its `normalized` flag stays."""
    return SpecialToken(token.content, token.normalized, True)
