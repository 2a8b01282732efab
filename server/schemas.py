"""The API's request and response bodies (pydantic), as they appear at /docs.

Ranges that belong to the mood space or to the pipeline are checked by their one definition
(`moodmusic.mood.Mood`, `moodmusic.trajectory.check_seconds`, `Pipeline.stinger`); the fields here only
say what they are and which types they take. Duration bounds are the pipeline's constants, imported.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Optional

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, model_validator

from moodmusic.trajectory import MAX_SECONDS, MIN_SECONDS
from moodmusic.audio import OUTPUT_FORMATS
from moodmusic.loopfiles import OUTPUT_SAMPLE_RATES
from moodmusic.tempo import BEATS_PER_BAR_CHOICES, MAX_BPM, MIN_BPM
from moodmusic.mood import MOOD_SYNONYMS, NAMED_MOODS
from moodmusic.pipeline import STINGER_EVENTS

AudioFormat = Literal[tuple(OUTPUT_FORMATS)]  # type: ignore[valid-type]  # 16-bit WAV unless another is asked for (docs/conventions.md)
StingerEvent = Literal[STINGER_EVENTS]  # type: ignore[valid-type]


def format_field():
    return Field("wav", description="wav (16-bit PCM), flac (lossless, smaller), ogg (Vorbis, about a tenth of the size; "
                                    "for game engines and loops) or mp3 (not every MP3 decoder keeps a loop seamless)")  # fmt: skip


def _whole_number(value):
    """JSON Schema counts 7.0 as an integer, as it counts 7; true, "7" and 7.5 are not (the strict int refuses them)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


# An integer as the JSON contract states it: 7 or 7.0, never a boolean or a string.
WholeNumber = Annotated[int, BeforeValidator(_whole_number), Field(strict=True)]


SampleRate = Literal[OUTPUT_SAMPLE_RATES]  # type: ignore[valid-type]
BeatsPerBar = Literal[BEATS_PER_BAR_CHOICES]  # type: ignore[valid-type]


# What a game engine needs of the music's grid and its files. Absent: the default; an explicit null is refused.
def bpm_field():
    return Field(None, ge=MIN_BPM, le=MAX_BPM, strict=True, allow_inf_nan=False,
                 description=f"beats per minute, {MIN_BPM:g} to {MAX_BPM:g} (default: the mood's tempo, slow when calm, fast when excited)")  # fmt: skip


def beats_per_bar_field():
    return Field(None, description="beats in a bar (default 4)")


def sample_rate_field():
    return Field(22050, description="samples per second of the audio file: 22,050 (the models' own) or 44,100 / 48,000 (resampled with soxr)")


def seed_field():
    return Field(0, ge=0, le=2**31 - 1, description="fixes every random draw: the same request gives the same clip")


def _any_case(name: str) -> str:
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else re.escape(c) for c in name)


# The names `moodmusic.mood.named` accepts (any case, surrounding spaces), as a pattern the contract can state.
MOOD_NAME_PATTERN = r"^\s*(" + "|".join(_any_case(n) for n in sorted(NAMED_MOODS) + sorted(MOOD_SYNONYMS)) + r")\s*$"


def one_of_forms(*forms: tuple[str, ...]) -> dict:
    """The JSON schema's statement of "exactly one of these forms": each form's fields present and not null."""
    numbers = {"valence": {"type": "number"}, "arousal": {"type": "number"}, "mood": {"type": "string"}, "trajectory": {"type": "array"}}
    return {"oneOf": [{"required": list(form), "properties": {name: numbers[name] for name in form}} for form in forms],
            "dependentRequired": {"valence": ["arousal"], "arousal": ["valence"]}}


class Strict(BaseModel):
    """A request body that refuses unknown fields."""

    # Unknown fields are an error: a misspelt "arousl" must not silently become the default mood.
    model_config = ConfigDict(extra="forbid")


class TrajectoryPoint(Strict):
    """The mood at one moment of a clip."""

    time: float = Field(ge=0, strict=True, allow_inf_nan=False, description="seconds from the start of the clip")
    valence: float = Field(ge=-1, le=1, strict=True, allow_inf_nan=False, description="in [-1, 1]")
    arousal: float = Field(ge=-1, le=1, strict=True, allow_inf_nan=False, description="in [-1, 1]")


class MoodChoice(Strict):
    """A mood by name, or by valence and arousal."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=one_of_forms(("mood",), ("valence", "arousal")))

    # Absent, not null: the contract's one-of forms count fields that are present (so a null is refused too).
    mood: str = Field(None, pattern=MOOD_NAME_PATTERN, description="a named mood (GET /v1/moods lists them)", examples=["calm"])
    valence: float = Field(None, ge=-1, le=1, strict=True, allow_inf_nan=False, description="unpleasant (-1) to pleasant (1)")
    arousal: float = Field(None, ge=-1, le=1, strict=True, allow_inf_nan=False, description="calm (-1) to energetic (1)")

    def _forms(self) -> list[str]:
        forms = []
        if self.mood is not None:
            forms.append("mood")
        if self.valence is not None or self.arousal is not None:
            if self.valence is None or self.arousal is None:
                raise ValueError("give both valence and arousal, each in [-1, 1]")
            forms.append("valence/arousal")
        return forms

    @model_validator(mode="after")
    def _one_mood(self):
        forms = self._forms()
        if len(forms) != 1:
            raise ValueError(f"give exactly one of: a mood name, valence and arousal{self._extra_form_hint()} (got {', '.join(forms) or 'none'})")
        return self

    def _extra_form_hint(self) -> str:
        return ""

    def target(self):
        """What the pipeline takes: a name or a (valence, arousal) pair."""
        return self.mood if self.mood is not None else (self.valence, self.arousal)


class ClipRequest(MoodChoice):
    """A clip to make: its mood (a name, valence and arousal, or a trajectory), length, seed, file format and tempo."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=one_of_forms(("mood",), ("valence", "arousal"), ("trajectory",)))

    trajectory: list[TrajectoryPoint] = Field(
        None, min_length=1, description="moods over time, interpolated linearly (points are taken in time order); instead of mood or valence/arousal"
    )
    duration: float = Field(
        10.0, ge=MIN_SECONDS, le=MAX_SECONDS, strict=True, allow_inf_nan=False, validation_alias=AliasChoices("duration", "seconds"),
        description=f"seconds, {MIN_SECONDS:g} to {MAX_SECONDS:g} (also accepted as 'seconds')",
    )  # fmt: skip
    seed: WholeNumber = seed_field()
    format: AudioFormat = format_field()
    verify: StrictBool = Field(True, description="run the classifier: the mood heard and its distance to the mood asked")
    narrate: StrictBool = Field(True, description="tell in words what the clip feels like (implies the classifier)")
    loop: StrictBool = Field(False, description="make the end join the start seamlessly; a loop lasts the whole number of bars nearest `duration`")
    bpm: float = bpm_field()
    beats_per_bar: BeatsPerBar = beats_per_bar_field()
    sample_rate: SampleRate = sample_rate_field()

    def _forms(self) -> list[str]:
        return super()._forms() + (["trajectory"] if self.trajectory is not None else [])

    def _extra_form_hint(self) -> str:
        return ", or a trajectory"

    def target(self):
        if self.trajectory is not None:
            return [(p.time, p.valence, p.arousal) for p in self.trajectory]
        return super().target()


class StingerRequest(MoodChoice):
    """A short stinger to make: its event (rise, fall or hit), mood, length, seed, file format and tempo."""

    event: StingerEvent = Field(description="rise: arousal climbs; fall: it sinks; hit: a burst that decays")
    duration: float = Field(
        2.0, ge=1.0, le=3.0, strict=True, allow_inf_nan=False, validation_alias=AliasChoices("duration", "seconds"),
        description="seconds, 1 to 3 (also accepted as 'seconds')",
    )  # fmt: skip  (the same bounds as Pipeline.stinger, checked here so a bad request never takes a worker)
    seed: WholeNumber = seed_field()
    format: AudioFormat = format_field()
    verify: StrictBool = False
    narrate: StrictBool = False
    bpm: float = bpm_field()
    beats_per_bar: BeatsPerBar = beats_per_bar_field()
    sample_rate: SampleRate = sample_rate_field()


class MoodPoint(BaseModel):
    """A point of the mood square and its quadrant."""

    valence: float
    arousal: float
    quadrant: str


class MoodReading(MoodPoint):
    """A mood as the classifier reads it: the point, quadrant probabilities and mood weights."""

    quadrants: dict[str, float] = Field(description="happy, angry, sad, calm -> probability")
    moods: dict[str, float] = Field(description="the Analyst-Interpreter paper's chill, energy, emotion, upbeat -> weight")
    primary_mood: str


class TimelineWindow(BaseModel):
    """The mood the classifier heard in one window of the audio, from `start` to `end` seconds."""

    start: float
    end: float
    valence: float
    arousal: float
    quadrants: dict[str, float]
    moods: dict[str, float]


class Heard(MoodReading):
    """What the classifier heard: the whole clip, and window by window."""

    duration: float
    loudness_lufs: Optional[float] = Field(None, description="ITU-R BS.1770-4 integrated loudness of the audio heard (null for silence)")
    timeline: list[TimelineWindow]


class Level(BaseModel):
    """The mastered clip's level, as a loudness meter reads it (moodmusic.mastering)."""

    loudness_lufs: Optional[float] = Field(description="ITU-R BS.1770-4 integrated loudness")
    target_lufs: Optional[float] = Field(description="the mastering target: -19 + 4 x arousal LUFS")
    true_peak_dbtp: Optional[float] = Field(description="4x oversampled peak; at most -1 dBTP")
    dead_air_seconds: float = Field(description="seconds inside 1-second stretches below -60 dBFS RMS (0: none)")
    gates_failed: list[str] = Field(description="level rules the clip breaks: floor, dead_air, true_peak, target (empty: none)")


class Narration(BaseModel):
    """What the music feels like in words: a narrative, suggestions that fit the mood and a one-line image prompt."""

    narrative: str
    recommendations: list[str]
    visual_prompt: str
    narrator: str
    fallback_reason: Optional[str] = None


class Tempo(BaseModel):
    """The tempo and meter the music follows."""

    bpm: float
    beats_per_bar: int
    beat_seconds: float
    bar_seconds: float


class AudioPoints(BaseModel):
    """Where things fall in the audio file, in its samples: what the file's own markers say (WAV `smpl` and
    `cue ` chunks, Ogg/FLAC LOOPSTART/LOOPLENGTH comments), for engines that take numbers."""

    sample_rate: int
    samples: int
    bar_starts: list[int] = Field(description="the first sample of every bar")
    loop_start: Optional[int] = None
    loop_end: Optional[int] = Field(None, description="exclusive: the loop plays samples loop_start .. loop_end - 1")
    loop_length: Optional[int] = None


class ClipResponse(BaseModel):
    """A made clip or stinger: where to fetch its audio, the mood asked and heard, its level, tempo and narration."""

    id: str
    url: str
    audio_url: str
    mel_url: str
    kind: Literal["clip", "stinger"]
    event: Optional[str] = None
    cached: bool = Field(description="true when answered from the clip store")
    asked: MoodPoint = Field(description="the mood asked for (a trajectory's mean)")
    trajectory: Optional[list[TrajectoryPoint]] = None
    level: Optional[Level] = Field(None, description="loudness, true peak and dead air of the mastered clip")
    heard: Optional[Heard] = None
    distance: Optional[float] = Field(None, description="between asked and heard in the mood square (0 to 2.83)")
    narration: Optional[Narration] = None
    duration: float
    seed: int
    loop: bool
    format: AudioFormat
    tempo: Tempo = Field(description="the grid the music follows: beat 1 of bar 1 at the first sample")
    bars: float = Field(description="the clip's length in bars (a loop: a whole number)")
    audio: AudioPoints
    timings: dict[str, float] = Field(description="seconds per stage when the clip was made")
    versions: dict[str, str]
    created: float = Field(description="Unix time the clip was made")


class AnalyzeResponse(BaseModel):
    """What the classifier heard in an uploaded file, and its narration."""

    filename: Optional[str] = None
    analyzed_seconds: float
    truncated: bool = Field(description="true when only the start of a longer upload was analysed")
    heard: Heard
    narration: Optional[Narration] = None
    timings: dict[str, float]
    versions: dict[str, str]


class NamedMood(BaseModel):
    """A named mood and its point in the mood square."""

    name: str
    valence: float
    arousal: float
    quadrant: str


class MoodsResponse(BaseModel):
    """Every named mood, and the synonyms accepted for them."""

    moods: list[NamedMood]
    synonyms: dict[str, str]


class EvaluateRequest(Strict):
    """A small closed-loop grid run on the server (the full evaluation is `moodmusic evaluate chain`).

    Bounded so that the largest request (5 x 5 moods, 2 seeds, 5 s: 250 s of audio) finishes well within the
    default 60 s deadline: about 35 s on a 2-core CPU with the shipped models."""

    grid: WholeNumber = Field(3, ge=2, le=5, description="grid x grid moods over [-0.8, 0.8]^2")
    seeds: WholeNumber = Field(1, ge=1, le=2, description="seeds per mood")
    duration: float = Field(
        4.0, ge=2.0, le=5.0, strict=True, allow_inf_nan=False, validation_alias=AliasChoices("duration", "seconds"),
        description="seconds per clip (also accepted as 'seconds')",
    )  # fmt: skip
    first_seed: WholeNumber = Field(0, ge=0, le=2**31 - 1)
    real_references: StrictBool = Field(False, description="also compute diversity and Fréchet references against the server's corpus test split (slower)")


class Problem(BaseModel):
    """Every error body: `detail` says what to fix."""

    detail: str
