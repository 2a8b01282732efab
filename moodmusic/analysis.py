"""What the classifier says about a piece of audio: the data every later stage reads.

The narrator, the server and the evaluation consume `Analysis`; it holds no model code so that
they can build and test with analyses they make themselves.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from moodmusic.mood import QUADRANTS, SEED000_MOODS, quadrant, seed000_distribution


@dataclass
class MoodReading:
    """One reading of the mood: a point, quadrant probabilities and the Analyst-Interpreter paper's four moods."""

    valence: float
    arousal: float
    quadrants: dict[str, float]  # happy, angry, sad, calm -> probability (sums to 1)
    moods: dict[str, float]  # chill, energy, emotion, upbeat -> weight (sums to 1), from the point

    @property
    def quadrant(self) -> str:
        """The quadrant of the (valence, arousal) point."""
        return quadrant(self.valence, self.arousal)

    @property
    def primary_mood(self) -> str:
        return max(self.moods, key=self.moods.get)

    def ranked_moods(self) -> list[tuple[str, float]]:
        return sorted(self.moods.items(), key=lambda item: -item[1])

    @classmethod
    def from_point(cls, valence: float, arousal: float, quadrant_probabilities: dict[str, float]) -> MoodReading:
        return cls(
            valence=float(valence),
            arousal=float(arousal),
            quadrants={q: float(quadrant_probabilities[q]) for q in QUADRANTS},
            moods=seed000_distribution(valence, arousal),
        )


@dataclass
class TimelineWindow(MoodReading):
    """The mood reading of one window of the audio, from `start` to `end` seconds."""

    start: float = 0.0  # seconds
    end: float = 0.0


@dataclass
class Analysis:
    """Everything the classifier says about one piece of audio: the overall reading, a reading per window, the
    embedding, and the loudness of the input. `as_dict` and `from_dict` make it JSON and back."""

    overall: MoodReading
    timeline: list[TimelineWindow] = field(default_factory=list)
    embedding: list[float] = field(default_factory=list)  # for Fréchet distances
    duration: float = 0.0  # seconds of audio analysed
    loudness_lufs: float | None = None  # BS.1770 integrated loudness of the input as it came (None: silent or not measured)

    @property
    def quadrant(self) -> str:
        return self.overall.quadrant

    def as_dict(self) -> dict:
        data = asdict(self)
        data["quadrant"] = self.quadrant
        data["primary_mood"] = self.overall.primary_mood
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Analysis:
        def reading(d: dict) -> dict:
            return {k: d[k] for k in ("valence", "arousal", "quadrants", "moods")}

        return cls(
            overall=MoodReading(**reading(data["overall"])),
            timeline=[TimelineWindow(**reading(w), start=w["start"], end=w["end"]) for w in data.get("timeline", [])],
            embedding=list(data.get("embedding", [])),
            duration=float(data.get("duration", 0.0)),
            loudness_lufs=data.get("loudness_lufs"),
        )


__all__ = ["Analysis", "MoodReading", "TimelineWindow", "QUADRANTS", "SEED000_MOODS"]
