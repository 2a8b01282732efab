"""The narrator's one vocabulary table: the words that name each of the Analyst-Interpreter paper's four moods.

Both sides use it: the template narrator picks the words it writes from here, and the check on
LLM text asks whether a narrative names the primary mood through any of these words. Keeping a
single table means a word the template may write is always a word the check accepts.

Each mood lists adjectives ("a mellow track") and nouns ("a hint of calm"); the check also
accepts the usual inflections (-s, -ed, -ing, -ly, -ness). No word belongs to two moods.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from moodmusic.mood import SEED000_MOODS


@dataclass(frozen=True)
class MoodWords:
    """The words of one mood in MOOD_WORDS: adjectives and nouns the template writes, and `extra` words only the check accepts."""

    adjectives: tuple[str, ...]
    nouns: tuple[str, ...]
    extra: tuple[str, ...] = ()  # accepted by the check, never written by the template

    @property
    def all(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.adjectives + self.nouns + self.extra))


MOOD_WORDS: dict[str, MoodWords] = {
    "chill": MoodWords(
        adjectives=("chill", "relaxed", "mellow", "laid-back", "calm", "easygoing", "soothing", "tranquil", "serene", "peaceful"),
        nouns=("chill", "calm", "ease", "serenity", "tranquility", "mellowness"),
        extra=("chilled", "chillout", "relaxing", "relax", "calming", "soothe", "peace", "restful", "dreamy", "lounge"),
    ),
    "energy": MoodWords(
        adjectives=("energetic", "driving", "intense", "propulsive", "high-energy", "vigorous", "dynamic", "electric", "charged", "powerful"),
        nouns=("energy", "drive", "intensity", "momentum", "power"),
        extra=("punch", "energise", "energize", "energised", "energized", "energising", "energizing", "adrenaline", "pulsing", "pounding", "fierce", "explosive", "thrilling"),
    ),
    "emotion": MoodWords(
        adjectives=("emotional", "poignant", "wistful", "melancholic", "tender", "heartfelt", "bittersweet", "soulful", "yearning", "reflective"),
        nouns=("emotion", "longing", "melancholy", "tenderness", "wistfulness"),
        extra=("heartache", "emotive", "emotionally", "sentimental", "nostalgic", "nostalgia", "sorrow", "sorrowful", "sad", "sadness", "aching", "touching", "heart-melter"),
    ),
    "upbeat": MoodWords(
        adjectives=("upbeat", "cheerful", "bright", "joyful", "sunny", "buoyant", "uplifting", "bouncy", "happy", "feel-good"),
        nouns=("joy", "cheer", "brightness", "sunshine", "buoyancy", "happiness"),
        extra=("joyous", "playful", "pick-me-up", "optimistic", "exuberant", "sunlit", "carefree", "groovy", "danceable"),
    ),
}

# Inflections the check accepts after any listed word.
_SUFFIX = r"(?:s|es|ed|ing|ly|ness)?"


def _pattern(words: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = sorted((re.escape(w) for w in words), key=len, reverse=True)
    return re.compile(r"(?<![\w-])(?:" + "|".join(alternatives) + r")" + _SUFFIX + r"(?![\w-])", re.IGNORECASE)


_PATTERNS: dict[str, re.Pattern[str]] = {mood: _pattern(words.all) for mood, words in MOOD_WORDS.items()}

assert set(MOOD_WORDS) == set(SEED000_MOODS), "one entry per seed-000 mood"


def synonyms(mood: str) -> tuple[str, ...]:
    """Every word that names `mood` (the mood's own name first)."""
    return MOOD_WORDS[mood].all


def names_mood(text: str, mood: str) -> bool:
    """Whether `text` names `mood` or one of its synonyms (whole words, any case, simple inflections)."""
    return _PATTERNS[mood].search(text) is not None


def moods_named(text: str) -> set[str]:
    """The seed-000 moods that `text` names."""
    return {mood for mood, pattern in _PATTERNS.items() if pattern.search(text)}


__all__ = ["MOOD_WORDS", "MoodWords", "moods_named", "names_mood", "synonyms"]
