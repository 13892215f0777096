"""gan_diffusion.sd.tokenizer against transformers' CLIPTokenizer (transformers 5: the
`tokenizers`-backed class; CLIPTokenizerFast is the same class), exactly: ids, padded batches,
truncation and its removed text (diffusers' warning), decoding.

Folders: a small byte-level CLIP vocabulary written here (the 256 byte characters, their
"</w>" forms, merges that build real words, the two specials) in four layouts (no config;
SD v1's config; SD v2's with pad "!" in added_tokens_decoder; SD v2's older
special_tokens_map.json with pad "!"), and the real SD tokenizer under
$GAN_DIFFUSION_SD_WEIGHTS/tokenizer when it is set (skipped otherwise).
"""
import json
import os
import random
import unicodedata
from pathlib import Path

import numpy as np
import pytest
import transformers

from gan_diffusion.errors import CheckpointError, ConfigError
from gan_diffusion.sd.tokenizer import CLIPTokenizer

MAX = 77
BOS, EOS = "<|startoftext|>", "<|endoftext|>"

WORDS = ["the", "a", "photo", "of", "an", "astronaut", "riding", "horse", "on", "mars", "painting",
         "by", "van", "gogh", "cat", "dog", "high", "quality", "detailed", "portrait", "city",
         "night", "café", "naïve", "日本", "東京", "über", "hello", "world", "123"]
EXTRA_MERGES = [("t", "h"), ("i", "n"), ("e", "r"), ("a", "n"), ("o", "n"), ("in", "g</w>"),
                ("e", "s</w>"), ("'", "s</w>"), ("'", "t</w>"), ("!", "!</w>"), ("!", "!"),
                (".", ".</w>"), ("l", "l"), ("e", "e")]

CURATED = [
    "", " ", "   ", "\n", "\t\n \r\n", "a", "A", "a photo of an astronaut riding a horse on mars",
    "A Photo Of An ASTRONAUT Riding A Horse On Mars", "  leading and trailing spaces  ",
    "multiple   spaces\tand\ttabs\nand\n\nnewlines\r\nwindows", "hello,world!how?are;you:fine.",
    "it's", "IT'S", "they're we've I'm you'll he'd can't won't", "'s't're've'm'll'd", "rock'n'roll",
    "''quoted'' \"double\" `back`", "dog's cat's horse's", "o'clock", "l'été", "don’t (curly)",
    "1", "123", "3.14159", "1,000,000", "2nd 3rd 4th", "½ ² ³ ① Ⅻ ٣ ۴ ߅ ३", "0xFF 1e10 -5",
    "!!!", "!", "!?!?", "hi!", "wow!!", "...", "…", "--", "—", "(a)", "[b]", "{c}", "<d>", "a|b",
    "#hashtag @user $5 %20 ^_^ &amp; *bold* ~tilde~", "C:\\path\\to\\file", "http://x.y/z?q=1",
    "café", "cafe\u0301", "CAFÉ", "CAFE\u0301", "naïve", "Ñandú", "Straße", "STRASSE", "İstanbul",
    "ΟΔΟΣ ΣΑΣ Σ", "ὈΔΥΣΣΕΎΣ", "Ǆǅǆ", "ﬁﬂ", "Ⅰ", "日本語のテキスト", "東京タワー", "中文测试", "한국어",
    "ไทย", "हिन्दी", "العربية", "עברית", "Ελληνικά", "русский ТЕКСТ", "🤖", "👍🏽", "👨‍👩‍👧‍👦",
    "🇫🇷 flag", "emoji🙂inside", "❤️", "a\u200bb", "a\ufeffb", "a\u00a0b", "a\u3000b", "a\u2028b",
    "a\u0085b", "a\x0bb", "a\x0cb", "a\x1cb\x1dc\x1ed\x1ff", "a\x00b", "\x7f", "a\u0301", "\u0301a",
    "ﾊﾝｶｸ", "ＦＵＬＬＷＩＤＴＨ", "𝐛𝐨𝐥𝐝", "\U0001F600" * 5,
    BOS, EOS, BOS + "a" + EOS, "<|ENDOFTEXT|>", "<|StartOfText|>", "<" + EOS + ">", "x" + EOS + "y",
    "<|endoftext", "endoftext|>", "<|endoftext|><|endoftext|>", "!" + EOS + "!",
    "the " * 100, "astronaut " * 80, "a, " * 60, "日本" * 50, "🤖" * 40,
    " ".join(WORDS) * 3, "hello world " * 37 + "truncated tail words here",
]


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's table, written out again here (not imported from the module under test)."""
    keep = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    table, n = {b: chr(b) for b in keep}, 0
    for b in range(256):
        if b not in table:
            table[b], n = chr(256 + n), n + 1
    return table


BYTE = bytes_to_unicode()


def word_merges(word: str) -> list[tuple[str, str]]:
    """Merges that build `word` left to right, its last byte carrying "</w>"."""
    parts = [BYTE[b] for b in word.encode("utf-8")]
    parts[-1] += "</w>"
    merges, left = [], parts[0]
    for right in parts[1:]:
        merges.append((left, right))
        left += right
    return merges


def write_folder(folder: Path, layout: str) -> Path:
    chars = list(BYTE.values())
    vocab = chars + [c + "</w>" for c in chars]
    merges = []
    for w in WORDS:                      # the words first, then general pairs (ranks in this order)
        merges += [m for m in word_merges(w) if m not in merges]
    merges += [m for m in EXTRA_MERGES if m not in merges]
    vocab += [a + b for a, b in merges] + [BOS, EOS]
    folder.mkdir(parents=True)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(dict.fromkeys(vocab))}))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))

    def added(content, normalized=True, **flags):
        return {"content": content, "lstrip": False, "normalized": normalized, "rstrip": False,
                "single_word": False, **flags}
    legacy_map = {"bos_token": added(BOS), "eos_token": added(EOS), "unk_token": added(EOS),
                  "pad_token": EOS}
    legacy_config = {"errors": "replace", "unk_token": {"__type": "AddedToken", **added(EOS)},
                     "bos_token": {"__type": "AddedToken", **added(BOS)},
                     "eos_token": {"__type": "AddedToken", **added(EOS)}, "pad_token": EOS,
                     "add_prefix_space": False, "do_lower_case": True, "model_max_length": MAX,
                     "tokenizer_class": "CLIPTokenizer"}
    if layout == "sd-v1":                # runwayml/stable-diffusion-v1-5's files, shortened vocab
        config, special_map = legacy_config, legacy_map
    elif layout == "sd-v2-legacy":       # SD 2.x as released: special_tokens_map says pad "!"
        config, special_map = legacy_config, {**legacy_map, "pad_token": "!"}
    elif layout == "sd-v2":              # SD 2.x / SDXL tokenizer_2 as saved by newer transformers
        ids = json.loads((folder / "vocab.json").read_text())
        config = {"added_tokens_decoder": {
                      str(ids["!"]): added("!", False, special=True),
                      str(ids[BOS]): added(BOS, True, special=True),
                      str(ids[EOS]): added(EOS, False, special=True)},
                  "bos_token": BOS, "eos_token": EOS, "unk_token": EOS, "pad_token": "!",
                  "clean_up_tokenization_spaces": True, "do_lower_case": True, "errors": "replace",
                  "model_max_length": MAX, "tokenizer_class": "CLIPTokenizer"}
        special_map = {**legacy_map, "pad_token": "!"}
    else:                                # vocab.json and merges.txt only
        config = special_map = None
    if config is not None:
        (folder / "tokenizer_config.json").write_text(json.dumps(config))
        (folder / "special_tokens_map.json").write_text(json.dumps(special_map))
    return folder


def random_strings(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    fragments = (WORDS + [w.upper() for w in WORDS] + [w.title() for w in WORDS]
                 + list("abcdefghijklmnopqrstuvwxyzABCXYZ0123456789")
                 + list("!?.,;:'\"-_()[]{}<>|/\\@#$%^&*~`+=") + ["'s", "'T", "'re", "'VE", "'m", "'ll", "'d"]
                 + [" ", " ", " ", "  ", "\n", "\t", "\r\n", "\u00a0", "\u3000", "\u2028", "\x0b", "\x1c"]
                 + ["é", "É", "e\u0301", "ß", "İ", "Σ", "ς", "ﬁ", "日本", "中", "한", "🤖", "👍🏽", "\u200d",
                    "\u200b", "\ufeff", "\x00", "½", "²"]
                 + [BOS, EOS, "<|EndOfText|>", "<|STARTOFTEXT|>", "!", "<|", "|>"])
    return ["".join(rng.choice(fragments) for _ in range(rng.randint(0, 40))) for _ in range(n)]


def assert_agrees(ours: CLIPTokenizer, hf, strings: list[str]) -> None:
    """Every string: encode, padded/truncated batch, truncation flag and removed text, decode."""
    expected = hf(strings, add_special_tokens=False).input_ids
    diffs = [(s, e, ours.encode(s)) for s, e in zip(strings, expected) if ours.encode(s) != e]
    assert not diffs, f"{len(diffs)} of {len(strings)} strings differ, e.g. {diffs[:3]}"

    out = ours(strings)
    ref = hf(strings, padding="max_length", max_length=MAX, truncation=True, return_tensors="np")
    assert out.ids.dtype == np.int64 and out.ids.shape == (len(strings), MAX)
    np.testing.assert_array_equal(out.ids, ref.input_ids)

    # diffusers' check and warning text, one prompt at a time (StableDiffusionPipeline.encode_prompt)
    untruncated = hf(strings).input_ids
    truncated = [len(u) > MAX for u in untruncated]
    removed = [hf.batch_decode([u[MAX - 1:-1]])[0] if t else "" for u, t in zip(untruncated, truncated)]
    assert out.truncated == truncated
    assert out.truncated_text == removed

    rows = ref.input_ids.tolist()
    assert [ours.decode(r) for r in rows] == hf.batch_decode(rows)
    assert ([ours.decode(r, skip_special_tokens=True) for r in rows]
            == hf.batch_decode(rows, skip_special_tokens=True))
    assert ours.vocab_size == len(hf)
    assert (ours.bos_id, ours.eos_id, ours.pad_id) == (hf.bos_token_id, hf.eos_token_id, hf.pad_token_id)


LAYOUTS = ["bare", "sd-v1", "sd-v2", "sd-v2-legacy"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("clip_tokenizers")
    return {layout: write_folder(root / layout, layout) for layout in LAYOUTS}


def load_pair(folder: Path):
    return CLIPTokenizer.from_folder(folder), transformers.CLIPTokenizer.from_pretrained(folder)


def test_fast_class_is_the_same_class():
    """What the comparison stands for: transformers 5 has one CLIP tokenizer."""
    assert transformers.CLIPTokenizerFast is transformers.CLIPTokenizer


@pytest.mark.parametrize("layout", LAYOUTS)
def test_small_vocab_agrees_with_transformers(folders, layout):
    ours, hf = load_pair(folders[layout])
    strings = CURATED + random_strings(2000, seed=LAYOUTS.index(layout))
    assert_agrees(ours, hf, strings)
    # not vacuous: merges applied, specials matched, prompts truncated
    ids = json.loads((folders[layout] / "vocab.json").read_text())
    assert ours.encode("the astronaut") == [ids["the</w>"], ids["astronaut</w>"]]
    assert ours.encode(EOS) == [ours.eos_id]
    assert sum(ours(strings).truncated) >= 7        # the seven long CURATED prompts


def test_layouts_differ_where_transformers_differs(folders):
    """The cases the layouts exist for (values from the comparison above): SD v2's "!" pad is a
    special token, so "hi!" ends in token "!" not "!</w>"; SD v1 matches bos case-insensitively
    (normalized=True) but not eos (its pad entry is a plain string, which wins)."""
    v1, v2, bare = (CLIPTokenizer.from_folder(folders[k]) for k in ("sd-v1", "sd-v2", "bare"))
    ids = json.loads((folders["sd-v1"] / "vocab.json").read_text())
    assert v1.encode("hi!")[-1] == ids["!</w>"] and v2.encode("hi!")[-1] == ids["!"] == 0
    assert v1.pad_id == v1.eos_id and v2.pad_id == 0
    assert v1.encode("<|StartOfText|>") == [v1.bos_id] != bare.encode("<|StartOfText|>")
    assert v1.encode("<|EndOfText|>") != [v1.eos_id]


def test_every_assigned_code_point_agrees(folders):
    """All characters Python's unicodedata knows (Unicode 14 on 3.11), in context: letters,
    digits, marks, spaces and symbols each next to letters, digits, spaces and punctuation."""
    ours, hf = load_pair(folders["sd-v1"])
    chars = [chr(c) for c in range(0x110000)
             if unicodedata.category(chr(c)) not in ("Cn", "Cs", "Co")]
    seps = ["", " ", "a", "1", "!", "A"]
    strings = ["".join(c + seps[(i + j) % len(seps)] for j, c in enumerate(chars[i:i + 24]))
               for i in range(0, len(chars), 24)]
    # every combining mark before and after marks of other classes (canonical reordering)
    marks = [c for c in chars if unicodedata.combining(c)]
    others = ["\u0334", "\u093c", "\u05b0", "\u0e38", "\u0f71", "\u0300", "\u0345", "\u0301\u0316"]
    strings += [f"a{m}{r}{m}e{r}{m}" for m in marks for r in others]
    expected = hf(strings, add_special_tokens=False).input_ids
    diffs = [s for s, e in zip(strings, expected) if ours.encode(s) != e]
    assert not diffs, f"{len(diffs)} of {len(strings)} strings differ, first {diffs[0]!r}"


def test_decode_arbitrary_ids_agrees(folders):
    """Any id sequence, partial UTF-8 byte tokens included (-> U+FFFD as transformers)."""
    ours, hf = load_pair(folders["sd-v2"])
    rng = random.Random(0)
    sequences = [[rng.randrange(ours.vocab_size) for _ in range(rng.randint(0, 12))] for _ in range(3000)]
    sequences += [list(range(b, b + 3)) for b in range(0, 512, 3)]
    assert [ours.decode(s) for s in sequences] == hf.batch_decode(sequences)
    assert ([ours.decode(s, skip_special_tokens=True) for s in sequences]
            == hf.batch_decode(sequences, skip_special_tokens=True))
    assert any("\ufffd" in ours.decode(s) for s in sequences)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        ours.decode([ours.vocab_size])


@pytest.mark.parametrize("max_length", [2, 3, 10, 77, 100])
def test_other_max_lengths_agree(folders, max_length):
    ours, hf = load_pair(folders["sd-v1"])
    strings = CURATED[:40] + ["the " * 200]
    ref = hf(strings, padding="max_length", max_length=max_length, truncation=True, return_tensors="np")
    np.testing.assert_array_equal(ours(strings, max_length=max_length).ids, ref.input_ids)


def test_call_api(folders):
    ours = CLIPTokenizer.from_folder(folders["sd-v1"].parent / "sd-v1")
    single = ours("A photo")
    assert single.ids.shape == (1, MAX) and single.truncated == [False]
    assert single.truncated_text == [""]
    assert ours.decode(ours.encode("A Photo")) == "a photo" and ours.max_length == MAX
    assert ours([]).ids.shape == (0, MAX)
    long = ours("the " * 80)                          # 80 tokens: 75 kept, 5 removed
    assert long.truncated == [True] and long.truncated_text == ["the the the the the"]
    with pytest.raises(TypeError):
        ours([None])
    with pytest.raises(ValueError, match="max_length"):
        ours("a", max_length=1)


def test_constructor_and_checkpoint_root(folders, tmp_path):
    """CLIPTokenizer(vocab, merges) directly; from_folder also takes the checkpoint folder."""
    folder = folders["bare"]
    vocab = json.loads((folder / "vocab.json").read_text())
    merges = (folder / "merges.txt").read_text().splitlines()[1:]
    direct = CLIPTokenizer(vocab, merges)
    assert direct.encode("The astronaut's café!!") == CLIPTokenizer.from_folder(folder).encode(
        "The astronaut's café!!")
    with pytest.raises(ConfigError, match="missing from the vocab"):
        CLIPTokenizer(vocab, merges + ["zz qq"])
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "tokenizer").symlink_to(folder)
    assert CLIPTokenizer.from_folder(tmp_path / "ckpt").encode("a photo") == direct.encode("a photo")


def test_stand_in_agrees_with_transformers(tmp_path):
    """Random weights' tokenizer = the stand-in vocabulary's folder read by transformers."""
    from gan_diffusion.sd.vocab import write_stand_in_vocabulary

    folder = write_stand_in_vocabulary(tmp_path / "tokenizer")
    ours, hf = CLIPTokenizer.stand_in(), transformers.CLIPTokenizer.from_pretrained(folder)
    assert_agrees(ours, hf, CURATED + random_strings(300, seed=3))
    assert (ours.vocab_size, ours.bos_id, ours.eos_id, ours.pad_id) == (49408, 49406, 49407, 49407)


def real_folder() -> Path:
    root = os.environ.get("GAN_DIFFUSION_SD_WEIGHTS")
    if not root:
        pytest.skip("GAN_DIFFUSION_SD_WEIGHTS is not set (a diffusers SD checkpoint folder)")
    folder = Path(root) / "tokenizer"
    if not (folder / "vocab.json").is_file():
        pytest.skip(f"{folder} holds no vocab.json")
    return folder


def test_real_sd_tokenizer_agrees_with_transformers():
    ours, hf = load_pair(real_folder())
    assert ours.vocab_size == 49408 and (ours.bos_id, ours.eos_id) == (49406, 49407)
    prompts = ["a photo of an astronaut riding a horse on mars",
               "A high quality, detailed oil painting of a castle by Greg Rutkowski, trending on artstation",
               "satellite image of farmland, river and forest, EuroSAT, Sentinel-2, 64x64 px"]
    assert_agrees(ours, hf, CURATED + prompts + random_strings(3000, seed=7))


# ---------------------------------------------------------------- bad folders
def broken(folders, tmp_path, edit) -> Path:
    folder = tmp_path / "tokenizer"
    folder.mkdir()
    for f in folders["sd-v1"].iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    edit(folder)
    return folder


@pytest.mark.parametrize("edit,match", [
    (lambda f: (f / "vocab.json").unlink(), r"vocab\.json is missing"),
    (lambda f: (f / "merges.txt").unlink(), r"merges\.txt is missing"),
    (lambda f: (f / "vocab.json").write_text("{not json"), r"vocab\.json is not valid JSON"),
    (lambda f: (f / "vocab.json").write_text("[1, 2]"), r"vocab\.json must be a JSON object"),
    (lambda f: (f / "tokenizer_config.json").write_text("{"), r"tokenizer_config\.json is not valid JSON"),
    (lambda f: (f / "special_tokens_map.json").write_text("[]"), r"special_tokens_map\.json must hold"),
    (lambda f: (f / "merges.txt").write_text("#version: 0.2\nt h\nbad line here\n"), r"merges\.txt line 3"),
    (lambda f: (f / "merges.txt").write_text("#version: 0.2\nt h\nzz qq\n"), r"missing from the vocab"),
    (lambda f: (f / "tokenizer_config.json").write_text('{"model_max_length": "77"}'), "model_max_length"),
])
def test_bad_folder_names_the_file(folders, tmp_path, edit, match):
    folder = broken(folders, tmp_path, edit)
    with pytest.raises(CheckpointError, match=match) as info:
        CLIPTokenizer.from_folder(folder)
    assert "vocab.json" in str(info.value) and "merges.txt" in str(info.value)   # the layout


def test_missing_folder(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        CLIPTokenizer.from_folder(tmp_path / "nowhere")
