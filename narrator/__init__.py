"""The narrator: tells in words what a clip feels like (the Analyst-Interpreter paper's 'interpreter' stage).

    from moodmusic.narrator import narrate
    narration = narrate(analysis, seed=0)
    narration.narrative        # 2-3 plain-text sentences
    narration.recommendations  # 2-3 mood-aligned suggestions
    narration.visual_prompt    # one line for an image generator
    narration.narrator         # "template", "openai:<model>" or "llama-cpp:<file>"
    narration.fallback_reason  # None, or why the template narrator answered instead

Without a narrator argument, `narrate` uses the one the environment configures (`from_env`; the
embedded template narrator when nothing is set). It never raises for a narrator's failure: the
template narrator answers and `fallback_reason` says why. See docs/narrator.md.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import TYPE_CHECKING

from moodmusic.narrator.base import Narration, Narrator
from moodmusic.narrator.llm import (
    LlamaCppNarrator,
    NarratorConfig,
    NarratorConfigError,
    OpenAINarrator,
    config_from_env,
    fallback,
    from_config,
    from_env,
)
from moodmusic.narrator.template import TemplateNarrator, template_narration
from moodmusic.narrator.words import MOOD_WORDS, names_mood, synonyms

if TYPE_CHECKING:
    from moodmusic.analysis import Analysis


@functools.lru_cache(maxsize=8)
def _configured(config: NarratorConfig) -> Narrator:
    # One narrator per configuration, so a llama-cpp model loads once per process.
    return from_config(config)


def default_narrator() -> Narrator:
    """The narrator the environment configures now; `NarratorConfigError` when it is misconfigured."""
    config = config_from_env()
    if config.api_key_env:  # the key may change under the same variable name: resolve it now
        config = dataclasses.replace(config, api_key=config.resolved_key(), api_key_env=None)
    return _configured(config)


def narrate(analysis: Analysis, seed: int = 0, narrator: Narrator | None = None) -> Narration:
    """Narrate an analysis: narrative, recommendations, visual prompt, and who spoke.

    >>> from moodmusic.analysis import Analysis, MoodReading
    >>> calm = Analysis(overall=MoodReading.from_point(0.6, -0.6, {"happy": 0.1, "angry": 0.0, "sad": 0.1, "calm": 0.8}), timeline=[], embedding=[], duration=10.0)
    >>> told = narrate(calm, seed=1, narrator=TemplateNarrator())
    >>> told.narrator, len(told.recommendations) > 0, narrate(calm, seed=1, narrator=TemplateNarrator()) == told
    ('template', True, True)

    Deterministic for a seed with the template narrator. Never raises for a narrator's failure or a
    bad configuration: the template narrator answers with `fallback_reason` set.
    """
    if narrator is None:
        try:
            narrator = default_narrator()
        except NarratorConfigError as exc:
            return fallback(analysis, seed, f"config: {exc}")
    if isinstance(narrator, TemplateNarrator):
        return template_narration(analysis, seed)
    try:
        return narrator.narrate(analysis, seed)
    except Exception as exc:  # a third-party narrator that raises
        name = getattr(narrator, "name", type(narrator).__name__)
        return fallback(analysis, seed, f"{name}: {type(exc).__name__}: {exc}")


__all__ = [
    "MOOD_WORDS", "LlamaCppNarrator", "Narration", "Narrator", "NarratorConfig", "NarratorConfigError",
    "OpenAINarrator", "TemplateNarrator", "config_from_env", "default_narrator", "from_config", "from_env",
    "names_mood", "narrate", "synonyms", "template_narration",
]  # fmt: skip
