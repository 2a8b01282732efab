"""The chain, composed: mood -> generator -> vocoder -> classifier -> narrator.

The server, the CLI (`moodmusic generate`), the evaluation harness and the game bank all go through
this one composition, so a clip made anywhere is made the same way. It holds no model logic: each
stage's package does its own work; this module wires them, times them and names their versions.

    from moodmusic.pipeline import load_pipeline
    chain = load_pipeline()                      # shipped checkpoints, configured narrator
    clip = chain.compose("calm", seconds=10, seed=1)
    clip.audio, clip.analysis.overall.valence, clip.narration.narrative, clip.timings
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch

from moodmusic import mastering
from moodmusic.loops import best_loop
from moodmusic.mel import FRAMES_PER_SECOND, HOP_LENGTH, SAMPLE_RATE
from moodmusic.mood import Mood
from moodmusic.tempo import Grid, warp, warp_positions

LOOP_WARMUP_SECONDS = 1.5  # a loop must not start with the generator's cold start from silence
LOOP_CROSSFADE_SECONDS = 0.5
LOOP_SEARCH_SECONDS = 1.0  # span over which a loop's start point is chosen for a level seam (moodmusic.loops)
STINGER_EVENTS = ("rise", "fall", "hit")
STINGER_FADE_SECONDS = 0.05
# The generator writes this much more music than a clip needs before the warp onto the tempo grid (moodmusic.tempo)
# reads it: the music's first beat may come up to a beat late. A warp that stretches reads further: the music is
# then continued from its own last frames.
GRID_LEAD_SECONDS = 0.5


@dataclass
class Clip:
    """A clip that `Pipeline.compose` (or `stinger`) made: the audio and its mel, the mood asked for, and what
    the later stages added: level report, analysis, narration, tempo grid, timings and versions."""

    audio: np.ndarray  # mono float32 at 22,050 Hz
    mel: torch.Tensor  # (80, T) what the generator wrote
    asked: Mood  # the mood asked for (a trajectory's mean when one was given)
    seconds: float
    seed: int
    level: mastering.LevelReport | None = None  # loudness, true peak and dead air of the mastered audio
    analysis: Any = None  # classifier.Analysis when verified
    narration: Any = None  # narrator.Narration when narrated
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    versions: dict[str, str] = field(default_factory=dict)
    loop: bool = False
    grid: Grid | None = None  # the tempo and meter the music follows; beat 0 at the first sample

    @property
    def bars(self) -> float:
        """How many bars the clip lasts (a loop: a whole number)."""
        return self.audio.size / SAMPLE_RATE / self.grid.bar_seconds if self.grid else 0.0

    @property
    def distance(self) -> float | None:
        """Euclidean distance in the mood square between asked and heard (None when not verified)."""
        if self.analysis is None:
            return None
        heard = self.analysis.overall
        return math.hypot(heard.valence - self.asked.valence, heard.arousal - self.asked.arousal)


def stinger_trajectory(event: str, valence: float, arousal: float, seconds: float) -> list[tuple[float, float, float]]:
    """The mood path of a stinger: `rise` climbs in arousal, `fall` sinks, `hit` is a burst that decays."""
    if event == "rise":
        return [(0.0, valence, max(-1.0, arousal - 0.6)), (seconds, valence, min(1.0, arousal + 0.6))]
    if event == "fall":
        return [(0.0, valence, min(1.0, arousal + 0.6)), (seconds, valence, max(-1.0, arousal - 0.6))]
    if event == "hit":
        return [(0.0, valence, 1.0), (seconds, valence, arousal)]
    raise ValueError(f"unknown stinger event {event!r}; choose one of {', '.join(STINGER_EVENTS)}")


def stinger_envelope(event: str, samples: int) -> np.ndarray:
    """Loudness shape of a stinger (a swell, a fade, or a sharp attack with a decay); every one ends in a short fade."""
    t = np.linspace(0.0, 1.0, samples, dtype=np.float32)
    if event == "rise":
        envelope = 0.25 + 0.75 * t**2
    elif event == "fall":
        envelope = 1.0 - 0.75 * t
    else:
        envelope = np.exp(-3.0 * t)
    fade = min(samples, int(STINGER_FADE_SECONDS * SAMPLE_RATE))
    envelope[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    return envelope.astype(np.float32)


class Pipeline:
    """The four stages wired: `compose` a clip for a mood (or a trajectory), `stinger`, `analyze` a user's audio.

    >>> chain = load_pipeline()
    >>> clip = chain.compose("calm", seconds=4.0, seed=1, narrate=False)
    >>> clip.grid.bpm, clip.audio.size, clip.analysis.quadrant in ("happy", "angry", "sad", "calm")   # 345 mel frames x 256
    (61.0, 88320, True)
    >>> loop = chain.compose("calm", seconds=8.0, seed=1, verify=False, narrate=False, loop=True)
    >>> round(loop.bars, 4), loop.audio.size == loop.grid.bar_samples(2)   # a loop is whole bars: two of 3.93 s
    (2.0, True)
    """

    def __init__(self, generator, vocoder, classifier, narrator=None):
        self.generator, self.vocoder, self.classifier, self.narrator = generator, vocoder, classifier, narrator

    @property
    def versions(self) -> dict[str, str]:
        return {
            "generator": self.generator.version,
            "vocoder": self.vocoder.version,
            "classifier": self.classifier.version,
            "narrator": getattr(self.narrator, "name", "template") if self.narrator is not None else "template",
        }

    def _finish(self, clip: Clip, verify: bool, narrate: bool, seed: int) -> Clip:
        if verify or narrate:
            started = time.perf_counter()
            clip.analysis = self.classifier.analyze(clip.audio, loudness_lufs=clip.level.loudness_lufs if clip.level else None)
            clip.timings["classifier"] = time.perf_counter() - started
        if narrate:
            from moodmusic.narrator import narrate as tell

            started = time.perf_counter()
            clip.narration = tell(clip.analysis, seed=seed, narrator=self.narrator)
            clip.timings["narrator"] = time.perf_counter() - started
        clip.timings["total"] = sum(v for k, v in clip.timings.items() if k != "total")
        clip.versions = self.versions
        return clip

    def render(self, mel: torch.Tensor) -> np.ndarray:
        """The vocoder's waveform for a (80, T) mel, float32 at the generator's own level (not mastered)."""
        return self.vocoder.render(mel).cpu().numpy().astype(np.float32)

    @staticmethod
    def master(clip: Clip, arousal, *, loop: bool = False, tail_seconds: float = 0.0) -> Clip:
        """Master the clip's audio in place (moodmusic.mastering): loudness from `arousal` (a number or a
        function of time), true peak <= -1 dBTP; sets `clip.level` and the "mastering" timing.

        A loop is limited as if it were playing round: its audio twice over, the second copy kept, so the
        limiter's state at the loop's start is the one its end leaves and the seam stays seamless.
        """
        started = time.perf_counter()
        audio = clip.audio
        if loop:
            twice = mastering.master(np.concatenate([audio, audio]), arousal)
            done = dataclasses.replace(twice, audio=twice.audio[audio.size :])
            level = dataclasses.replace(mastering.measure(done.audio), target_lufs=done.target_lufs)
        else:
            done = mastering.master(audio, arousal)
            level = mastering.report(done, exclude_tail_seconds=tail_seconds)
        clip.audio, clip.level = done.audio, level
        clip.timings["mastering"] = time.perf_counter() - started
        return clip

    def _on_grid(
        self, mood, seconds: float, seed: int, grid: Grid, frames: int, progress=None, skip_frames: int = 0,
    ) -> torch.Tensor:  # fmt: skip
        """The generator's log-mel for `mood` (a Trajectory), `frames` frames time-warped onto `grid`
        (moodmusic.tempo); the first `skip_frames` frames written are dropped before the warp (a loop's warm-up).

        The warp may read further than `frames` (it stretches by up to about 1.22x): the clip is written with
        GRID_LEAD_SECONDS to spare, and continued from its own last frames when the warp needs more."""
        from moodmusic.trajectory import MIN_SECONDS, Trajectory

        lead = skip_frames / FRAMES_PER_SECOND + frames / FRAMES_PER_SECOND + GRID_LEAD_SECONDS
        mel = self.generator.generate(mood, seconds, seed=seed, progress=progress, extra_seconds=max(0.0, lead - seconds))
        for attempt in range(1, 4):
            body = mel[..., skip_frames:].cpu().numpy()
            positions = warp_positions(body, grid, frames)
            if positions[-1] <= body.shape[-1] - 1:
                break
            # Continue the music from its own last frames (another seed for the new noise; the same request, the same clip).
            written = mel.shape[-1] / FRAMES_PER_SECOND
            later = Trajectory(tuple(max(0.0, t - written) for t in mood.times), mood.valence, mood.arousal)
            more = max(MIN_SECONDS, (positions[-1] - body.shape[-1]) / FRAMES_PER_SECOND + GRID_LEAD_SECONDS)
            mel = torch.cat([mel, self.generator.generate(later, more, seed=seed + attempt, context=mel[..., -self.generator.config.context_frames :])], dim=-1)
        return torch.from_numpy(warp(body, positions))

    def compose(
        self, mood, seconds: float, seed: int = 0, *, verify: bool = True, narrate: bool = True, loop: bool = False,
        progress: Callable[[int, int], None] | None = None, bpm: float | None = None, beats_per_bar: int | None = None,
    ) -> Clip:  # fmt: skip
        """A clip for a mood (name, Mood, (v, a)) or a trajectory [(t, v, a), ...] of `seconds`, on a tempo grid
        (`bpm`, `beats_per_bar`; default: the mood's tempo in 4/4). A loop lasts the whole number of bars nearest
        `seconds` and starts on a bar line."""
        from moodmusic.trajectory import MAX_SECONDS, Trajectory, check_seconds

        seconds = check_seconds(seconds)
        trajectory = Trajectory.of(mood)
        asked = Mood(float(np.mean(trajectory.valence)), float(np.mean(trajectory.arousal)))
        grid = Grid.for_mood(asked.valence, asked.arousal, bpm, beats_per_bar)
        timings: dict[str, float] = {}
        started = time.perf_counter()
        if loop:
            # Write a warm-up (dropped), one bar to choose the start bar line in, the loop, and a crossfade's
            # worth past its end (faded over the start); the loop is a whole number of bars.
            warmup_frames = round(LOOP_WARMUP_SECONDS * FRAMES_PER_SECOND)
            crossfade = round(LOOP_CROSSFADE_SECONDS * SAMPLE_RATE)
            length, bar = grid.bar_samples(grid.whole_bars(seconds, at_most=MAX_SECONDS)), grid.bar_samples(1)
            frames = math.ceil((bar + length + crossfade) / HOP_LENGTH) + 1
            shifted = Trajectory(tuple(t + LOOP_WARMUP_SECONDS for t in trajectory.times), trajectory.valence, trajectory.arousal)
            mel = self._on_grid(shifted, seconds, seed, grid, frames, progress, skip_frames=warmup_frames)
            timings["generator"] = time.perf_counter() - started
            started = time.perf_counter()
            audio = self.render(mel)
            # The loop starts on whichever beat line of the first bar gives the most level seam (the file's grid
            # then counts bar 1 from there: generated music has no downbeat of its own to keep).
            audio, offset = best_loop(audio, length, crossfade, search=bar, step=round(grid.beat_seconds * SAMPLE_RATE))
            mel = mel[..., offset // HOP_LENGTH : offset // HOP_LENGTH + math.ceil(length / HOP_LENGTH)]
        else:
            mel = self._on_grid(trajectory, seconds, seed, grid, round(seconds * FRAMES_PER_SECOND), progress)
            timings["generator"] = time.perf_counter() - started
            started = time.perf_counter()
            audio = self.render(mel)
        timings["vocoder"] = time.perf_counter() - started
        # A loop lasts its whole bars (30 s asked at 49 bpm: 6 bars, 29.39 s); a clip what was asked.
        clip = Clip(audio=audio, mel=mel, asked=asked, seconds=audio.size / SAMPLE_RATE if loop else seconds, seed=seed, timings=timings,
                    loop=loop, grid=grid)  # fmt: skip
        # A trajectory whose arousal moves is mastered moment by moment; a steady mood with one gain.
        moving = max(trajectory.arousal) - min(trajectory.arousal) > 0.1
        self.master(clip, (lambda t: trajectory.at(t)[1]) if moving else asked.arousal, loop=loop)
        return self._finish(clip, verify, narrate, seed)

    def map(self, fn: Callable[[Pipeline, Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        """`fn(self, item)` for each item in turn, the results in the items' order. A long job (a bank, the closed
        loop) hands its work to the chain this way, so the same job runs spread over a Ray cluster when the chain is
        a `moodmusic.cluster.ClusterChain`. `fn` is a module-level function (a cluster sends it by name).

        >>> list(Pipeline(None, None, None).map(lambda chain, x: x * 2, [1, 2, 3]))
        [2, 4, 6]
        """
        for item in items:
            yield fn(self, item)

    def stinger(
        self, event: str, mood, seconds: float = 2.0, seed: int = 0, *, verify: bool = False, narrate: bool = False,
        bpm: float | None = None, beats_per_bar: int | None = None,
    ) -> Clip:  # fmt: skip
        """A 1-3 s clip for a game event that fits `mood`: its mood path and loudness follow the event; its
        beats fall on the grid (`bpm`, `beats_per_bar`, default the mood's tempo; pass the music's), starting on beat 1."""
        from moodmusic.trajectory import Trajectory
        from moodmusic.mood import resolve

        if not 1.0 <= seconds <= 3.0:
            raise ValueError(f"a stinger lasts 1 to 3 seconds, got {seconds}")
        point = resolve(mood)
        path = Trajectory.of(stinger_trajectory(event, point.valence, point.arousal, seconds))
        grid = Grid.for_mood(point.valence, point.arousal, bpm, beats_per_bar)
        started = time.perf_counter()
        mel = self._on_grid(path, seconds, seed, grid, round(seconds * FRAMES_PER_SECOND))
        timings = {"generator": time.perf_counter() - started}
        started = time.perf_counter()
        audio = self.render(mel)
        audio = audio * stinger_envelope(event, audio.size)
        timings["vocoder"] = time.perf_counter() - started
        clip = Clip(audio=audio, mel=mel, asked=point, seconds=seconds, seed=seed, timings=timings, grid=grid)
        # A stinger's loudness is that of its path's mean arousal; its closing fade is not dead air.
        self.master(clip, float(np.mean(path.arousal)), tail_seconds=STINGER_FADE_SECONDS)
        return self._finish(clip, verify, narrate, seed)

    def analyze(self, audio, seed: int = 0, narrate: bool = True):
        """(Analysis, Narration or None, timings) for audio a user brings (path, bytes or samples)."""
        timings = {}
        started = time.perf_counter()
        analysis = self.classifier.analyze(audio)
        timings["classifier"] = time.perf_counter() - started
        narration = None
        if narrate:
            from moodmusic.narrator import narrate as tell

            started = time.perf_counter()
            narration = tell(analysis, seed=seed, narrator=self.narrator)
            timings["narrator"] = time.perf_counter() - started
        return analysis, narration, timings


PIPELINE_FILE = "pipeline.json"  # in a checkpoints folder: which renderer the shipped chain uses, and why


def chosen_vocoder(root: Path) -> str:
    """The renderer a checkpoints folder names in pipeline.json ("griffinlim", "griffinlim-sparse", "hifigan" or a folder), else its HiFi-GAN."""
    path = root / PIPELINE_FILE
    if path.exists():
        choice = str(json.loads(path.read_text()).get("vocoder", "hifigan"))
        return str(root / "vocoder") if choice == "hifigan" else choice
    return str(root / "vocoder")


def load_pipeline(
    checkpoints: str | Path | None = None, vocoder: str | None = None, narrator=None, device: str = "cpu", candidates: int | None = None
) -> Pipeline:
    """The stages from a checkpoints folder (default: the shipped one, or $MOODMUSIC_CHECKPOINTS).

    The vocoder is `vocoder` when given ("griffinlim", "griffinlim-sparse", "hifigan" or a folder), else $MOODMUSIC_VOCODER,
    else the folder's pipeline.json choice (the shipped one picks the renderer that measured best, see
    docs/vocoder.md), else the folder's HiFi-GAN. `candidates` overrides the generator's guided sampling
    (1: plain sampling); None keeps its guidance.json.
    """
    from moodmusic import classifier
    from moodmusic import generator
    from moodmusic import narrator as narrator_stage
    from moodmusic import vocoder as vocoder_stage
    from moodmusic.checkpoints import checkpoints_dir

    root = Path(checkpoints) if checkpoints else None
    vocoder = vocoder or os.environ.get("MOODMUSIC_VOCODER") or chosen_vocoder(root or checkpoints_dir())
    if vocoder == "hifigan" and root is not None:
        vocoder = str(root / "vocoder")
    melgen = generator.load(root / "generator" if root else None, device=device)
    if candidates is not None:
        melgen.set_candidates(candidates)
    return Pipeline(
        generator=melgen,
        vocoder=vocoder_stage.load(vocoder, device=device),
        classifier=classifier.load(root / "classifier" if root else None, device=device),
        narrator=narrator if narrator is not None else narrator_stage.default_narrator(),
    )
