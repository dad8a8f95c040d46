"""The persona's speech style: a pure ``str -> str`` transform driven by rules.

The rules are the ``style:`` section of a persona file (:class:`StyleRules`). The
transform works on one sentence at a time, so it suits streamed replies; text with
several sentences is split and each sentence is transformed on its own.

Per sentence, in this order:

1. curly apostrophes become straight ones, surrounding whitespace goes;
2. ``phrases``: ordered literal or regex rewrites (``^``/``$`` are the sentence's ends);
3. the sentence is split into word / space / punctuation tokens, and then
   ``contractions`` and ``words`` (one-word maps), ``emphasis`` (tripling),
   ``drop_articles`` and ``drop_auxiliaries`` work on word tokens;
4. ``question_suffix`` replaces the final ``?`` (never added twice);
5. the first word is capitalised;
   (steps 2-5 repeat until nothing changes, at most 4 passes, so that a rewrite that
   enables another is not left half done and the transform is idempotent;)
6. ``fillers``: verbal habits added at random, seeded by the sentence itself, and
   only if the text shows none of them yet.

Word rules match whole words, case-insensitively, and keep the case of what they
replace. A capitalised word inside a sentence is taken for a name and left alone.
"""

from __future__ import annotations

import functools
import hashlib
import random
import re
from dataclasses import dataclass, field
from typing import Any

from companion import saferegex
from companion.sentences import split_sentences
from companion.settings import between, setting, short

# ---- settings ----------------------------------------------------------------------


def _valid_regex(value: Any) -> str | None:
    return saferegex.problem(value)


def _non_empty(value: Any) -> str | None:
    return None if str(value).strip() else "expected a non-empty string"


def _single_words(value: Any) -> str | None:
    for key in value:
        if len(_words_in(str(key))) != 1:
            return f"{short(str(key))} is not one word; put rules for several words in style.phrases"
    return None


def _word_list(value: Any) -> str | None:
    return _single_words({v: v for v in value})


_TEMPLATE_ESCAPE = re.compile(r"\\(g<([^>]*)>|\d{1,2}|.)", re.S)


def _template_problem(pattern: re.Pattern[str] | saferegex.regex.Pattern[str], template: str) -> str | None:
    """Why ``template`` would fail as ``pattern.sub``'s replacement, or None."""
    for m in _TEMPLATE_ESCAPE.finditer(template):
        ref = m.group(2) if m.group(2) is not None else m.group(1)
        if m.group(2) is not None or ref.isdigit():
            if ref.isdigit():
                if int(ref) > pattern.groups:
                    return f"refers to group {ref} but the regex has {pattern.groups} group(s)"
            elif ref not in pattern.groupindex:
                return f"refers to unknown group '{ref}'"
        elif ref.isascii() and ref.isalpha() and ref not in "abfnrtv":
            return f"has a bad escape '\\{ref}'"
    return None


@dataclass(frozen=True)
class PhraseRule:
    """Rewrite a literal phrase (whole words) or a regex match within a sentence."""

    literal: str | None = setting(None, check=_non_empty, doc="words to find (whole words)")
    regex: str | None = setting(None, check=_valid_regex, doc="a Python regex to find")
    replace: str = setting("", doc="replacement; with regex, \\1 and \\g<name> refer to groups")
    ignore_case: bool = setting(True, doc="match regardless of case")

    def __post_init__(self) -> None:
        if (self.literal is None) == (self.regex is None):
            raise ValueError("expected exactly one of 'literal' or 'regex'")
        if self.regex is not None:
            problem = _template_problem(self.pattern, self.replace)
            if problem:
                raise ValueError(f"replace {problem}")
            slow = saferegex.check_speed(self.regex, self.ignore_case)
            if slow:
                raise ValueError(f"regex {short(self.regex)} is {slow}")

    @property
    def pattern(self) -> re.Pattern[str] | saferegex.regex.Pattern[str]:
        if self.regex is not None:
            return saferegex.compile_rule(self.regex, self.ignore_case)
        assert self.literal is not None
        words = r"\s+".join(re.escape(w) for w in _normalise(self.literal).split())
        return _compile(rf"(?<!\w){words}(?!\w)", self.ignore_case)

    def apply(self, sentence: str) -> str:
        def swap(m: Any) -> str:
            new = m.expand(self.replace) if self.regex is not None else self.replace
            return _like(m.group(0), new)

        if self.regex is not None:  # from a persona file: bounded in time
            return saferegex.sub(self.regex, self.ignore_case, swap, sentence)
        return self.pattern.sub(swap, sentence)


@functools.lru_cache(maxsize=1024)
def _compile(regex: str, ignore_case: bool) -> re.Pattern[str]:
    return re.compile(regex, re.IGNORECASE if ignore_case else 0)


@dataclass(frozen=True)
class Emphasis:
    """Tripling for emphasis: "very good" -> "good good good"."""

    words: tuple[str, ...] = setting(
        (), check=_word_list, doc="repeated after an intensifier, or when alone in a clause"
    )
    intensifiers: tuple[str, ...] = setting((), check=_word_list, doc="'very', 'really': dropped")
    strong: dict[str, str] = setting({}, check=_single_words, doc="always repeated, as the given word: amazing: amaze")
    times: int = setting(3, check=between(2, 5), doc="how many times the word is said")


@dataclass(frozen=True)
class Habit:
    """One verbal habit: how often (at full intensity) and the lines it uses."""

    rate: float = setting(0.0, check=between(0, 1), doc="chance per sentence at intensity 1")
    lines: tuple[str, ...] = setting((), doc="what is said; one is picked per use")


@dataclass(frozen=True)
class Fillers:
    """Nervous verbal habits, added at random but the same way for the same sentence."""

    intensity: float = setting(0.0, check=between(0, 1), doc="0 = never, 1 = at each habit's rate")
    seed: int = setting(0, doc="with the sentence text, decides where habits show")
    openers: Habit = field(default_factory=Habit)
    """Said before the sentence: "Okay, so", "Right,"."""
    interruptions: Habit = field(default_factory=Habit)
    """The sentence starts, breaks off and restarts: "We should— sorry, we should..."."""
    asides: Habit = field(default_factory=Habit)
    """Tacked on the end of a statement: "..., which is fine"."""
    closers: Habit = field(default_factory=Habit)
    """A short sentence after: "Right." (must end in . ! or ?)."""

    def __post_init__(self) -> None:
        for line in self.closers.lines:
            if not line.rstrip().endswith((".", "!", "?")):
                raise ValueError(f"closers.lines: '{line}' must end with '.', '!' or '?'")


@dataclass(frozen=True)
class StyleRules:
    """Declarative style rules from a persona file's ``style:`` section."""

    phrases: tuple[PhraseRule, ...] = setting((), doc="ordered rewrites, applied first")
    contractions: dict[str, str] = setting({}, check=_single_words, doc="don't: 'no'")
    words: dict[str, str] = setting({}, check=_single_words, doc="word map, after contractions")
    emphasis: Emphasis = field(default_factory=Emphasis)
    drop_articles: bool = setting(False, doc="leave out a, an, the")
    drop_auxiliaries: tuple[str, ...] = setting((), check=_word_list, doc="e.g. will, are")
    question_suffix: str | None = setting(None, check=_non_empty, doc="replaces a final '?'")
    capitalize: bool = setting(True, doc="capitalise the first word of each sentence")
    fillers: Fillers = field(default_factory=Fillers)


# ---- tokens ------------------------------------------------------------------------

_TOKEN = re.compile(r"(?P<w>[^\W_]+(?:['\-][^\W_]+)*)|(?P<s>\s+)|(?P<p>.)", re.S)
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})
ARTICLES = frozenset({"a", "an", "the"})

Token = tuple[str, str]
"""(kind, text); kind is 'w' (word), 's' (space) or 'p' (punctuation or anything else)."""


def _tokens(text: str) -> list[Token]:
    return [(m.lastgroup or "p", m.group()) for m in _TOKEN.finditer(text)]


def _words_in(text: str) -> list[str]:
    return [t for k, t in _tokens(text) if k == "w"]


def _normalise(text: str) -> str:
    return text.translate(_APOSTROPHES)


def _cap(word: str) -> str:
    head = word[:1].upper()
    return head + word[1:] if len(head) == 1 else word


def _like(original: str, new: str) -> str:
    """``new`` in the case of ``original`` (ALL CAPS, Capitalised, or as written)."""
    if len(original) > 1 and original.isupper():
        return new.upper()
    if original[:1].isupper():
        return _cap(new)
    return new


def _is_name(tokens: list[Token], i: int) -> bool:
    """A Capitalised word that is not the sentence's first word: leave it alone."""
    word = tokens[i][1]
    if not word[:1].isupper() or word.isupper() or word.lower().startswith("i'"):
        return False
    return any(k == "w" for k, _ in tokens[:i])


def _next_word(tokens: list[Token], i: int, step: int) -> int | None:
    """Index of the word next to ``i`` (only spaces between), or None."""
    j = i + step
    while 0 <= j < len(tokens) and tokens[j][0] == "s":
        j += step
    if 0 <= j < len(tokens) and tokens[j][0] == "w":
        return j
    return None


def _next_token(tokens: list[Token], i: int, step: int) -> int | None:
    j = i + step
    while 0 <= j < len(tokens) and tokens[j][0] == "s":
        j += step
    return j if 0 <= j < len(tokens) else None


def _remove(tokens: list[Token], i: int) -> None:
    """Remove word ``i`` and one space beside it."""
    if i + 1 < len(tokens) and tokens[i + 1][0] == "s":
        del tokens[i : i + 2]
    elif i > 0 and tokens[i - 1][0] == "s":
        del tokens[i - 1 : i + 1]
    else:
        del tokens[i]


# ---- word rules --------------------------------------------------------------------


def _map_words(tokens: list[Token], table: dict[str, str]) -> list[Token]:
    if not table:
        return tokens
    lookup = {_normalise(k).lower(): v for k, v in table.items()}
    out: list[Token] = []
    for i, (kind, text) in enumerate(tokens):
        new = lookup.get(text.lower()) if kind == "w" else None
        if new is None or _is_name(tokens, i):
            out.append((kind, text))
        elif new.strip():
            out.extend(_tokens(_like(text, new)))
        elif out and out[-1][0] == "s":  # mapped to nothing: drop it and its space
            out.pop()
    return out


def _emphasise(tokens: list[Token], rules: Emphasis) -> list[Token]:
    words = {w.lower() for w in rules.words}
    strong = {k.lower(): v for k, v in rules.strong.items()}
    boosts = {w.lower() for w in rules.intensifiers}
    if not (words or strong):
        return tokens
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        low = text.lower()
        if kind != "w" or (low not in words and low not in strong) or _is_name(tokens, i):
            i += 1
            continue
        base = strong.get(low, low)
        before, after = _next_word(tokens, i, -1), _next_word(tokens, i, 1)
        if any(j is not None and tokens[j][1].lower() in (low, base) for j in (before, after)):
            if low in strong:  # already repeated: "amazing amazing" -> "amaze amaze"
                tokens[i] = (kind, _like(text, base))
            i += 1
            continue
        boosted = before is not None and tokens[before][1].lower() in boosts
        prev_tok, next_tok = _next_token(tokens, i, -1), _next_token(tokens, i, 1)
        alone = (prev_tok is None or tokens[prev_tok][0] == "p") and (next_tok is None or tokens[next_tok][0] == "p")
        if low in strong or boosted or alone:
            rest = base.upper() if len(text) > 1 and text.isupper() else base
            tokens[i : i + 1] = _tokens(" ".join([_like(text, base)] + [rest] * (rules.times - 1)))
            before_len = len(tokens)
            while before is not None and tokens[before][1].lower() in boosts:  # "very very"
                if _is_name(tokens, before):
                    break
                _remove(tokens, before)
                before = _next_word(tokens, before, -1) if before > 0 else None
            i -= before_len - len(tokens)
        i += 1
    return tokens


def _drop(tokens: list[Token], drop: frozenset[str]) -> list[Token]:
    """Leave out words in ``drop`` that lead into another word (so "Yes, I will." keeps it)."""
    if not drop:
        return tokens
    keep: list[bool] = []
    for i, (kind, text) in enumerate(tokens):
        gone = (
            kind == "w"
            and text.lower() in drop
            and not _is_name(tokens, i)
            and not (text == "A" and any(k == "w" for k, _ in tokens[:i]))  # "plan A"
            and _next_word(tokens, i, 1) is not None
        )
        keep.append(not gone)
    out = list(tokens)
    for i in reversed(range(len(tokens))):
        if not keep[i]:
            _remove(out, i)
    return out


def _capitalise_first(tokens: list[Token]) -> None:
    for i, (kind, text) in enumerate(tokens):
        if kind == "w":
            if text.islower():
                tokens[i] = (kind, _cap(text))
            return


# ---- questions ---------------------------------------------------------------------

_ENDS = "?!.…"


def _last_clause_has_words(text: str) -> bool:
    return any(c.isalnum() for c in re.split(r"[.!?…]", text)[-1])


def _question(sentence: str, suffix: str) -> str:
    """End a question with ``suffix`` instead of its '?'; never twice."""
    i = len(sentence)
    while i > 0 and sentence[i - 1] in _ENDS:
        i -= 1
    if "?" not in sentence[i:]:
        return sentence
    body = sentence[:i]
    if not _last_clause_has_words(body):
        return sentence  # no words in the question itself: "Yes. ... ?"
    core = suffix.rstrip(_ENDS)
    if core and body.lower().endswith(core.lower()):
        return body + suffix[len(core) :]
    return body.rstrip(" \t\r\n,;:") + suffix


# ---- fillers -----------------------------------------------------------------------

_LOWER_STARTS = frozenset(
    """a an the this that these those it it's its we we're we'll we've you you're you'll
    you've your they they're their there there's here here's he she his her my our so and
    but or if when what what's where why how who let's let just well now then maybe look
    listen no yes not don't do does did is are was can could would should will all some
    one oh okay right hello hi hey good goodbye bye sorry thanks thank please everything
    nothing something everyone someone nobody anyone any each every both first actually
    honestly basically sure fine great go come take give try wait stop put make use turn
    open close press push pull check keep tell ask think remember find get see hold move
    start run pick bring leave call add mix pour cut sorry perhaps probably really also
    only never always sometimes usually most many much more once today tomorrow yesterday
    in on at for with from to of by after before""".split()
)


def _soften(sentence: str) -> str:
    """Lower the first word when it is a common word (names and 'I' keep their capital)."""
    m = _TOKEN.match(sentence)
    if m and m.lastgroup == "w" and m.group().lower() in _LOWER_STARTS and not m.group().isupper():
        return m.group().lower() + sentence[m.end() :]
    return sentence


def _seed(seed: int, text: str) -> int:
    digest = hashlib.blake2b(f"{seed}\x00{text}".encode("utf-8", "surrogatepass"), digest_size=8)
    return int.from_bytes(digest.digest(), "big")


def _fillers_present(f: Fillers, sentences: list[str]) -> bool:
    """Does the text already show a habit? Then no more are added (keeps it idempotent)."""
    text = " ".join(s.lower() for s in sentences)
    starts = [0]
    for s in sentences[:-1]:
        starts.append(starts[-1] + len(s) + 1)
    for line in f.openers.lines:
        line = line.strip().lower()
        if line and any(text.startswith(line, at) for at in starts):
            return True
    ends = [s.lower() for s in sentences]
    for line in f.closers.lines:
        line = line.strip().lower()
        if any(s == line or s.endswith(" " + line) for s in ends) or any(text.startswith(line, at) for at in starts):
            return True
    if any(f", {a.strip().lower()}" in text for a in f.asides.lines if a.strip()):
        return True
    return bool(f.interruptions.lines) and "\u2014 " in text


def _garnish(f: Fillers, sentence: str) -> str:
    rng = random.Random(_seed(f.seed, sentence))

    def use(habit: Habit) -> str | None:
        hit = rng.random() < f.intensity * habit.rate  # always draw: decisions stay stable
        line = rng.choice(habit.lines) if habit.lines else None
        return line if hit else None

    out = sentence
    spans = [m.span() for m in _TOKEN.finditer(out) if m.lastgroup == "w"]
    cut = rng.randint(1, 3)
    line = use(f.interruptions)
    if line is not None and len(spans) >= cut + 2:
        restart = _soften(out[spans[0][0] :])
        line = line.strip().rstrip(",")
        out = f"{out[: spans[cut - 1][1]]}\u2014 " + (f"{line}, {restart}" if line else restart)
    line = use(f.asides)
    body = out.rstrip(_ENDS)
    if line is not None and _last_clause_has_words(body) and "?" not in out[len(body) :]:
        out = f"{body.rstrip(',;: ')}, {line.strip()}{out[len(body) :] or '.'}"
    line = use(f.openers)
    if line is not None and line.strip():
        line = line.strip()
        out = f"{line} {out}" if line.endswith((".", "!", "?")) else f"{line} {_soften(out)}"
    line = use(f.closers)
    if line is not None:
        out = f"{out if out.endswith(tuple(_ENDS)) else out + '.'} {line.strip()}"
    return out


# ---- the transform -----------------------------------------------------------------


def _split_lines(text: str) -> list[list[str]]:
    """Sentences per non-blank line, by the project's one sentence splitter."""
    lines = [split_sentences(line, clean=False) for line in text.splitlines()]
    return [line for line in lines if line]


def _rewrite(rules: StyleRules, text: str) -> str:
    for rule in rules.phrases:
        text = rule.apply(text)
    tokens = _tokens(text)
    tokens = _map_words(tokens, rules.contractions)
    tokens = _map_words(tokens, rules.words)
    tokens = _emphasise(tokens, rules.emphasis)
    drop = frozenset(w.lower() for w in rules.drop_auxiliaries)
    tokens = _drop(tokens, drop | ARTICLES if rules.drop_articles else drop)
    text = "".join(t for _, t in tokens).strip()
    if rules.question_suffix:
        text = _question(text, rules.question_suffix)
    if rules.capitalize:
        tokens = _tokens(text)
        _capitalise_first(tokens)
        text = "".join(t for _, t in tokens)
    return text


_MAX_PASSES = 4


def _one(rules: StyleRules, sentence: str, garnish: bool) -> str:
    text = _normalise(sentence.strip())
    for _ in range(_MAX_PASSES):  # a rewrite can enable another ("the do I?" -> "do I?" -> "I?")
        new = _rewrite(rules, text)
        if new == text:
            break
        text = new
    if garnish and rules.fillers.intensity > 0 and any(c.isalnum() for c in text):
        text = _garnish(rules.fillers, text)
    return text if text.strip() else sentence.strip()


def transform(rules: StyleRules, sentence: str) -> str:
    """Say ``sentence`` (one or more sentences) the persona's way."""
    if not sentence.strip():
        return sentence
    lines = _split_lines(sentence)
    garnish = not _fillers_present(rules.fillers, [_normalise(p) for line in lines for p in line])
    return "\n".join(" ".join(_one(rules, p, garnish) for p in line) for line in lines)
