"""Intent and memory rules, as tables: paraphrases and tiny.en-style transcripts."""

from __future__ import annotations

import pytest

from companion.memory.extract import DISLIKE, LIKE, NAME, NOTE, Learned, extract
from companion.memory.intents import Intent, match_intent
from companion.memory.text import flip_person, normalize, third_person

INTENTS = [
    # the robot's name
    ("What's your name?", Intent.NAME),
    ("whats ur name", Intent.NAME),
    ("um so what is your name then", Intent.NAME),
    ("rocky what do people call you", Intent.NAME),
    ("who are you", Intent.NAME),
    ("tell me your name please", Intent.NAME),
    ("do you have a name", Intent.NAME),
    ("what should we call you", Intent.NAME),
    ("my name is priya what is yours", Intent.NAME),
    # what it is
    ("are you human", Intent.KIND),
    ("Are you a real person?", Intent.KIND),
    ("are you a robot or something", Intent.KIND),
    ("what are you", Intent.KIND),
    ("what kind of creature are you", Intent.KIND),
    # home
    ("where are you from", Intent.HOME),
    ("where you from", Intent.HOME),
    ("Where were you born?", Intent.HOME),
    ("what planet are you from", Intent.HOME),
    ("where is your home", Intent.HOME),
    ("tell me about your home planet", Intent.HOME),
    ("where did you grow up", Intent.HOME),
    # job
    ("what do you do", Intent.JOB),
    ("so what do you do for a living", Intent.JOB),
    ("what is your job", Intent.JOB),
    ("whats your occupation", Intent.JOB),
    ("what kind of work do you do", Intent.JOB),
    ("do you have a job", Intent.JOB),
    # friends
    ("who is your best friend", Intent.BEST_FRIEND),
    ("whos ur best friend", Intent.BEST_FRIEND),
    ("do you have any friends", Intent.BEST_FRIEND),
    ("who are your friends", Intent.BEST_FRIEND),
    # likes
    ("what do you like", Intent.LIKES),
    ("what do you do for fun", Intent.LIKES),
    ("what are your hobbies", Intent.LIKES),
    ("what do you enjoy doing", Intent.LIKES),
    # the user
    ("what is my name", Intent.USER_NAME),
    ("whats my name", Intent.USER_NAME),
    ("Do you remember my name?", Intent.USER_NAME),
    ("do you know who i am", Intent.USER_NAME),
    ("who am i", Intent.USER_NAME),
    ("what do i like", Intent.USER_LIKES),
    ("do you remember what i love", Intent.USER_LIKES),
    ("what are my hobbies", Intent.USER_LIKES),
    ("whats my favourite food", Intent.USER_LIKES),
    ("what do you know about me", Intent.USER_MEMORY),
    ("what did i tell you to remember", Intent.USER_MEMORY),
    # statements, requests
    ("my name is priya", Intent.INTRODUCE),
    ("call me tom", Intent.INTRODUCE),
    ("remember that my sister is called ana", Intent.REMEMBER),
    ("please remember my birthday is in june", Intent.REMEMBER),
    ("goodbye", Intent.FAREWELL),
    ("okay bye rocky", Intent.FAREWELL),
    ("Good night, see you tomorrow.", Intent.FAREWELL),
    ("i have to go now bye", Intent.FAREWELL),
    ("forget me", Intent.FORGET_ME),
    ("please forget everything about me", Intent.FORGET_ME),
    ("can you forget what i told you", Intent.FORGET_ME),
    ("delete my data", Intent.FORGET_ME),
    ("forget that", Intent.FORGET_THAT),
    ("forget what i just said", Intent.FORGET_THAT),
]

FOR_THE_MODEL = [
    "tell me a joke",
    "what is the weather like outside",
    "what do you think about humans",
    "do you like music",
    "what is your favorite color",
    "my best friend is sam",
    "i love pizza",
    "i am tired",
    "your name is funny",
    "where are you going",
    "how do you say goodbye in french",
    "do you ever forget things",
    "what time is it",
    "can you fix my bike",
    "what do you like about me",
    "So today I went to the market with my sister and we bought apples bread and a big bag of carrots "
    "and then I asked her what is your name",
]


@pytest.mark.parametrize(("text", "intent"), INTENTS)
def test_fact_questions_are_recognised_in_many_phrasings(text: str, intent: Intent) -> None:
    assert match_intent(text, ("rocky",)) is intent


@pytest.mark.parametrize("text", FOR_THE_MODEL)
def test_conversation_goes_to_the_model(text: str) -> None:
    assert match_intent(text, ("rocky",)) is None


LEARN = [
    ("my name is priya", [Learned(NAME, "Priya")]),
    ("My name's Priya Sharma.", [Learned(NAME, "Priya Sharma")]),
    ("hi im marcus", [Learned(NAME, "Marcus")]),
    ("Hi Rocky, I'm Marcus.", [Learned(NAME, "Marcus")]),
    ("call me tom", [Learned(NAME, "Tom")]),
    ("i am tired", []),
    ("I'm bored", []),
    ("i am a teacher", []),
    ("i am going home", []),
    ("my name is leo and i love jazz", [Learned(NAME, "Leo"), Learned(LIKE, "jazz", "love")]),
    ("i really love rock climbing", [Learned(LIKE, "rock climbing", "love")]),
    ("I like cats a lot.", [Learned(LIKE, "cats", "like")]),
    ("i enjoy hiking", [Learned(LIKE, "hiking", "enjoy")]),
    ("my favourite colour is blue", [Learned(LIKE, "blue", "favorite colour")]),
    ("i hate mondays", [Learned(DISLIKE, "mondays")]),
    ("i love you", []),
    ("what do i love", []),
    ("do you like pizza", []),
    ("remember that my sister is called ana", [Learned(NOTE, "my sister is called ana")]),
    ("please don't forget my keys are in the drawer", [Learned(NOTE, "my keys are in the drawer")]),
]


@pytest.mark.parametrize(("text", "learned"), LEARN)
def test_what_the_user_says_about_themselves_is_learned(text: str, learned: list[Learned]) -> None:
    assert extract(text, ("rocky",)) == learned


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hey Rocky, what's your name?", "what is your name"),
        ("uh so whats ur job", "what is your job"),
        ("Where're you from?!", "where're you from"),
        ("okay", ""),
    ],
)
def test_transcripts_are_normalised(text: str, expected: str) -> None:
    assert normalize(text, ("rocky",)) == expected


def test_answers_speak_to_the_user_and_the_prompt_about_them() -> None:
    assert flip_person("my sister is called ana") == "your sister is called ana"
    assert third_person("my sister is called ana") == "their sister is called ana"
