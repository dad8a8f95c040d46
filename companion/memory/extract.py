"""What a user turn tells the robot about the user, found by rules.

The embedded 135M model cannot be trusted to pull "the user's name is Priya" out of a
sentence, so extraction is rules over :func:`~companion.memory.text.normalize`'s
output: "my name is X" / "call me X" / "I'm X" (when X looks like a name), "I love /
like / enjoy X", "my favourite X is Y", "I hate X", and "remember (that) X".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from companion.memory.text import normalize

NAME = "name"
LIKE = "like"
DISLIKE = "dislike"
NOTE = "note"


@dataclass(frozen=True)
class Learned:
    """One thing the user said about themselves."""

    kind: str
    """NAME, LIKE, DISLIKE or NOTE."""
    value: str
    """The name, the liked thing, or the note in the user's words (first person)."""
    verb: str = ""
    """For likes: 'love', 'like', 'enjoy', or 'favorite <thing>' ("my favourite colour is blue")."""


_NOT_NAMES = frozenset(
    """a an the not so very really just here there back home fine good great okay ok well sorry sure glad happy
    sad tired hungry thirsty bored cold hot busy ready done sick ill lost late early new old alone awake asleep
    going trying looking doing feeling getting having coming leaving working talking thinking wondering sitting
    from in on at with of for to and or but if because about like that this it what who how why when where
    afraid scared worried excited curious confused interested human person man woman boy girl kid child adult
    robot friend student teacher doctor engineer nurse home right wrong all also still always never almost
    your you me my i we they he she him her them us one two three four five ten no yes yeah hello hi hey
    called named gonna going able allergic married single pregnant hungry bad nice cool awesome""".split()
)
_STOP_AFTER_NAME = _NOT_NAMES | frozenset("what nice please thanks thank whats is are and".split())
_LIKE = re.compile(
    r"\bi (?:really |truly |absolutely |just |also |totally |do |very much |kind of |sort of )*"
    r"(love|like|enjoy|adore|am into|am a big fan of|am a fan of|am passionate about|am crazy about)"
    r" (?!you\b|it\b|that\b|this\b|them\b|to think\b|when\b|how\b|the way\b)(.+)"
)
_FAVOURITE = re.compile(r"\bmy (?:favorite|most loved) (\w+(?: \w+)?) (?:is|are) (.+)")
_DISLIKE = re.compile(
    r"\bi (?:really |truly |absolutely |just |also )*(hate|dislike|can not stand|do not like|do not enjoy) "
    r"(?!you\b|it\b|that\b|this\b|them\b)(.+)"
)
_NOTE = re.compile(
    r"^(?:(?:can|could|would|will) you |i want you to |you should |try to )?"
    r"(?:remember|do not forget|never forget|note|make a note)(?: that)? (.+)"
)
_NAME_PATTERNS = (
    re.compile(r"\bmy names? (?:is )?(\w+(?: \w+)?)"),
    re.compile(r"^(?:you can |you may |please )?call me (\w+(?: \w+)?)"),
    re.compile(r"\bi am called (\w+(?: \w+)?)"),
    re.compile(r"\bi go by (\w+(?: \w+)?)"),
    re.compile(r"\bthe name is (\w+(?: \w+)?)"),
)
_I_AM = re.compile(
    r"(?:^|\b(?:there|hi|hello|hey|and|so|oh|well|okay|yes|yeah)\s)"
    r"i am (\w+)(?: (\w+))?(?: (?:and|from|here|by the way)\b.*)?$"
)
_CUT = re.compile(r"\b(?:and i|but i|and you|what about you|how about you|and what|what is|because|so i|which is)\b.*")
_TAIL = re.compile(r"\b(?:a lot|very much|so much|too|as well|more than anything|the most|really)$")
MAX_VALUE_WORDS = 8
_VERBS = {"love": "love", "adore": "love", "am crazy about": "love", "am passionate about": "love", "enjoy": "enjoy"}


def _clean(value: str) -> str:
    value = _CUT.sub("", value).strip()
    for _ in range(2):
        value = _TAIL.sub("", value).strip()
    return " ".join(value.split()[:MAX_VALUE_WORDS])


def _name(raw: str, original: str) -> str | None:
    ws = [w for w in raw.split() if w]
    if not ws or ws[0] in _NOT_NAMES:
        return None
    kept = [ws[0]]
    if len(ws) > 1 and ws[1] not in _STOP_AFTER_NAME and _looks_like_name(ws[1], original):
        kept.append(ws[1])
    if not _looks_like_name(kept[0], original):
        return None
    return " ".join(w.capitalize() for w in kept)


def _looks_like_name(word: str, original: str) -> bool:
    """Alphabetic, not a common word, and capitalised if the transcript capitalises names."""
    if not word.isalpha() or word in _NOT_NAMES or len(word) < 2:
        return False
    capitalised = re.findall(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]+\b", original.strip())
    if capitalised and not re.search(rf"\b{word[0].upper()}{re.escape(word[1:])}\b", original):
        return False
    return not (len(word) > 4 and word.endswith(("ing", "ed", "ly")))


def extract(text: str, addressed: tuple[str, ...] = ()) -> list[Learned]:
    """Everything ``text`` tells about the user, in order found."""
    t = normalize(text, addressed)
    found: list[Learned] = []
    note = _NOTE.search(t)
    if note:
        value = " ".join(note.group(1).split()[:24])
        return [Learned(NOTE, value)]
    for rule in _NAME_PATTERNS:
        m = rule.search(t)
        if m and (name := _name(m.group(1), text)):
            found.append(Learned(NAME, name))
            break
    else:
        m = _I_AM.search(t)
        if m and len(t.split()) <= 10:
            first, second = m.group(1), m.group(2) or ""
            if name := _name(f"{first} {second}".strip(), text):
                found.append(Learned(NAME, name))
    for clause in re.split(r"\b(?:and|but|also)\b(?= i\b)", t):
        dislike = _DISLIKE.search(clause)
        if dislike:
            if value := _clean(dislike.group(2)):
                found.append(Learned(DISLIKE, value))
            continue
        like = _LIKE.search(clause)
        asked = like and re.search(r"\b(?:what|which|do you|would you|did you)\b", clause[: like.start() + 1])
        if like and not asked and (value := _clean(like.group(2))):
            found.append(Learned(LIKE, value, _VERBS.get(like.group(1), "like")))
        fav = _FAVOURITE.search(clause)
        if fav and (value := _clean(fav.group(2))):
            found.append(Learned(LIKE, value, f"favorite {fav.group(1)}"))
    return found
