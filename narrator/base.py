"""What every narrator returns, and what makes something a narrator."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from moodmusic.analysis import Analysis


@dataclass
class Narration:
    """The Analyst-Interpreter paper's three outputs, plus who produced them.

    narrative: 2-3 plain-text sentences on how the clip feels.
    recommendations: 2-3 mood-aligned suggestions (activities, settings, similar music).
    visual_prompt: one concise line for a future image generator.
    narrator: who spoke: "template", "openai:<model>" or "llama-cpp:<file>".
    fallback_reason: None when the configured narrator answered; otherwise why the template
        narrator answered instead (e.g. "openai: timeout after 2 s (2 attempts)").
    """

    narrative: str
    recommendations: list[str] = field(default_factory=list)
    visual_prompt: str = ""
    narrator: str = "template"
    fallback_reason: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


@runtime_checkable
class Narrator(Protocol):
    """Anything with a `name` and `narrate(analysis, seed) -> Narration`.

    A narrator should not raise; `narrator.narrate()` still catches whatever one does raise and answers
    with the template narrator.
    """

    name: str

    def narrate(self, analysis: Analysis, seed: int = 0) -> Narration: ...
