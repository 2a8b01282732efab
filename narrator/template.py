"""The embedded narrator: the Analyst-Interpreter paper's three outputs from phrase banks, no model needed.

It reads the whole analysis: the primary, secondary and tertiary of the Analyst-Interpreter paper's four moods with
their weights, the intensity from arousal, the quadrant (which colours the imagery and the visual
palette), and the timeline, when its first and last windows differ notably. The seed picks among
several phrasings for every slot (deterministic for a seed and an analysis); the text is plain,
2-3 sentences, and always names the primary mood (and the secondary one when its weight is at
least SECONDARY_NAMED) through the words of `narrator.words`.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from moodmusic.narrator.base import Narration
from moodmusic.narrator.words import MOOD_WORDS

if TYPE_CHECKING:
    from moodmusic.analysis import Analysis, MoodReading

SECONDARY_NAMED = 0.2  # the secondary mood is always named from this weight on
SECONDARY_HINTED = 0.08  # below this weight the secondary mood is too faint to mention
TERTIARY_NAMED = 0.15  # the tertiary mood is mentioned from this weight on
MOVEMENT_DELTA = 0.3  # a change of valence or arousal beyond this between first and last window is told

# --- phrase banks -------------------------------------------------------------------------------
# Placeholders: {adj}/{noun} primary mood word, {int} intensity word, {a_adj}/{a_int} with article,
# {adj2}/{noun2} secondary, {noun3} tertiary, {tail} the tertiary clause (or "."), {Noun} capitalised.

# Intensity from arousal: (upper bound, adjectives, where an arousal change ends up).
INTENSITY: tuple[tuple[float, tuple[str, ...], tuple[str, ...]], ...] = (
    (-0.6, ("hushed", "whisper-quiet", "still", "barely-there"), ("almost a whisper", "near stillness")),
    (-0.2, ("gentle", "soft", "unhurried", "slow-burning"), ("something gentle", "a soft glow")),
    (0.2, ("steady", "even-paced", "mid-tempo", "measured"), ("a steady groove", "an even stride")),
    (0.6, ("lively", "spirited", "brisk", "animated"), ("something lively", "a brisk stride")),
    (9.9, ("full-throttle", "forceful", "blazing", "hard-hitting"), ("full force", "a blazing finish")),
)

PRIMARY: dict[str, tuple[str, ...]] = {
    "strong": (  # primary weight >= 0.55
        "Oh, you've got to hear this one: it's {adj} through and through, with {a_int} feel at its core.",
        "Above all, this track feels {adj}, carried along by {a_int} pulse.",
        "This is overwhelmingly {adj} music, {int} and completely sure of itself.",
        "{Noun} is the heart of this {int} track, and it comes through unmistakably.",
        "There's no mistaking it: this one is deeply {adj}, with {a_int} touch.",
        "It's hard to miss how {adj} this one is, {int} and wholehearted.",
    ),
    "clear": (  # primary weight >= 0.4
        "This track is mostly {adj}, moving at {a_int} pace.",
        "At its core this is {a_adj}, {int} piece of music.",
        "The main thing you feel here is {noun}, delivered in {a_int} way.",
        "Mostly, this one comes across as {adj} and {int}.",
        "It's largely {adj}, the kind of {int} track that settles in quickly.",
    ),
    "slight": (  # a blend with no dominant mood
        "This one leans {adj}, though it's more of a blend than a single feeling, {int} overall.",
        "It's a mix of moods, with {noun} just edging out the rest in {a_int} setting.",
        "It's a layered track that tilts toward {noun}, {int} in the way it unfolds.",
        "There's no single mood here, but {noun} takes a slight lead, all at {a_int} pace.",
    ),
}

SECONDARY: dict[str, tuple[str, ...]] = {
    "named": (  # secondary weight >= SECONDARY_NAMED
        "But there's a real {adj2} side to it as well{tail}",
        "Underneath, {a_adj2} current runs right alongside it{tail}",
        "It's also genuinely {adj2}, and the two moods sit together easily{tail}",
        "{Noun2} is woven all the way through it{tail}",
        "What makes it special is how much {noun2} sits beside that{tail}",
        "At the same time it has {a_adj2} streak that's hard to ignore{tail}",
    ),
    "hint": (
        "There's just a hint of {noun2} around the edges{tail}",
        "A faint {adj2} touch keeps it from feeling one-note{tail}",
        "Listen closely and you'll catch a little {noun2} underneath{tail}",
        "Only a trace of {noun2} colours it{tail}",
        "Now and then something {adj2} slips in{tail}",
    ),
    "none": (  # secondary weight < SECONDARY_HINTED: one clear mood
        "It doesn't mix in much else, and that focus is part of its charm{tail}",
        "There's very little else in the blend, which makes it feel wonderfully clear{tail}",
        "It stays remarkably single-minded, with hardly anything else competing for attention{tail}",
        "Nothing else really gets a look-in, and it's all the better for it{tail}",
    ),
}

TERTIARY: tuple[str, ...] = (
    ", with a touch of {noun3} too.",
    ", plus a little {noun3} for good measure.",
    ", and even a trace of {noun3}.",
    "; a hint of {noun3} rounds it out.",
)

# The mood changes between the first and the last window: up, down or sideways in arousal.
MOOD_CHANGE: dict[str, tuple[str, ...]] = {
    "up": (
        "It starts out {adjA} and builds into something more {adjB} by the end.",
        "It opens {adjA}, then gathers pace and turns {adjB} as it goes.",
        "The mood climbs as it plays, from {nounA} at the start to {nounB} by the close.",
    ),
    "down": (
        "It starts out {adjA} and gradually settles into something more {adjB}.",
        "It opens {adjA}, then eases off and turns {adjB} toward the end.",
        "The mood winds down as it plays, from {nounA} at the start to {nounB} by the close.",
    ),
    "side": (
        "It starts out {adjA} and drifts toward something more {adjB} by the end.",
        "It opens {adjA} and slowly turns {adjB} as it goes.",
        "Along the way the mood shifts from {nounA} to {nounB}.",
    ),
}
# Same mood, arousal changes: from one intensity band to another, or within one.
AROUSAL_CHANGE: dict[str, tuple[str, ...]] = {
    "up": (
        "It starts {intA} and builds to {endB} by the end.",
        "It begins {intA} and grows until it reaches {endB}.",
        "Over its length it swells from {intA} beginnings to {endB}.",
    ),
    "up_same": (
        "It starts {intA} and keeps building, ending noticeably stronger than it began.",
        "It begins {intA} and grows as it goes, finishing with more push than it started with.",
    ),
    "down": (
        "It starts {intA} and winds down to {endB} by the end.",
        "It begins {intA} and gradually eases into {endB}.",
        "Over its length it settles from {intA} beginnings to {endB}.",
    ),
    "down_same": (
        "It starts {intA} and slowly eases off, ending softer than it began.",
        "It begins {intA} and relaxes its grip as it goes, finishing quieter than it started.",
    ),
}
VALENCE_CHANGE: dict[str, tuple[str, ...]] = {
    "up": (
        "As it goes on it brightens, ending on a warmer note than where it began.",
        "The colour lifts as it plays, so it finishes warmer and lighter than it starts.",
    ),
    "down": (
        "As it goes on it darkens, ending on a heavier note than where it began.",
        "The colour dims as it plays, so it finishes heavier than it starts.",
    ),
}

# No notable movement: an image of the primary mood, coloured by the quadrant when the two agree.
IMAGERY_FRAMES: tuple[str, ...] = (
    "It feels like {scene}.",
    "Picture {scene}.",
    "It's the soundtrack to {scene}.",
    "Think of {scene}.",
    "It would fit {scene} perfectly.",
)
MOOD_SCENES: dict[str, tuple[str, ...]] = {
    "chill": (
        "a lazy afternoon stretched out on the sofa",
        "a slow drift down a quiet river",
        "the hour after everyone else has gone to bed",
    ),
    "energy": (
        "a sprint for the last train",
        "a packed club at peak hour",
        "the opening lap of a race",
    ),
    "emotion": (
        "a night spent rereading old letters",
        "a long drive home alone at night",
        "the quiet after the guests have gone",
    ),
    "upbeat": (
        "a Saturday morning with nowhere to be",
        "a picnic that turns into a party",
        "dancing around the kitchen",
    ),
}
# The quadrants whose scenes suit each primary mood.
SCENE_QUADRANTS: dict[str, tuple[str, ...]] = {
    "chill": ("calm", "happy", "sad"),
    "energy": ("angry", "happy"),
    "emotion": ("sad", "calm"),
    "upbeat": ("happy", "calm"),
}
SCENES: dict[str, tuple[str, ...]] = {
    "happy": (
        "a sunny afternoon with the windows rolled down",
        "a street festival just getting going",
        "the first warm day of spring",
        "a kitchen full of friends cooking together",
        "a bike ride along the seafront",
    ),
    "angry": (
        "a city at night with storm clouds rolling in",
        "a chase through neon-lit streets",
        "the moment before a thunderstorm breaks",
        "a tense standoff in an old western",
        "a late train racing through the dark",
    ),
    "sad": (
        "rain on the window late at night",
        "an old photograph found at the back of a drawer",
        "a slow walk home after a long goodbye",
        "an empty beach in winter",
        "the last light of a grey afternoon",
    ),
    "calm": (
        "a slow morning with coffee and soft light",
        "a lakeside at dusk",
        "clouds drifting over a lazy Sunday",
        "a quiet garden after the rain",
        "a hammock swaying in the shade",
    ),
}

ACTIVITIES: dict[str, tuple[str, ...]] = {
    "chill": (
        "a slow Sunday morning with a good book",
        "winding down after a long day",
        "focused reading or study",
        "a late-evening walk",
        "a long bath with the lights low",
    ),
    "energy": (
        "a workout or a run",
        "a long drive on an open road",
        "powering through a pile of chores",
        "warming up before a game",
        "a spin class",
    ),
    "emotion": (
        "a quiet evening of journaling",
        "a rainy afternoon by the window",
        "a long train ride",
        "looking back over old photos",
        "a late-night heart-to-heart",
    ),
    "upbeat": (
        "a morning kick-start with coffee",
        "cooking with friends",
        "a summer road trip",
        "getting ready for a night out",
        "tidying up with the volume turned up",
    ),
}
ACTIVITY_FRAMES: tuple[str, ...] = (
    "Put it on for {act}.",
    "Perfect for {act}.",
    "Great company for {act}.",
    "Save it for {act}.",
)
SECOND_ACTIVITY_FRAMES: tuple[str, ...] = (
    "Its {adj2} side also suits {act}.",
    "When you want more {noun2}, it works for {act} too.",
    "Thanks to its {adj2} streak, it also fits {act}.",
)
# The Analyst-Interpreter paper's genre-to-mood table (its Table 1), as listening suggestions.
GENRES: dict[str, tuple[str, ...]] = {
    "chill": ("ambient", "chillout", "classical piano", "instrumental lo-fi"),
    "energy": ("electronic", "drum and bass", "rock", "techno"),
    "emotion": ("jazz ballads", "blues", "acoustic folk", "soul"),
    "upbeat": ("pop", "disco", "funk", "house"),
}
GENRE_FRAMES: tuple[str, ...] = (
    "If you like it, try some {g1} with a bit of {g2} mixed in.",
    "For more in this vein, look for {g1} or {g2}.",
    "Similar listening: {g1}, with some {g2} for variety.",
)

VISUAL_SCENES: dict[str, tuple[str, ...]] = {
    "chill": (
        "a quiet lakeside cabin at dusk",
        "a hammock under palm trees",
        "a rainy cafe window with steam rising from a cup",
        "drifting clouds over a still sea",
    ),
    "energy": (
        "a neon-lit city highway at night",
        "a packed concert stage under strobe lights",
        "a sprinter bursting off the blocks",
        "crashing ocean waves under a storm sky",
    ),
    "emotion": (
        "a lone figure by a rain-streaked window",
        "an empty train platform in the blue hour",
        "autumn leaves falling in an old park",
        "candlelight in a quiet room",
    ),
    "upbeat": (
        "a street festival with colorful bunting",
        "friends dancing on a rooftop at sunset",
        "a field of sunflowers under a clear sky",
        "a seaside boardwalk in summer",
    ),
}
PALETTES: dict[str, tuple[str, ...]] = {
    "happy": ("warm golds and coral", "vivid saturated colors", "sunny yellows and sky blue"),
    "angry": ("deep reds and charcoal", "neon against black", "stormy purples and electric blue"),
    "sad": ("muted blues and greys", "desaturated cool tones", "soft indigo and slate"),
    "calm": ("soft pastels", "pale teal and sand", "lavender and cream"),
}
MOTION: tuple[str, ...] = ("perfectly still", "slow drifting motion", "steady gentle motion", "lively motion", "explosive motion blur")
STYLES: tuple[str, ...] = (
    "cinematic wide shot",
    "painterly digital illustration",
    "soft-focus film photography",
    "watercolor",
    "album cover art",
)


# --- helpers ------------------------------------------------------------------------------------


def article(word: str) -> str:
    return ("an " if word[:1].lower() in "aeiou" else "a ") + word


def intensity_band(arousal: float) -> int:
    for index, (upper, _, _) in enumerate(INTENSITY):
        if arousal < upper:
            return index
    return len(INTENSITY) - 1


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def sentences(text: str) -> list[str]:
    """Split a narrative into sentences (on . ! ? followed by space)."""
    return [s.strip() for s in _SENTENCE_END.split(text.strip()) if s.strip()]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


class _Words:
    """Draws mood words for one narration without using the same word twice."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def _draw(self, options: tuple[str, ...]) -> str:
        fresh = [w for w in options if w not in self.used] or list(options)
        word = self.rng.choice(fresh)
        self.used.add(word)
        return word

    def adj(self, mood: str) -> str:
        return self._draw(MOOD_WORDS[mood].adjectives)

    def noun(self, mood: str) -> str:
        return self._draw(MOOD_WORDS[mood].nouns)


@dataclass(frozen=True)
class Movement:
    """How the mood moves from the first to the last timeline window."""

    kind: str  # "mood" (the primary mood changes), "arousal" or "valence"
    direction: str  # "up", "down" or "side"
    start: MoodReading
    end: MoodReading


def movement(analysis: Analysis, delta: float = MOVEMENT_DELTA) -> Movement | None:
    """The notable movement along the timeline, or None (fewer than two windows, or little change)."""
    if len(analysis.timeline) < 2:
        return None
    first, last = analysis.timeline[0], analysis.timeline[-1]
    d_arousal, d_valence = last.arousal - first.arousal, last.valence - first.valence
    if first.primary_mood != last.primary_mood:
        direction = "up" if d_arousal > 0.15 else "down" if d_arousal < -0.15 else "side"
        return Movement("mood", direction, first, last)
    if abs(d_arousal) > delta:
        return Movement("arousal", "up" if d_arousal > 0 else "down", first, last)
    if abs(d_valence) > delta:
        return Movement("valence", "up" if d_valence > 0 else "down", first, last)
    return None


def _rng(analysis: Analysis, seed: int) -> random.Random:
    # The seed picks the phrasing; the analysis varies it between clips for one seed. A str seed is
    # hashed with SHA-512 by `random`, so this is stable across runs and PYTHONHASHSEED.
    overall = analysis.overall
    return random.Random(f"narrator|{int(seed)}|{overall.valence:.4f}|{overall.arousal:.4f}|{len(analysis.timeline)}")


# --- the narrator -------------------------------------------------------------------------------


def _movement_sentence(move: Movement, rng: random.Random, words: _Words) -> str:
    if move.kind == "mood":
        a, b = move.start.primary_mood, move.end.primary_mood
        return rng.choice(MOOD_CHANGE[move.direction]).format(
            adjA=words.adj(a), adjB=words.adj(b), nounA=words.noun(a), nounB=words.noun(b)
        )
    if move.kind == "arousal":
        band_a, band_b = intensity_band(move.start.arousal), intensity_band(move.end.arousal)
        key = move.direction if band_a != band_b else move.direction + "_same"
        return rng.choice(AROUSAL_CHANGE[key]).format(
            intA=rng.choice(INTENSITY[band_a][1]), endB=rng.choice(INTENSITY[band_b][2])
        )
    return rng.choice(VALENCE_CHANGE[move.direction])


def narrative(analysis: Analysis, rng: random.Random, words: _Words) -> str:
    overall = analysis.overall
    ranked = overall.ranked_moods()
    (primary, w1), (secondary, w2), (tertiary, w3) = ranked[0], ranked[1], ranked[2]
    band = "strong" if w1 >= 0.55 else "clear" if w1 >= 0.4 else "slight"
    intensity = rng.choice(INTENSITY[intensity_band(overall.arousal)][1])
    adj, noun = words.adj(primary), words.noun(primary)
    first = rng.choice(PRIMARY[band]).format(
        adj=adj, noun=noun, Noun=_cap(noun), a_adj=article(adj), int=intensity, a_int=article(intensity)
    )
    tail = rng.choice(TERTIARY).format(noun3=words.noun(tertiary)) if w3 >= TERTIARY_NAMED else "."
    adj2, noun2 = words.adj(secondary), words.noun(secondary)
    strength = "named" if w2 >= SECONDARY_NAMED else "hint" if w2 >= SECONDARY_HINTED else "none"
    second = rng.choice(SECONDARY[strength]).format(
        adj2=adj2, noun2=noun2, Noun2=_cap(noun2), a_adj2=article(adj2), tail=tail
    )
    move = movement(analysis)
    if move is not None:
        third = _movement_sentence(move, rng, words)
    else:
        scenes = MOOD_SCENES[primary]
        if overall.quadrant in SCENE_QUADRANTS[primary]:
            scenes = scenes + SCENES[overall.quadrant]
        third = rng.choice(IMAGERY_FRAMES).format(scene=rng.choice(scenes))
    return " ".join((first, second, third))


def recommendations(analysis: Analysis, rng: random.Random, words: _Words) -> list[str]:
    ranked = analysis.overall.ranked_moods()
    (primary, _), (secondary, w2) = ranked[0], ranked[1]
    out = [
        rng.choice(ACTIVITY_FRAMES).format(act=rng.choice(ACTIVITIES[primary])),
        _genres(rng, primary, secondary if w2 >= SECONDARY_HINTED else primary),
    ]
    if w2 >= SECONDARY_NAMED:
        out.append(
            rng.choice(SECOND_ACTIVITY_FRAMES).format(
                adj2=words.adj(secondary), noun2=words.noun(secondary), act=rng.choice(ACTIVITIES[secondary])
            )
        )
    return out


def _genres(rng: random.Random, primary: str, other: str) -> str:
    first = rng.choice(GENRES[primary])
    second = rng.choice([g for g in GENRES[other] if g != first])
    return rng.choice(GENRE_FRAMES).format(g1=first, g2=second)


def visual_prompt(analysis: Analysis, rng: random.Random, words: _Words) -> str:
    overall = analysis.overall
    ranked = overall.ranked_moods()
    (primary, _), (secondary, w2) = ranked[0], ranked[1]
    feel = f"{words.adj(primary)} and {words.adj(secondary)} mood" if w2 >= SECONDARY_NAMED else f"{words.adj(primary)} mood"
    parts = (
        rng.choice(VISUAL_SCENES[primary]),
        feel,
        rng.choice(PALETTES[overall.quadrant]),
        MOTION[intensity_band(overall.arousal)],
        rng.choice(STYLES),
    )
    return _cap(", ".join(parts))


def template_narration(analysis: Analysis, seed: int = 0) -> Narration:
    """The template narrator's answer: deterministic for (analysis, seed)."""
    rng = _rng(analysis, seed)
    words = _Words(rng)
    text = narrative(analysis, rng, words)
    return Narration(
        narrative=text,
        recommendations=recommendations(analysis, rng, words),
        visual_prompt=visual_prompt(analysis, rng, words),
        narrator="template",
        fallback_reason=None,
    )


class TemplateNarrator:
    """The embedded default: needs no model, answers in well under a millisecond."""

    name = "template"

    def narrate(self, analysis: Analysis, seed: int = 0) -> Narration:
        return template_narration(analysis, seed)


__all__ = ["Movement", "TemplateNarrator", "movement", "sentences", "template_narration"]
