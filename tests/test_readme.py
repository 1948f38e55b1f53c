"""The command reference tells the truth: every command the parser has is in the README, and
every flag the README or a docs page shows for a command exists (read from the real parser,
not from a list kept here)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from affectstream.cli import _build_parser

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
INLINE = re.compile(r"`affectstream [^`]+`")
FENCED = re.compile(r"^```[a-z]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
GLOBAL_FLAG = re.compile(r"^(-q|--quiet|-v|--verbose|--debug|--progress|--log-format \S+)$")


def _commands(parser: argparse.ArgumentParser,
              prefix: str = "") -> dict[str, argparse.ArgumentParser]:
    """Every leaf command ("eval spotting", "run", …) with its parser."""
    out: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out |= _commands(sub, f"{prefix}{name} ")
    return out or {prefix.strip(): parser}


def _shown(page: Path = README) -> dict[str, set[str]]:
    """Each command the page shows, with the flags shown beside it."""
    text = page.read_text(encoding="utf-8")
    code = [line.split("#")[0] for block in FENCED.findall(text)  # a comment is prose
            for line in block.splitlines() if line.startswith("affectstream ")]
    out: dict[str, set[str]] = {}
    for snippet in [*INLINE.findall(text), *code]:
        words = snippet.strip("`").split()[1:]
        while words and (GLOBAL_FLAG.match(words[0]) or GLOBAL_FLAG.match(" ".join(words[:2]))):
            words = words[1:] if GLOBAL_FLAG.match(words[0]) else words[2:]
        name = " ".join(w for w in words[:2] if re.fullmatch(r"[a-z]+", w))
        if not name:  # not a command ("`affectstream cam0`", a device's name)
            continue
        out.setdefault(name, set()).update(re.findall(r"(?<![\w-])--[a-z][a-z-]*", snippet))
    return out


def test_every_command_is_in_the_readme() -> None:
    shown = _shown()
    missing = [name for name in _commands(_build_parser()) if name not in shown]
    assert missing == [], f"commands the README does not show: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_flag_a_page_shows_exists(page: Path) -> None:
    commands = _commands(_build_parser())
    wrong = []
    for name, flags in _shown(page).items():
        parser = commands.get(name)
        if parser is None:
            wrong.append(f"{name} (no such command)")
            continue
        top = _build_parser()._actions  # the global flags may come after the command too
        known = {o for a in [*parser._actions, *top] for o in a.option_strings}
        wrong += [f"{name} {flag}" for flag in sorted(flags - known)]
    assert wrong == [], f"{page.name} shows flags the parser does not have: {wrong}"
