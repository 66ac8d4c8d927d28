#!/usr/bin/env python3
"""The CLIP tokenizer's byte-pair-encoding (BPE) tables, from one source file.

Stable Diffusion 1.x uses OpenAI CLIP's text tokenizer. Everything that tokenizer knows
is in one file of BPE "merges", `bpe_simple_vocab_16e6.txt.gz`, which the open_clip_torch
package ships. This module:

  * writes the merges CLIP actually uses (a header line plus 48,894 merges) as the Swift
    package's resource `Sources/StableDiffusion/TextEncoder/Resources/bpe_simple_vocab_16e6.txt`,
    with a NOTICE holding the licence that ships with open_clip;
  * derives the 49,408-entry vocabulary from those merges exactly as CLIP's SimpleTokenizer
    does, and writes it in the Hugging Face layout (`vocab.json` + `merges.txt`) used by the
    diffusers folder;
  * checks that open_clip's SimpleTokenizer and transformers' CLIPTokenizer built from our
    files give the same token ids.

Run it on its own to regenerate the Swift resource:

    python Tools/reference/extract_bpe.py
"""

from __future__ import annotations

import gzip
import importlib.metadata
import json
from functools import lru_cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
RESOURCE_DIR = REPO_ROOT / "Sources" / "StableDiffusion" / "TextEncoder" / "Resources"
RESOURCE_FILE = RESOURCE_DIR / "bpe_simple_vocab_16e6.txt"
NOTICE_FILE = RESOURCE_DIR / "NOTICE"

# CLIP's vocabulary has 49,408 entries: 256 single bytes, the same 256 bytes marked as
# "end of word" (suffix "</w>"), one entry per merge, and 2 special tokens. So the number of
# merges it can use is 49408 - 256 - 256 - 2 = 48,894. SimpleTokenizer writes this as
# `merges[1:49152-256-2+1]`: skip the header line, keep the next 48,894 lines.
VOCAB_SIZE = 49408
NUM_MERGES = 49152 - 256 - 2  # = 48,894
START_OF_TEXT = "<|startoftext|>"  # id 49406
END_OF_TEXT = "<|endoftext|>"  # id 49407 (also the padding token in SD 1.x)
CONTEXT_LENGTH = 77  # 75 text tokens + start + end


# MARK: - The source file


def open_clip_bpe_gz() -> Path:
    """Where open_clip keeps the compressed merges file."""
    import open_clip.tokenizer

    return Path(open_clip.tokenizer.default_bpe())


def read_bpe_lines() -> list[str]:
    """All lines of the original file: a header line, then one merge ("a b") per line."""
    text = gzip.open(open_clip_bpe_gz()).read().decode("utf-8")
    return text.split("\n")


def clip_bpe_lines() -> list[str]:
    """The header plus exactly the merges CLIP uses (the file holds ~262k; CLIP uses 48,894)."""
    lines = read_bpe_lines()
    return lines[: 1 + NUM_MERGES]


def clip_merges() -> list[tuple[str, str]]:
    """The merges as pairs, in priority order (earlier = merged first)."""
    return [tuple(line.split()) for line in clip_bpe_lines()[1:]]


# MARK: - The vocabulary


@lru_cache()
def bytes_to_unicode() -> dict[int, str]:
    """CLIP's (and GPT-2's) reversible map from the 256 byte values to printable characters.

    BPE works on strings, and the merges file must not contain spaces or control characters,
    so each byte gets a visible stand-in: printable Latin-1 bytes map to themselves, the other
    68 bytes (0-32, 127-160, 173) map to U+0100, U+0101, ... in byte order.
    """
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    codepoints = printable[:]
    n = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codepoints.append(256 + n)
            n += 1
    return dict(zip(printable, [chr(c) for c in codepoints]))


def build_vocab(merges: list[tuple[str, str]]) -> dict[str, int]:
    """token -> id, in the order SimpleTokenizer builds it.

    ids 0..255: the byte characters (in bytes_to_unicode's order, NOT byte order),
    256..511: the same characters with "</w>", 512..49405: each merge's result,
    49406: <|startoftext|>, 49407: <|endoftext|>.
    """
    byte_chars = list(bytes_to_unicode().values())
    tokens = byte_chars + [c + "</w>" for c in byte_chars]
    tokens += ["".join(pair) for pair in merges]
    tokens += [START_OF_TEXT, END_OF_TEXT]
    assert len(tokens) == VOCAB_SIZE, len(tokens)
    vocab = {token: i for i, token in enumerate(tokens)}
    assert len(vocab) == VOCAB_SIZE, "every vocabulary entry must be unique"
    return vocab


# MARK: - Writing the files


def open_clip_licence_text() -> str:
    """The MIT licence text that ships in open_clip_torch's dist-info."""
    dist = importlib.metadata.distribution("open_clip_torch")
    for f in dist.files or []:
        if f.name.upper().startswith("LICENSE"):
            return f.read_text()
    raise FileNotFoundError("open_clip_torch ships no LICENSE file in its dist-info")


def write_swift_resource(resource_file: Path = RESOURCE_FILE, notice_file: Path = NOTICE_FILE) -> None:
    """The merges file for the Swift tokenizer, plus its NOTICE."""
    resource_file.parent.mkdir(parents=True, exist_ok=True)
    lines = clip_bpe_lines()
    resource_file.write_text("\n".join(lines) + "\n", encoding="utf-8")

    version = importlib.metadata.version("open_clip_torch")
    notice = (
        "bpe_simple_vocab_16e6.txt\n"
        "=========================\n\n"
        "The byte-pair-encoding merges of OpenAI's CLIP text tokenizer, the tokenizer of\n"
        "Stable Diffusion 1.x. Taken from the file open_clip/bpe_simple_vocab_16e6.txt.gz of the\n"
        f"open_clip_torch package (version {version}, https://github.com/mlfoundations/open_clip),\n"
        "which copied it from OpenAI CLIP (https://github.com/openai/CLIP, MIT License,\n"
        "Copyright (c) 2021 OpenAI). The file was decompressed and truncated to what CLIP uses:\n"
        f"the header line plus the first {NUM_MERGES} merges. Regenerate it with\n"
        "Tools/reference/extract_bpe.py.\n\n"
        "open_clip's licence follows.\n\n"
        "----------------------------------------------------------------------------------------\n\n"
    )
    notice_file.write_text(notice + open_clip_licence_text(), encoding="utf-8")


def write_hf_tokenizer_files(folder: Path) -> None:
    """The tokenizer/ folder of a diffusers SD 1.x model, as in the original SD 1.5 repository.

    vocab.json maps token -> id; merges.txt lists the merges under a "#version: 0.2" header
    (the Hugging Face convention, replacing the original file's header line).
    """
    folder.mkdir(parents=True, exist_ok=True)
    merges = clip_merges()
    vocab = build_vocab(merges)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    merges_text = "#version: 0.2\n" + "\n".join(" ".join(pair) for pair in merges) + "\n"
    (folder / "merges.txt").write_text(merges_text, encoding="utf-8")

    def special(content: str) -> dict:
        return {"content": content, "lstrip": False, "normalized": True, "rstrip": False, "single_word": False}

    # SD 1.x pads with <|endoftext|> (id 49407). open_clip, and SD 2.x, pad with id 0 ("!").
    special_tokens = {
        "bos_token": special(START_OF_TEXT),
        "eos_token": special(END_OF_TEXT),
        "pad_token": END_OF_TEXT,
        "unk_token": special(END_OF_TEXT),
    }
    (folder / "special_tokens_map.json").write_text(json.dumps(special_tokens, indent=2) + "\n")
    tokenizer_config = {
        "add_prefix_space": False,
        "bos_token": special(START_OF_TEXT),
        "do_lower_case": True,
        "eos_token": special(END_OF_TEXT),
        "errors": "replace",
        "model_max_length": CONTEXT_LENGTH,
        "pad_token": END_OF_TEXT,
        "tokenizer_class": "CLIPTokenizer",
        "unk_token": special(END_OF_TEXT),
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2) + "\n")


# MARK: - Cross-checks


def open_clip_tokenizer():
    """open_clip's copy of OpenAI's SimpleTokenizer, reading the original .gz file."""
    from open_clip.tokenizer import SimpleTokenizer

    return SimpleTokenizer()


def open_clip_ids(tokenizer, prompt: str) -> list[int]:
    """Token ids the way OpenAI CLIP builds them, but padded with <|endoftext|> like SD 1.x.

    (open_clip's own `tokenize()` pads with 0.) Too-long prompts keep their first 75 tokens.
    """
    ids = [tokenizer.sot_token_id] + tokenizer.encode(prompt)[: CONTEXT_LENGTH - 2] + [tokenizer.eot_token_id]
    return ids + [tokenizer.eot_token_id] * (CONTEXT_LENGTH - len(ids))


def transformers_ids(tokenizer, prompt: str) -> list[int]:
    """Token ids the way the diffusers pipelines ask for them."""
    return tokenizer(prompt, padding="max_length", max_length=CONTEXT_LENGTH, truncation=True).input_ids


def check_vocab_matches_open_clip() -> None:
    """Our vocabulary must be open_clip's, entry by entry (only the special tokens' spelling differs)."""
    ours = build_vocab(clip_merges())
    theirs = open_clip_tokenizer().encoder
    assert len(theirs) == VOCAB_SIZE
    renamed = {"<start_of_text>": START_OF_TEXT, "<end_of_text>": END_OF_TEXT}
    for token, i in theirs.items():
        assert ours[renamed.get(token, token)] == i, token


def main() -> None:
    write_swift_resource()
    check_vocab_matches_open_clip()
    n_lines = len(RESOURCE_FILE.read_text(encoding="utf-8").splitlines())
    print(f"wrote {RESOURCE_FILE.relative_to(REPO_ROOT)} ({n_lines} lines, "
          f"{RESOURCE_FILE.stat().st_size} bytes) and {NOTICE_FILE.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()
