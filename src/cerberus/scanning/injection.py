"""Rules that find prompt injection: text aimed at the model rather than the user, smuggled
into tool results or hidden in tool descriptions (tool poisoning)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import re2

from cerberus.scanning.engine import Rule
from cerberus.scanning.fold import INVISIBLE

_PRIOR = r"(?:previous|prior|above|earlier|preceding|former|original|system)"
_ORDERS = r"(?:instructions?|prompts?|directions|rules|guidelines|messages|context|commands)"
_SECRETS = (
    r"(?:secrets?|credentials?|passwords?|api[ _\-]?keys?|tokens?|ssh[ _\-]?keys?|private keys?"
    r"|id_rsa|\.env|\.ssh|mcp\.json|environment variables|conversation|chat history"
    r"|system prompt|cookies?)"
)

# "user's", "users'", and the same with a typographic apostrophe (U+2019).
_POSSESSIVE = "(?:['\u2019]s?)"
# The words that may stand between "read" and the path of a file it names: "read the file
# ~/.ssh/id_rsa", "open the contents of ~/.aws/credentials", "load your .env".
_FILE_WORDS = r"(?:the|your|my|this|that|a|file|files|contents?|of|in|at|from|key|keys)"

# Where smuggled data is sent: a URL, an address, or a field the attacker reads back. An
# ordinary instruction ("pass the token in the Authorization header") names none of these.
_SINKS = (
    r"(?:side ?notes?|notes?|comments?|parameters?|arguments?|fields?|urls?|webhooks?"
    r"|endpoints?|servers?|query strings?)\b"
)
_DESTINATION = (
    r"(?:https?://|[\w.+\-]+@[\w\-]+\.|[\"'`]?\w*" + _SINKS + r"|(?:the|a|an|your|this|that)\s+"
    r"(?:[\w\"'`\-]+\s+){0,2}?" + _SINKS + r")"
)


def _class(ranges: Iterable[tuple[int, int]]) -> str:
    return "[" + "".join(rf"\x{{{low:x}}}-\x{{{high:x}}}" for low, high in ranges) + "]"


# Invisible characters: those the fold removes (so the rules looking for them read the texts
# as written, `as_written`), any of them, and an ASCII word they may split.
_INVISIBLE = _class(INVISIBLE)
_WORD = "(?:[A-Za-z0-9]|" + _INVISIBLE + ")"
# Those no text uses: zero-width space and non-joiner, word joiner and invisible operators,
# the Mongolian vowel separator, the deprecated format characters U+206A-206F and Khmer
# inherent vowels, and the unassigned code points reserved as ignorable.
_NEVER_IN_TEXT = _class(
    [
        (0x200B, 0x200C),
        (0x2060, 0x2065),
        (0x180E, 0x180E),
        (0x206A, 0x206F),
        (0x17B4, 0x17B5),
        (0xFFF0, 0xFFF8),
        (0xE0080, 0xE00FF),
        (0xE01F0, 0xE0FFF),
    ]
)
# Those with a use beside some scripts' characters: the combining grapheme joiner, the
# Arabic letter mark, left-to-right and right-to-left marks, the zero-width joiner and
# no-break space, variation selectors (Mongolian, emoji, ideographic), Hangul fillers,
# interlinear annotation, Egyptian hieroglyph, shorthand and musical format controls.
_IN_A_WORD = _class(
    [
        (0x034F, 0x034F),
        (0x061C, 0x061C),
        (0x115F, 0x1160),
        (0x180B, 0x180D),
        (0x180F, 0x180F),
        (0x200D, 0x200F),
        (0x3164, 0x3164),
        (0xFE00, 0xFE0F),
        (0xFEFF, 0xFEFF),
        (0xFFA0, 0xFFA0),
        (0xFFF9, 0xFFFB),
        (0x13430, 0x1343F),
        (0x1BCA0, 0x1BCA3),
        (0x1D173, 0x1D17A),
        (0xE0100, 0xE01EF),
    ]
)
_TAGS = _class([(0xE0000, 0xE007F)])
_BIDI = _class([(0x202A, 0x202E), (0x2066, 0x2069)])


def _runs(characters: str) -> str:
    """These characters, and more of them further on in the same word: a word they split
    again and again is one hit (a hit each is a Python call each: a megabyte of
    `a<U+200B>` took 0.26 s)."""
    return characters + "(?:" + _WORD + "*" + characters + ")?"


# Words that make an HTML comment one addressed to the model.
_TO_THE_MODEL = r"\b(?:ignore|instructions?|assistant|model|AI|system prompt)\b"
_ADDRESSES_THE_MODEL = re2.compile("(?i)" + _TO_THE_MODEL)


def _comment_to_the_model(data: bytes, match: Any) -> tuple[int, int] | None:
    """The first HTML comment of the candidate whose own text addresses the model.

    The rule's pattern finds an opener, one of the words somewhere after it and the next
    closer after that: possibly several comments and the text between them. Every comment
    that overlaps the candidate ends inside it (the candidate ends at a closer), so none is
    missed when the scan goes on after the candidate.
    """
    start, end = match.start(), match.end()
    while start >= 0:
        close = data.find(b"-->", start + 4, end)
        if close < 0:
            return None
        if _ADDRESSES_THE_MODEL.search(data[start + 4 : close]):
            return start, close + 3
        start = data.find(b"<!--", close + 3, end)
    return None


RULES: dict[str, tuple[Rule, ...]] = {
    "prompt_injection": (
        Rule(
            "instruction_override",
            # "Later rules override previous rules" and "skip all block rules" are documentation;
            # the attack tells the reader to drop what it was told.
            r"(?i)\b(?:ignore|disregard|forget)\s+(?:(?:all|any|the|your|my|these|of|everything)\s+)*"
            r"(?:" + _PRIOR + r"\s+(?:\w+\s+){0,2})?" + _ORDERS + r"\b",
        ),
        Rule(
            "instruction_override",
            r"(?i)\b(?:you are now|from now on,? you|act as (?:an? )?(?:unrestricted|jailbroken)"
            r"|new (?:system )?instructions\s*:|developer mode (?:enabled|on)|do anything now)",
        ),
        Rule(
            "hidden_instructions",
            r"(?i)\b(?:do not|don't|never)\s+(?:tell|inform|mention|reveal|show|notify|alert)\s+"
            r"(?:\w+\s+){0,2}(?:the\s+)?user\b",
        ),
        Rule(
            "hidden_instructions",
            r"(?i)\bwithout\s+(?:telling|informing|notifying|alerting|asking)\s+(?:the\s+)?user\b",
        ),
        Rule(
            "hidden_instructions",
            # "Before using this tool you must call login" is an ordinary precondition; what
            # poisoning asks first is to read, fetch or hand over something.
            r"(?i)\b(?:before|after)\s+(?:using|calling|running)\s+(?:this|any)\s+tool,?\s+"
            r"(?:you\s+)?(?:must|should|need to|first)\s+(?:first\s+)?"
            r"(?:read|open|fetch|send|pass|include|access|upload|copy)\b",
        ),
        Rule(
            "hidden_instructions",
            r"(?i)\b(?:do not|don't|never)\s+(?:mention|reveal|disclose)\s+(?:that|this|it|these)\b"
            r"|\botherwise the tool will not work\b",
        ),
        Rule(
            "exfiltration",
            # A word may end in a possessive ("the user's API keys", "the users' tokens").
            r"(?i)\b(?:send|forward|upload|post|email|transmit|exfiltrate|leak|copy|pass|include)"
            r"\s+(?:\w+"
            + _POSSESSIVE
            + r"?\s+){0,4}?"
            + _SECRETS
            + r"\b.{0,60}?\b(?:to|into|in|via|as|with)\s+"
            + _DESTINATION,
        ),
        Rule(
            "exfiltration",
            # Only the path says it is a secret's: "read the file README.md" is not one.
            r"(?i)\b(?:read|cat|open|load)\s+(?:" + _FILE_WORDS + r"\s+)*[\"'`]?"
            r"(?:~/\.ssh|~/\.aws|\.env\b|/etc/passwd|id_rsa|~/\.cursor/mcp\.json)",
        ),
        # Markdown image whose URL carries data in its query: rendered, it leaks that data.
        # Unbounded: RE2 compiled the counted repetitions this had ({0,200}, {1,500}, {0,500})
        # into ~1,200 copies of their classes, 3 MiB in each process; and a longer alt text
        # or URL only makes such an image more suspect.
        Rule("exfiltration", r"!\[[^\]\n]*\]\(https?://[^\s)]+\?[^\s)]*="),
        # The rules below look for characters the fold removes (cerberus.scanning.fold), so
        # a batch runs them on the texts as written (`as_written`).
        # Unicode tag characters are invisible and spell ASCII the model can read.
        Rule("invisible_characters", _runs(_TAGS), as_written=True),
        # Zero-width and bidi controls between letters hide or reorder text from the reader;
        # so do the default-ignorable characters no text uses (deprecated, unassigned).
        Rule("invisible_characters", _runs(_NEVER_IN_TEXT), as_written=True),
        Rule("invisible_characters", _runs(_BIDI), as_written=True),
        Rule(
            "invisible_characters",
            "(?:[A-Za-z]\ufeff|\u200d[A-Za-z])" + _WORD + "*",
            as_written=True,
        ),
        # Those with a use next to the characters of some scripts (emoji, CJK, Arabic,
        # Hebrew, Hangul, Mongolian, musical or shorthand notation) have none inside an ASCII
        # word or number, where they split a value or an instruction.
        Rule(
            "invisible_characters",
            "[A-Za-z0-9]"
            + _INVISIBLE
            + "*"
            + _IN_A_WORD
            + _INVISIBLE
            + "*[A-Za-z0-9]"
            + _WORD
            + "*",
            as_written=True,
        ),
        # A soft hyphen marks where a word may break (`Donau\u00addampf`); numbers have none.
        Rule(
            "invisible_characters",
            "(?:[0-9]" + _INVISIBLE + "*\u00ad|\u00ad" + _INVISIBLE + "*[0-9])" + _WORD + "*",
            as_written=True,
        ),
        Rule(
            "model_markup",
            r"(?im)</?(?:important|system|instructions?|admin|assistant|secret|hidden)\s*>"
            r"|<\|im_(?:start|end)\|>|\[/?INST\]|<<SYS>>|^\s*#{2,}\s*(?:system|instruction)",
        ),
        # Unbounded, the comment's own text checked by the validator: RE2 compiled the
        # `.{0,1000}?` this had into a 16,000-instruction program, 1.9 MiB for each scanner
        # holding it (two in a process with the full policy set), and a comment padded past
        # 1,000 characters went unseen.
        Rule("model_markup", r"(?is)<!--.*?" + _TO_THE_MODEL + r".*?-->", _comment_to_the_model),
        # Unbounded for the same reason as the two above, and more: in the one set that scans
        # for every detector at once, `[^>]{0,200}` counted from each `<` and a letter, and
        # the counts combined with every other rule's into DFA states without end. A MB of
        # varied text (minified code, random ids) scanned at ~1 MB/s and grew the process by
        # ~60 MiB of RE2 cache (docs/benchmarks.md); a longer tag only hides more.
        Rule(
            "model_markup",
            r"(?i)<[a-z]+[^>]*(?:display\s*:\s*none|visibility\s*:\s*hidden"
            r"|font-size\s*:\s*0|opacity\s*:\s*0[;\"'])",
        ),
    ),
}
