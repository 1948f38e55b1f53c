"""Token estimates for text bound for a language model: the rolling log's budget (perception)
and the VLM prompt's size (vlm/) count with the same rule."""

from __future__ import annotations


def estimate_tokens(text: str) -> int:
    """Rough token count (≈4 characters per token for English BPE vocabularies)."""
    return max(1, (len(text) + 3) // 4)
