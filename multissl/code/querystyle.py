"""Training-query styles: docstring first lines rewritten the way people type code searches.

Mined queries are docstring first lines ("Returns the keys that map to the top n values in the given
dict."); web queries are short, lower-case keyword strings, often with the language named ("python get
top max values from dictionary", CoSQA, Huang et al. ACL 2021). :func:`web_style` rewrites a docstring
line with a few fixed rules (no model, no data from any evaluation set):

- lower case, punctuation and reST / Markdown markup dropped (``:class:`Foo``` -> ``foo``);
- a leading third-person verb made imperative ("Returns" -> "return", "Creates" -> "create");
  "return"/"returns" as the first word becomes "get" (how searches phrase it);
- articles and filler words dropped ("the", "a", "given", "specified", ...);
- cut to a random length of 3..``max_words`` words (search queries are short);
- "python" added at the start or end with probability ``language_rate``.

:func:`identifier_query` is the other weak source: the function name split into words
(``get_keys_of_max_n`` -> "get keys of max n").
"""

from __future__ import annotations

import random
import re

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*")
_MARKUP = re.compile(r":[a-z]+:`~?([^`]*)`|``([^`]*)``|`([^`]*)`")
FILLER = frozenset({"the", "a", "an", "given", "specified", "this", "that", "which", "its", "it", "of", "to", "for",
                    "if", "is", "are", "be", "will", "by", "any", "all", "as", "with", "from", "in", "on", "and",
                    "or", "we", "you", "one", "some", "into", "object", "instance", "method", "function"})
KEEP_SHORT = frozenset({"in", "of", "to", "from", "if", "is", "and", "or", "as", "on"})
_DEF = re.compile(r"def\s+([A-Za-z_][A-Za-z0-9_]*)")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


def _imperative(verb: str) -> str:
    if verb in ("returns", "return"):
        return "get"
    if verb.endswith("ies") and len(verb) > 4:
        return verb[:-3] + "y"
    if verb.endswith(("sses", "shes", "ches", "xes", "zes")):
        return verb[:-2]
    if verb.endswith("s") and not verb.endswith(("ss", "us", "is")) and len(verb) > 3:
        return verb[:-1]
    return verb


def web_style(query: str, rng: random.Random, max_words: int = 8, language_rate: float = 0.5,
              keep_connectives: float = 0.3) -> str:
    """A docstring line rewritten as a short lower-case keyword search (see the module docstring)."""
    text = _MARKUP.sub(lambda m: next(g for g in m.groups() if g is not None), query)
    words = [w.lower() for w in _WORD.findall(text) if len(w) > 1 or w.isupper()]
    while len(words) > 1 and words[0] in FILLER:
        words = words[1:]
    if not words:
        return query
    words[0] = _imperative(words[0])
    kept = [w for i, w in enumerate(words)
            if i == 0 or w not in FILLER or (w in KEEP_SHORT and rng.random() < keep_connectives)]
    n = rng.randint(min(3, len(kept)), max(min(3, len(kept)), min(max_words, len(kept))))
    kept = kept[:n]
    if rng.random() < language_rate and "python" not in kept:
        kept = ["python"] + kept if rng.random() < 0.7 else kept + ["python"]
    return " ".join(kept)


def identifier_query(code: str) -> str | None:
    """The function name split into lower-case words, or None when there is no ``def NAME``."""
    m = _DEF.search(code)
    if not m:
        return None
    parts = [p.lower() for chunk in m.group(1).split("_") for p in _CAMEL.findall(chunk)]
    return " ".join(parts) if parts else None


STYLES = ("docstring", "web", "identifier")


class QueryRewriter:
    """Applied per training pair, per draw: with probability ``rate`` the query is replaced by a rewrite
    in one of ``styles`` (drawn uniformly), else kept as the docstring line."""

    def __init__(self, styles: list[str], rate: float, seed: int = 0, max_words: int = 8,
                 language_rate: float = 0.5) -> None:
        bad = [s for s in styles if s not in STYLES]
        if bad:
            raise ValueError(f"unknown query styles {bad}; choose from {STYLES}")
        if not 0 <= rate <= 1:
            raise ValueError("query rewrite rate must be in [0, 1]")
        self.styles = [s for s in styles if s != "docstring"]
        self.rate, self.max_words, self.language_rate = rate, max_words, language_rate
        self.rng = random.Random(seed)

    def __call__(self, query: str, code: str) -> str:
        if not self.styles or self.rng.random() >= self.rate:
            return query
        style = self.rng.choice(self.styles)
        if style == "web":
            return web_style(query, self.rng, self.max_words, self.language_rate)
        return identifier_query(code) or query
