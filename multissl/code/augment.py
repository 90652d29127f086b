"""CoCoSoDa's soft data augmentation (Shi et al., "CoCoSoDa: Effective Contrastive Learning for Code
Search", ICSE 2023, Sec. III-B): dynamic masking and dynamic replacement of tokens by their lexical type.

Lexical types come from Python's own tokenizer (``tokenize``; a regex lexer when the code does not
tokenize, e.g. truncated or whitespace-joined CodeSearchNet tokens) and are mapped onto the subwords of
any Hugging Face fast tokenizer through its character offsets. Four operators, as in the paper:

- ``mask``: dynamic masking (DM) of code AND query, BERT's 80% [MASK] / 10% random / 10% keep;
- ``replace_type``: dynamic replacement (DR): chosen code subwords become their type's token;
- ``replace_one_type``: dynamic replacement of a specified type (DRST): one type drawn per step, its
  chosen subwords become the type token;
- ``mask_one_type``: dynamic masking of a specified type (DMST): one type drawn per step, its chosen
  subwords become [MASK].

Special tokens and padding are never touched (their type id is -1). The official code runs the four
in turn by ``step % 4`` and augments the query only for masking; both are kept.
"""

from __future__ import annotations

import io
import keyword
import re
import tokenize
from bisect import bisect_right

import torch

from multissl.encoders.masking import mask_tokens

LEXICAL_TYPES = ("keyword", "identifier", "operator", "separator", "number", "string", "comment")
TYPE_TOKENS = tuple(f"<{t}>" for t in LEXICAL_TYPES)
AUGMENTATIONS = ("mask", "replace_type", "replace_one_type", "mask_one_type")
SEPARATORS = set("()[]{},:;.") | {"->", "@"}
_REGEX = re.compile(r"(?P<comment>#[^\n]*)|(?P<string>[rbuRBUfF]{0,2}(\"\"\"[\s\S]*?\"\"\"|'''[\s\S]*?'''|\"[^\"\n]*\"|'[^'\n]*'))"
                    r"|(?P<number>\b\d[\w.]*)|(?P<name>[A-Za-z_]\w*)|(?P<op>[^\s\w])")


def _type_of_name(text: str) -> str:
    return "keyword" if keyword.iskeyword(text) or keyword.issoftkeyword(text) else "identifier"


def _regex_spans(code: str) -> list[tuple[int, int, int]]:
    spans = []
    for m in _REGEX.finditer(code):
        kind = m.lastgroup
        if kind == "name":
            t = _type_of_name(m.group())
        elif kind == "op":
            t = "separator" if m.group() in SEPARATORS else "operator"
        else:
            t = kind
        spans.append((m.start(), m.end(), LEXICAL_TYPES.index(t)))
    return spans


def lexical_spans(code: str) -> list[tuple[int, int, int]]:
    """(start, end, type index) character spans of the code's lexical tokens, in order."""
    line_starts = [0]
    for line in code.splitlines(keepends=True):
        line_starts.append(line_starts[-1] + len(line))
    spans = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            if tok.type == tokenize.NAME:
                t = _type_of_name(tok.string)
            elif tok.type == tokenize.OP:
                t = "separator" if tok.string in SEPARATORS else "operator"
            elif tok.type == tokenize.NUMBER:
                t = "number"
            elif tok.type == tokenize.STRING or tok.type in getattr(tokenize, "FSTRING_TYPES", ()):
                t = "string"
            elif tok.type == tokenize.COMMENT:
                t = "comment"
            else:
                continue
            s = line_starts[tok.start[0] - 1] + tok.start[1]
            e = line_starts[tok.end[0] - 1] + tok.end[1]
            spans.append((s, e, LEXICAL_TYPES.index(t)))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return _regex_spans(code)
    return spans


def subword_types(offsets: list[tuple[int, int]], spans: list[tuple[int, int, int]]) -> list[int]:
    """Type index of each subword from its character offsets (-1 for special tokens / no span)."""
    starts = [s for s, _, _ in spans]
    out = []
    for a, b in offsets:
        if b <= a:
            out.append(-1)
            continue
        i = bisect_right(starts, a) - 1
        out.append(spans[i][2] if i >= 0 and spans[i][0] <= a < spans[i][1] else -1)
    return out


def tokenize_code(tokenizer, codes: list[str], max_length: int) -> dict[str, torch.Tensor]:
    """Tokenise code with a fast tokenizer and attach ``token_types`` (B, L): lexical type or -1."""
    enc = tokenizer(list(codes), padding=True, truncation=True, max_length=max_length, return_tensors="pt",
                    return_offsets_mapping=True, return_special_tokens_mask=True)
    offsets = enc.pop("offset_mapping").tolist()
    special = enc.pop("special_tokens_mask").bool()
    types = torch.full(enc["input_ids"].shape, -1, dtype=torch.long)
    for row, (code, offs) in enumerate(zip(codes, offsets, strict=True)):
        types[row] = torch.tensor(subword_types([tuple(o) for o in offs], lexical_spans(code)))
    types[special | (enc["attention_mask"] == 0)] = -1
    out = dict(enc)
    out["token_types"] = types
    return out


def choose(probability_rows: torch.Tensor, rate: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Bernoulli(rate) choice over the allowed positions (B, L) bool."""
    probs = probability_rows.float() * rate
    return torch.bernoulli(probs, generator=generator).bool()


def replace_by_type(input_ids: torch.Tensor, token_types: torch.Tensor, type_token_ids: torch.Tensor, rate: float,
                    only_type: int | None = None, replace_fraction: float = 0.8,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """DR / DRST: a ``rate`` share of the typed subwords (of ``only_type`` if given); ``replace_fraction``
    of them (the official 80%) become their type token, the rest stay."""
    allowed = token_types >= 0 if only_type is None else token_types == only_type
    chosen = choose(allowed, rate, generator)
    r = torch.rand(input_ids.shape, device=input_ids.device, generator=generator)
    chosen &= r < replace_fraction
    out = input_ids.clone()
    out[chosen] = type_token_ids.to(input_ids.device)[token_types[chosen]]
    return out


def mask_by_type(input_ids: torch.Tensor, token_types: torch.Tensor, mask_token_id: int, rate: float, only_type: int,
                 mask_fraction: float = 0.8, generator: torch.Generator | None = None) -> torch.Tensor:
    """DMST: a ``rate`` share of the subwords of one type; ``mask_fraction`` of them become [MASK]."""
    chosen = choose(token_types == only_type, rate, generator)
    chosen &= torch.rand(input_ids.shape, device=input_ids.device, generator=generator) < mask_fraction
    out = input_ids.clone()
    out[chosen] = mask_token_id
    return out


def soft_augment(kind: str, code_ids: torch.Tensor, code_types: torch.Tensor, code_special: torch.Tensor,
                 query_ids: torch.Tensor, query_special: torch.Tensor, *, mask_token_id: int, vocab_size: int,
                 type_token_ids: torch.Tensor, rate: float = 0.1,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One CoCoSoDa augmentation of a batch: (augmented code ids, augmented query ids).

    ``code_special`` / ``query_special`` (B, L) bool mark special tokens and padding (never changed).
    Only ``mask`` changes the query, as in the official code.
    """
    if kind == "mask":
        code, _ = mask_tokens(code_ids, mask_token_id, vocab_size, code_special, rate=rate, generator=generator)
        query, _ = mask_tokens(query_ids, mask_token_id, vocab_size, query_special, rate=rate, generator=generator)
        return code, query
    types = code_types.masked_fill(code_special, -1)
    if kind == "replace_type":
        return replace_by_type(code_ids, types, type_token_ids, rate, generator=generator), query_ids.clone()
    present = torch.unique(types[types >= 0])
    if present.numel() == 0:
        return code_ids.clone(), query_ids.clone()
    pick = int(present[torch.randint(present.numel(), (1,), generator=generator, device=present.device)])
    if kind == "replace_one_type":
        return replace_by_type(code_ids, types, type_token_ids, rate, only_type=pick, generator=generator), query_ids.clone()
    if kind == "mask_one_type":
        return mask_by_type(code_ids, types, mask_token_id, rate, pick, generator=generator), query_ids.clone()
    raise ValueError(f"unknown augmentation {kind!r}; choose from {AUGMENTATIONS}")
