"""Finding the emotion object in a VLM's raw answer (the extraction half of
:mod:`affectstream.vlm.parsing`, which documents every repair).

:func:`strip_thinking` drops reasoning blocks, :func:`find_object` finds the JSON object (the
whole text, a fenced block or the first balanced ``{…}`` that reads as an emotion object,
relaxing single quotes, trailing commas, unquoted keys, Python literals and curly quotes where
strict JSON fails), and :func:`bare_label` reads an answer that is only a label word.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from affectstream.labels import canonical_label, normalise_word

_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
SPECIAL_TOKEN = re.compile(r"<\|[^|<>]{1,40}\|>")
_FENCE = re.compile(r"```[a-zA-Z]*\s*(.*?)```", re.DOTALL)
_BARE_PREFIX = re.compile(
    r"^(?:(?:final\s+)?answer|the\s+emotion\s+is|emotion\s+label|emotion|label|prediction)"
    r"\s*(?:is)?\s*[:=\-]?\s*", re.IGNORECASE)
_CURLY = str.maketrans({"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'"})
_WORD = re.compile(r"[^\W\d]\w*")
_CLOSER = re.compile(r"\s*(?:[}\]]|$)")
_COLON = re.compile(r"\s*:")


def strip_thinking(text: str) -> str:
    text = _THINK.sub("", text)
    low = text.lower()
    if "</think>" in low:  # opening tag was part of the prompt (Qwen3-style templates)
        text = text[low.rindex("</think>") + len("</think>"):]
    elif "<think>" in low:  # reasoning cut off before its end: no answer after it
        text = text[: low.index("<think>")]
    return text


def find_object(body: str, repairs: list[str],
                wanted: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
    """The object in ``body``: the whole text, else the first fenced or balanced ``{…}`` that
    is ``wanted`` (else the first object found at all); the fixes it took go to ``repairs``."""
    whole = _loads(body)
    if isinstance(whole, dict):
        return whole
    if isinstance(whole, list) and len(whole) == 1 and isinstance(whole[0], dict):
        repairs.append("unwrapped a one-element list")
        return whole[0]
    fenced = [m.group(1) for m in _FENCE.finditer(body)]
    first: dict[str, Any] | None = None
    first_fixes: list[str] = []
    for source in (*fenced, body):
        for candidate, closed in _balanced_objects(source):
            fixes = [] if closed else ["closed a truncated JSON object"]
            obj = _loads(candidate)
            if obj is None:
                obj = _loads(_relax(candidate))
                fixes.append("relaxed JSON syntax (quotes, commas, literals)")
            if not isinstance(obj, dict):
                continue
            fixes.insert(0, "extracted the JSON object from surrounding text")
            if wanted(obj):
                repairs.extend(fixes)
                return obj
            if first is None:
                first, first_fixes = obj, fixes
    repairs.extend(first_fixes)
    return first


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        return None


def _balanced_objects(text: str) -> list[tuple[str, bool]]:
    """Top-level ``{…}`` spans (string-aware), and a last one closed by us if left open."""
    out: list[tuple[str, bool]] = []
    stack: list[str] = []
    start = 0
    quote = ""
    prev = ""  # last non-space character outside strings, to tell quotes from apostrophes
    i = 0
    while i < len(text):
        ch = text[i]
        if not stack:
            if ch == "{":
                stack, start, prev = ["}"], i, "{"
        elif quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote, prev = "", ch
        elif ch == '"' or (ch == "'" and prev in "{[,:"):
            quote = ch
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]":
            if ch != stack[-1]:
                stack = []  # mismatched: not JSON, look for the next "{"
            else:
                stack.pop()
                if not stack:
                    out.append((text[start:i + 1], True))
        if not ch.isspace() and not quote:
            prev = ch
        i += 1
    if stack:
        tail = text[start:].rstrip().rstrip(",")
        out.append((tail + quote + "".join(reversed(stack)), False))
    return out


def _relax(text: str) -> str:
    """Single quotes → double, trailing commas dropped, bare keys quoted, Python literals."""
    text = text.translate(_CURLY)
    out: list[str] = []
    quote = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\" and i + 1 < len(text):
                nxt = text[i + 1]
                out.append("'" if nxt == "'" and quote == "'" else ch + nxt)
                i += 2
                continue
            if ch == quote:
                out.append('"')
                quote = ""
            else:
                out.append('\\"' if ch == '"' else ch)
        elif ch in "\"'":
            quote = ch
            out.append('"')
        elif ch == ",":
            if not _CLOSER.match(text, i + 1):
                out.append(ch)
        elif ch.isalpha() or ch == "_":
            m = _WORD.match(text, i)
            assert m is not None
            word = m.group(0)
            literal = {"True": "true", "False": "false", "None": "null"}.get(word, word)
            out.append(f'"{word}"' if _COLON.match(text, i + len(word)) else literal)
            i += len(word)
            continue
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def bare_label(body: str, labels: tuple[str, ...]) -> str | None:
    fenced = _FENCE.fullmatch(body.strip())
    line = (fenced.group(1) if fenced else body).strip()
    if "\n" in line or len(line) > 60:
        return None
    word = _BARE_PREFIX.sub("", normalise_word(line))
    if len(word.split()) > 3:
        return None
    return canonical_label(word, labels)
