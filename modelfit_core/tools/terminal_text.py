"""User-written text (names of parameters, studies, objectives; paths) made safe to
print on a terminal.

A name stored in a database or written in a config file may hold control
characters: ANSI escape sequences (which can clear the screen, move the cursor or
rewrite what was printed before), carriage returns (which overwrite the line),
bidirectional overrides (which reorder what is shown), and other format
characters. :func:`escaped` shows each of them as its Python escape (``\\x1b``,
``\\r``, ``\\u202e``), so what the terminal shows is what the text holds.
"""

from __future__ import annotations

import unicodedata

_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def _unsafe(character: str) -> bool:
    return unicodedata.category(character) in _UNSAFE_CATEGORIES


def escaped(text: object, keep_newlines: bool = False) -> str:
    """``str(text)`` with every control, format or unassigned character escaped.

    Parameters
    ----------
    text : object
        Converted with ``str`` first.
    keep_newlines : bool
        Leave ``\\n`` as is (for multi-line messages); tabs and everything else
        unsafe are escaped either way.
    """
    text = str(text)
    if text.isprintable() and "\x1b" not in text:
        return text
    return "".join(
        character.encode("unicode_escape").decode("ascii")
        if _unsafe(character) and not (keep_newlines and character == "\n") else character
        for character in text)
