"""Which turns a fact answers: a small rule-based intent matcher.

Like Home Assistant's local intents before its LLM: the questions a persona fact or
the memory of the user answers ("what's your name", "where are you from", "what is
my name", "goodbye", "forget me") are recognised here and answered directly; every
other turn goes to the language model. Rules work on :func:`companion.memory.text.
normalize`'s output, so they hold for lowercase, unpunctuated transcripts.

The rules look for the *shape* of a question (a question word or an auxiliary, who
it is about — you or me — and a topic word), not for fixed sentences, so that
paraphrases match; tests/test_memory_intents.py holds the tables.
"""

from __future__ import annotations

import enum
import re

from companion.memory.text import normalize


class Intent(enum.Enum):
    NAME = "name"
    KIND = "kind"
    HOME = "home"
    JOB = "job"
    BEST_FRIEND = "best_friend"
    LIKES = "likes"
    USER_NAME = "user_name"
    USER_LIKES = "user_likes"
    USER_MEMORY = "user_memory"
    INTRODUCE = "introduce"
    REMEMBER = "remember"
    FAREWELL = "farewell"
    FORGET_ME = "forget_me"
    FORGET_THAT = "forget_that"


_ASK = r"(?:what|whats|which|who|where|how|tell me|do|does|did|can|could|have|has|are|is|say|remind me)"
"""A question or a request for information starts (or contains) one of these."""
_ABOUT_YOU = r"(?:you|your|yours|yourself)"


def _rx(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns))


_FORGET_ME = _rx(
    r"^(?:(?:can|could|would|will) you |i want you to |i would like you to |you should |you can )?"
    r"(?:forget|erase|delete|wipe|clear) (?:about )?(?:me|everything|all|who i am|my name|what i (?:told|said|say)"
    r"|all (?:about )?me|everything (?:about me|i (?:told|said)(?: you)?)|your memory"
    r"|(?:my|all) (?:data|memories|memory))",
    r"^(?:do not|never) remember (?:me|anything)",
)
_FORGET_THAT = _rx(
    r"^(?:(?:can|could|would|will) you |i want you to |you can )?(?:forget|delete|erase|scratch) "
    r"(?:that|this|what i (?:just )?(?:said|told you)|the last thing(?: i said)?)(?: please)?$",
    r"^(?:do not|never) remember that",
)
_FAREWELL = _rx(
    r"^(?:(?:good ?)?bye(?: bye)?|goodbye|good ?night|farewell|see you(?: later| soon| tomorrow| around)?|see ya"
    r"|talk (?:to you )?(?:later|soon|tomorrow)|later|i (?:have|got|need) to go(?: now)?"
    r"|i am (?:going|off)(?: to bed| now)?"
    r"|i am leaving|bye for now|catch you later|so long|night night|have a good (?:day|night|one))"
    r"(?: (?:for now|then|my friend|friend|buddy|everyone|bye|see you(?: later| soon| tomorrow)?|goodbye"
    r"|take care|now))*$",
)
_USER_NAME = _rx(
    rf"^{_ASK}\b.*\bmy name\b",
    r"\bwho am i\b(?! (?:talking|speaking|chatting) (?:to|with))",
    r"\bwhat (?:am i called|do you call me|is it that i am called)\b",
    r"\b(?:know|remember|recall)\b.*\b(?:who i am|what i am called|what to call me|what my name is|my name)\b",
    r"\bwhat (?:did|do) i (?:say|tell you) my name (?:is|was)\b",
)
_USER_LIKES = _rx(
    rf"^{_ASK}\b.*\bi\b.*\b(?:like|love|enjoy|adore|am into)\b",
    rf"^{_ASK}\b.*\bmy (?:favorite|hobby|hobbies|passion|interests?)\b",
    r"\bwhat (?:makes me happy|am i into)\b",
)
_USER_MEMORY = _rx(
    r"\bwhat (?:did|do) i (?:ask|tell|want) you to remember\b",
    r"\bwhat (?:do|did) you (?:remember|know|recall)(?: about me)?$",
    r"\b(?:what|tell me what) (?:do )?you (?:remember|know) about me\b",
    r"\bwhat (?:have|did) i told you\b",
    r"\bwhat did i (?:tell|say to) you (?:before|earlier|last time)\b",
)
_REMEMBER = re.compile(
    r"^(?:(?:can|could|would|will) you |i want you to |you should |try to )?"
    r"(?:remember|do not forget|never forget|note|make a note) (?:that )?\S+ \S"
)
_INTRODUCE = _rx(
    r"\bmy name is \w+",
    r"^(?:you can )?call me \w+",
    r"\bi am called \w+",
    r"\bi go by \w+",
)
_NAME = _rx(
    rf"\b{_ASK}\b.*\byour (?:name|names)\b",
    r"^your name$",
    r"\bwho (?:are you|is this|am i (?:talking|speaking|chatting) (?:to|with))\b",
    r"\bwhat (?:do|should|can|shall|may) (?:i|we|people|they|others) call you\b",
    r"\bwhat do (?:they|people) call you\b",
    r"\bwhat are you called\b",
    r"\bwho (?:might|may) you be\b",
    r"\bintroduce yourself\b",
    r"\b(?:do|have) you (?:have|got) a name\b",
    r"\bmy name is \w+.*\b(?:what is yours|and yours|how about you|what about you)$",
)
_KIND = _rx(
    r"\bare you (?:a |an |really a |really an |actually a |just a )?(?:real |living )?"
    r"(?:human|person|people|man|woman|boy|girl"
    r"|robot|machine|alien|computer|ai|artificial|animal|creature)\b",
    r"^what are you$",
    r"\bwhat (?:kind|sort|type) of (?:\w+ )?(?:are you|is this)\b",
    r"\bwhat exactly are you\b",
    r"\bwhat (?:species|race|creature) are you\b",
)
_HOME = _rx(
    r"\bwhere (?:are|do|did|were|is)? ?(?:you|your)\b.*"
    r"\b(?:from|live|living|come|came|born|grow|grew|raised|home|stay|staying)\b",
    r"\bwhere you (?:from|live|come)\b",
    r"\b(?:which|what) (?:planet|world|place|country|city|town)\b.*\b(?:you|your)\b",
    r"\b(?:what|where) is your (?:home|planet|world|hometown|home town|home planet|homeworld|house)\b",
    r"\bwhere is home(?: for you)?\b",
    r"\bwhere do you call home\b",
    r"\btell me about your (?:home|planet|world)\b",
)
_JOB = _rx(
    r"^(?:so )?what (?:do|did) you do(?: here| all day| for (?:a living|work|your job|money))?$",
    r"\bwhat (?:is|was|are) your (?:job|work|occupation|profession|role|purpose|function|career|trade)\b",
    r"\bwhat (?:kind|sort|type) of (?:work|job)\b.*\byou\b",
    r"\bwhat (?:work|job) do you\b",
    r"\bwhat do you (?:do )?(?:for a living|for work|work as|do for work)\b",
    r"\b(?:do|have) you (?:have|got) a job\b",
    r"\bwhat are you for\b",
    r"\bwhere do you work\b",
    r"\btell me about your (?:job|work)\b",
    r"\bwhat do you work on\b",
)
_BEST_FRIEND = _rx(
    rf"\b{_ASK}\b.*\byour (?:\w+ )?(?:friend|buddy|pal|mate)s?\b",
    r"^your (?:best |closest )?friends?$",
    r"\b(?:do|have) you (?:have|got) (?:any |a )?(?:best |close |good )?(?:friend|buddy|pal)s?\b",
    r"\bwho (?:are|is) (?:your )?(?:best |closest )?friends?\b",
    r"\bwho do you (?:like|love|care about) (?:most|the most|best)\b",
)
_LIKES = _rx(
    r"\bwhat (?:do|does|did) you (?:like|love|enjoy|adore)\b(?!.* me\b)",
    r"\bwhat do you do for fun\b",
    r"\b(?:what is|what are|tell me) your "
    r"(?:favorite (?:thing|things|activity|pastime|hobby)|hobby|hobbies|passion|interests?)\b",
    r"\bwhat are you (?:into|interested in|passionate about)\b",
    r"\bwhat makes you happy\b",
    r"\b(?:do|have) you (?:have|got) (?:any |a )?(?:hobby|hobbies)\b",
)

_RULES: tuple[tuple[Intent, re.Pattern[str]], ...] = (
    (Intent.FORGET_ME, _FORGET_ME),
    (Intent.FORGET_THAT, _FORGET_THAT),
    (Intent.FAREWELL, _FAREWELL),
    (Intent.USER_MEMORY, _USER_MEMORY),
    (Intent.USER_NAME, _USER_NAME),
    (Intent.USER_LIKES, _USER_LIKES),
    (Intent.REMEMBER, _REMEMBER),
    (Intent.NAME, _NAME),
    (Intent.BEST_FRIEND, _BEST_FRIEND),
    (Intent.KIND, _KIND),
    (Intent.HOME, _HOME),
    (Intent.JOB, _JOB),
    (Intent.LIKES, _LIKES),
    (Intent.INTRODUCE, _INTRODUCE),
)

MAX_WORDS = 14
"""Longer turns are conversation, not a fact question: they go to the LLM (a story that
mentions 'your name' is not a question about it). Forget/remember have no limit."""


def match_intent(text: str, addressed: tuple[str, ...] = ()) -> Intent | None:
    """The intent of one user turn, or None for the LLM. ``addressed``: the robot's names."""
    t = normalize(text, addressed)
    if not t:
        return None
    n = len(t.split())
    for intent, rule in _RULES:
        if n > MAX_WORDS and intent not in (Intent.FORGET_ME, Intent.FORGET_THAT, Intent.REMEMBER):
            continue
        if rule.search(t):
            return intent
    return None
