"""Identifier-split tokens for the lexical (BM25) baseline of code search: ``getHTTPResponse_code`` ->
``get http response code``. Queries and code go through the same rule, so a docstring word matches the
identifier part it names."""

from __future__ import annotations

import re

_WORD = re.compile(r"[A-Za-z]+|\d+")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


def identifier_tokens(text: str) -> list[str]:
    """Lower-cased sub-tokens: split on anything not a letter or digit, then on snake_case and camelCase."""
    out: list[str] = []
    for word in _WORD.findall(text):
        out.extend(part.lower() for part in _CAMEL.findall(word))
    return out
