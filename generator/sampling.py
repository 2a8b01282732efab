"""Sampling: clips of any length grow slice by slice from a mood, a trajectory of moods, or given context.

    from moodmusic import generator
    g = generator.load()                                   # the shipped weights (checkpoints/generator/)
    mel = g.generate("calm", seconds=20, seed=7)           # (80, T) log-mel
    mel = g.generate([(0, -0.6, -0.5), (10, 0.7, 0.6)], seconds=20, seed=7)  # sad -> happy over 10 s
    more = g.generate("calm", seconds=10, seed=8, context=mel)             # continue a clip
    session = g.session("tense", seed=3)                    # an endless stream
    session.set_mood(0.6, -0.6, transition_s=4.0)
    chunk = session.next_slice()                            # (80, 32)

A seed fixes every random draw (a torch.Generator per clip), so the same request gives the same mel
on the same machine. The latent follows a slow random walk from slice to slice (each step keeps 90%
of the previous latent's direction, still N(0, 1) at every slice), so a clip keeps a character
instead of changing its mind every 0.37 s.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from moodmusic.mel import FRAMES_PER_SECOND, LOG_FLOOR
from moodmusic.mood import Mood, MoodError
from moodmusic.trajectory import MoodLike, Trajectory, TrajectoryPoint, check_seconds

from moodmusic.generator.model import GeneratorConfig, MelSliceGenerator

LATENT_PERSISTENCE = 0.9
WARMUP_AROUSAL = 0.0  # clips calmer than this start from a dropped slice written at this arousal (Session._warm_up)
NEUTRAL_CHOICES = ("any", "ambiguous")  # Guidance.neutral
def emphasised(valence: float, arousal: float, valence_scale: float) -> tuple[float, float]:
    """The condition for an asked mood: valence times `valence_scale`, clipped to [-1, 1]; arousal as asked."""
    return max(-1.0, min(1.0, valence_scale * valence)), arousal


@dataclass(frozen=True)
class Liveness:
    """Keeps a clip alive: a slice that falls silent or blows up is drawn again with fresh noise.

    Why (measured, docs/notes/2026-12-07-silence-and-mastering.md): the corpus holds stretches of digital silence (4% of clips, most of
    them calm or sad, up to 6 s), and every training clip starts from a silent context, so the generator
    learned that silence goes on: asked for "sad" from a silent start it writes silence again 94-96% of
    the time, and once silent a clip stays so for about 25 slices (9 s). It also writes, rarely, a slice
    far louder than any music it saw (log-mel up to 11 against the corpus's 1.05): peak normalisation
    then pushed the rest of the clip 70 dB down, into what sounded like silence. Loudness normalisation
    does the same, more mildly, to a burst 36 dB above the music around it: the burst sets the level.

    So every slice is checked as it is written: its level (10 log10 of the mel power, summed over bands,
    averaged over frames) must lie in [`quiet_db`, `loud_db`], around the range of the corpus's music (its
    quietest 5% of slices of sad music sit near -42 dB, its loudest at +11 dB; digital silence is -81 dB; the
    blown-up slices reach +40 to +86 dB), and after music it may not rise more than `jump_db` above the
    level of its context (in the corpus, 0.23% of slices do, nearly all of them music after silence).
    A slice outside it is written again from the same context and mood, with the walk's next noise, up to
    `retries` times; the draw closest to the range is kept. Whatever is kept is capped at `ceiling`
    (log-mel), a little above the loudest bin of the corpus. Draws come from the clip's own random stream,
    so a seed still fixes the mel. A slice inside the range costs nothing more.
    """

    quiet_db: float = -45.0
    loud_db: float = 20.0
    jump_db: float = 20.0
    ceiling: float = 2.5
    retries: int = 12

    @staticmethod
    def level_db(slices: torch.Tensor) -> torch.Tensor:
        """(B, 80, S) log-mel -> (B,) level in dB (mel power summed over bands, averaged over frames)."""
        return 10.0 * torch.log10(torch.exp(2.0 * slices.float()).sum(dim=1).mean(dim=1))

    def distance(self, slices: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """How far (dB) each slice's level lies outside its range; 0 inside. The range is [quiet_db, loud_db],
        and, after music (a context above quiet_db), no more than `jump_db` above the context's level."""
        level, before = self.level_db(slices), self.level_db(context)
        ceiling = torch.where(before > self.quiet_db, torch.clamp(before + self.jump_db, max=self.loud_db), torch.full_like(before, self.loud_db))
        return torch.clamp(self.quiet_db - level, min=0.0) + torch.clamp(level - ceiling, min=0.0)

    def write(
        self, model, context: torch.Tensor, mood: torch.Tensor, noise: tuple[torch.Tensor, torch.Tensor], redraws: list
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(slices, rejected): the model's slices for these rows, each rejected row redrawn with `redraws[row]()`
        -> (latent, frame noise); a row whose redraw is None is not redrawn, only reported in `rejected`
        (a guided candidate: another candidate is kept instead, which costs nothing)."""
        out = model(context, mood, *noise)
        distance = self.distance(out, context)
        for _ in range(self.retries):
            bad = [row for row in torch.nonzero(distance > 0).flatten().tolist() if redraws[row] is not None]
            if not bad:
                break
            latents, noises = zip(*(redraws[row]() for row in bad))
            again = model(context[bad], mood[bad], torch.cat(latents), torch.cat(noises))
            again_distance = self.distance(again, context[bad])
            for position, row in enumerate(bad):
                if again_distance[position] < distance[row]:
                    out[row], distance[row] = again[position], again_distance[position]
        return torch.clamp(out, max=self.ceiling), distance > 0


class Session:
    """One clip growing slice by slice: the generator's state between calls (for streams and clips)."""

    def __init__(
        self, model: MelSliceGenerator, mood: MoodLike, seed: int, context: torch.Tensor | np.ndarray | None = None, valence_scale: float = 1.0,
        warm_start: bool = True,
    ):
        self.model = model
        self.valence_scale = valence_scale  # Guidance.valence_scale: the condition is the asked valence times this, clipped
        self.device = next(model.parameters()).device
        self.rng = torch.Generator(device="cpu").manual_seed(int(seed))
        start = Trajectory.of(mood).at(0.0)
        self.valence, self.arousal = start
        self._glide: tuple[float, float, float, float, float] | None = None  # from v, a, to v, a, frames left
        self.context = self._initial_context(context)
        self.latent = torch.randn(1, model.latent_dim, generator=self.rng)
        self._previous_latent = self.latent
        self.frames_written = 0
        self.liveness = Liveness()
        if context is None and warm_start and self.arousal < WARMUP_AROUSAL:
            self._warm_up()

    @torch.inference_mode()
    def _warm_up(self) -> None:
        """Put music into the silent start context, then drop it: a warm start, for calm and sad clips.

        From a silent context the generator answers a calm or sad mood with silence (98% of first slices
        at arousal -0.7, 42% at -0.3, 2% at 0: docs/notes/2026-12-07-silence-and-mastering.md), so one slice is first written at the
        asked valence and an arousal of WARMUP_AROUSAL; the clip proper starts from it (2% of first slices
        at arousal -0.7 are then silent, and the liveness check redraws those) and settles at its own
        mood within a slice or two. Clips at arousal >= 0 start cold: their first slice is music anyway.
        """
        valence, arousal = emphasised(self.valence, WARMUP_AROUSAL, self.valence_scale)
        mood = torch.tensor([[valence, arousal]], device=self.device)
        out, _ = self.liveness.write(self.model, self.context, mood, self.draw_noise(), [self.redraw_noise])
        self.context = torch.cat([self.context, out], dim=2)[..., -self.model.context_frames :]

    def _initial_context(self, context) -> torch.Tensor:
        frames = self.model.context_frames
        start = torch.full((1, self.model.n_mels, frames), LOG_FLOOR)
        if context is not None:
            given = torch.as_tensor(context, dtype=torch.float32)
            if given.dim() != 2 or given.shape[0] != self.model.n_mels:
                raise ValueError(f"context must be a log-mel of shape ({self.model.n_mels}, T), got {tuple(given.shape)}")
            given = given[:, -frames:]
            start[0, :, frames - given.shape[1] :] = given
        return start.to(self.device)

    @property
    def slice_seconds(self) -> float:
        return self.model.slice_frames / FRAMES_PER_SECOND

    def set_mood(self, valence: float, arousal: float, transition_s: float = 0.0) -> None:
        """Glide from the current mood to this one over `transition_s` seconds (0: at the next slice)."""
        Mood(valence, arousal)
        if transition_s < 0 or not math.isfinite(transition_s):
            raise MoodError(f"transition_s must be a finite number >= 0, got {transition_s}")
        slices = max(1, math.ceil(transition_s / self.slice_seconds))
        self._glide = (self.valence, self.arousal, float(valence), float(arousal), slices, 0)

    def _advance_mood(self) -> None:
        if self._glide is None:
            return
        v0, a0, v1, a1, slices, done = self._glide
        done += 1
        t = min(1.0, done / slices)
        self.valence, self.arousal = v0 + (v1 - v0) * t, a0 + (a1 - a0) * t
        self._glide = None if t >= 1.0 else (v0, a0, v1, a1, slices, done)

    def draw_noise(self) -> tuple[torch.Tensor, torch.Tensor]:
        """This slice's latent (one step of the random walk) and frame noise, from the session's own seed."""
        self._previous_latent = self.latent
        fresh = torch.randn(1, self.model.latent_dim, generator=self.rng)
        self.latent = LATENT_PERSISTENCE * self.latent + math.sqrt(1 - LATENT_PERSISTENCE**2) * fresh
        frame_noise = torch.randn(1, self.model.frame_noise_channels, self.model.context_frames + self.model.slice_frames, generator=self.rng)
        return self.latent.to(self.device), frame_noise.to(self.device)

    def redraw_noise(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw this slice's noise again (the walk steps from the previous slice's latent), for a rejected slice."""
        self.latent = self._previous_latent
        return self.draw_noise()

    @torch.inference_mode()
    def next_slice(self, frames: int | None = None) -> torch.Tensor:
        """The next (80, slice_frames) log-mel frames, at the mood this slice was asked for (self.valence, self.arousal).

        `frames` (1 to slice_frames) keeps only the first frames of the slice, and the session continues from
        them: a stream ends a slice there to change the mood on a bar line."""
        self._advance_mood()
        latent, frame_noise = self.draw_noise()
        mood = torch.tensor([emphasised(self.valence, self.arousal, self.valence_scale)], device=self.device)
        out, _ = self.liveness.write(self.model, self.context, mood, (latent, frame_noise), [self.redraw_noise])
        if frames is not None:
            if not 1 <= frames <= out.shape[-1]:
                raise ValueError(f"frames must be between 1 and {out.shape[-1]}, got {frames}")
            out = out[..., :frames]
        self.context = torch.cat([self.context, out], dim=2)[..., -self.model.context_frames :]
        self.frames_written += out.shape[-1]
        return out[0].cpu()


@dataclass(frozen=True)
class Guidance:
    """Critic-guided sampling: every `chunk_slices` slices, `candidates` continuations are written from
    the same state with different noise, and the mode critic keeps the one that sounds most like the mode
    of the asked valence (major for valence > 0, minor below; no preference at 0).

    This is rejection sampling with a critic in the spirit of discriminator rejection sampling (Azadi et
    al. 2019), at the granularity of chunks so that the key chosen early is carried on. `candidates=1`
    is plain sampling, the same mel as without guidance.

    With `accept` set, the clip's own continuation (candidate 0) is written first and kept when the
    critic gives the asked mode at least that probability; only the other chunks pay for the other
    candidates. Without it, all candidates are written for every chunk.

    `neutral` says what the critic wants at valence 0, where no mode is asked for: "any" keeps candidate 0
    (plain sampling); "ambiguous" keeps the continuation whose mode the critic hears least clearly. Left
    alone, the generator writes minor for most quiet clips asked for valence 0 (the key estimate: 75-88%
    at arousal <= 0), and a neutral request sounds sad.

    `valence_scale` emphasises the mood: the generator is conditioned on the asked valence times this,
    clipped to [-1, 1], as a guidance scale above 1 trades some of a conditional model's spread for
    adherence to its condition. The generator under-expresses valence (heard valence is pulled towards
    0), and 1.5 wrote the asked mode more often on selection seeds (docs/notes/2026-12-02-mode-critic-and-guided-sampling.md). It applies with
    or without the critic, to clips and to the sessions of `MelGenerator.session` (live streams).
    """

    candidates: int = 1
    chunk_slices: int = 4
    accept: float | None = None
    valence_scale: float = 1.0
    neutral: str = "any"

    def __post_init__(self) -> None:
        if (self.candidates < 1 or self.chunk_slices < 1 or not (self.accept is None or 0.0 <= self.accept <= 1.0)
                or not (math.isfinite(self.valence_scale) and self.valence_scale > 0) or self.neutral not in NEUTRAL_CHOICES):  # fmt: skip
            raise ValueError(
                f"guidance needs candidates >= 1, chunk_slices >= 1, accept in [0, 1] or None, valence_scale > 0 "
                f"and neutral in {NEUTRAL_CHOICES}, got {self}"
            )

    def condition(self, valence: float, arousal: float) -> tuple[float, float]:
        """The (valence, arousal) the generator is conditioned on for an asked mood."""
        return emphasised(valence, arousal, self.valence_scale)


def candidate_seed(seed: int, candidate: int) -> int:
    """Candidate 0 draws from the clip's own seed (so one candidate is plain sampling); others from their own streams."""
    return int(seed) if candidate == 0 else int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, candidate]).generate_state(1)[0])


class MelGenerator:
    """The loaded generator with its version; `generate` for clips, `session` for streams."""

    def __init__(self, model: MelSliceGenerator, config: GeneratorConfig, version: str = "untrained", critic=None, guidance: Guidance = Guidance()):
        self.model = model.eval()
        self.config = config
        self.weights_version = version
        self.critic = critic  # generator.critic.ModeCritic, or None (then guidance is off)
        self.guidance = guidance
        self.liveness = Liveness()

    @property
    def version(self) -> str:
        """The weights' version, and with guidance the critic's and the settings: the same version, the same mel."""
        parts = [self.weights_version]
        if self.critic is not None and self.guidance.candidates > 1:
            critic = getattr(self.critic, "version", "critic")
            accept = "" if self.guidance.accept is None else f"@{self.guidance.accept:g}"
            parts.append(f"{critic}x{self.guidance.candidates}/{self.guidance.chunk_slices}{accept}")
            if self.guidance.neutral != "any":
                parts.append(f"neutral-{self.guidance.neutral}")
        if self.guidance.valence_scale != 1.0:
            parts.append(f"v{self.guidance.valence_scale:g}")
        return "+".join(parts)

    @property
    def slice_frames(self) -> int:
        return self.config.slice_frames

    def set_candidates(self, candidates: int) -> None:
        """Candidates per chunk for guided sampling from now on (1: plain sampling)."""
        self.guidance = dataclasses.replace(self.guidance, candidates=candidates)

    def session(self, mood: MoodLike, seed: int = 0, context=None) -> Session:
        return Session(self.model, mood, seed, context, valence_scale=self.guidance.valence_scale)

    def generate(
        self, mood: MoodLike | Sequence[TrajectoryPoint] | Trajectory, seconds: float, seed: int = 0, context=None, progress=None,
        guidance: Guidance | None = None, extra_seconds: float = 0.0,
    ) -> torch.Tensor:
        """A (80, T) log-mel of `seconds` (1 to 120) for a mood or a trajectory; `progress(done, total)` is called per slice.
        `extra_seconds` more are written past the checked duration (a loop's warm-up, search span and crossfade)."""
        return self.generate_batch([mood], seconds, [seed], [context], progress, guidance, extra_seconds)[0]

    @torch.inference_mode()
    def generate_batch(
        self, moods: Sequence, seconds: float, seeds: Sequence[int], contexts: Sequence | None = None, progress=None,
        guidance: Guidance | None = None, extra_seconds: float = 0.0,
    ) -> torch.Tensor:
        """Many clips of one length at once (one forward pass per slice for all): (B, 80, T)."""
        seconds = check_seconds(seconds) + max(0.0, float(extra_seconds))
        if len(moods) != len(seeds):
            raise ValueError("one seed per mood")
        guidance = guidance or self.guidance
        candidates = guidance.candidates if self.critic is not None else 1
        trajectories = [Trajectory.of(m) for m in moods]
        contexts = contexts or [None] * len(moods)
        # sessions[clip][k] holds candidate k's random stream; after each chunk every candidate of a clip
        # continues from the state of the one that was kept.
        sessions = [
            [Session(self.model, (t.valence[0], t.arousal[0]), candidate_seed(s, k), c, guidance.valence_scale, warm_start=k == 0) for k in range(candidates)]
            for t, s, c in zip(trajectories, seeds, contexts)
        ]  # fmt: skip
        total_frames = round(seconds * FRAMES_PER_SECOND)
        n_slices = math.ceil(total_frames / self.slice_frames)
        context = torch.cat([clip[0].context for clip in sessions])  # (B, 80, context frames): each clip's kept state
        chosen: list[torch.Tensor] = []  # (B, 80, frames) per chunk
        heard = None  # (B, 12, frames): the critic's pitch classes of the chosen frames, up to its window
        everyone = [(clip, k) for clip in range(len(sessions)) for k in range(candidates)]
        for first in range(0, n_slices, guidance.chunk_slices):
            indices = range(first, min(n_slices, first + guidance.chunk_slices))
            centre = (first + len(indices) / 2) * self.slice_frames / FRAMES_PER_SECOND
            valences = [t.at(centre)[0] for t in trajectories]
            if candidates == 1:
                chunk, context, _ = self._write([(clip, 0) for clip in range(len(sessions))], sessions, trajectories, context, indices, n_slices, progress, guidance)
                chosen.append(chunk)
                continue
            rows = everyone if guidance.accept is None else [(clip, 0) for clip in range(len(sessions))]
            chunk, ends, rejected = self._write(rows, sessions, trajectories, context, indices, n_slices, progress, guidance)
            scores, classes = self._scores(chunk, heard, [valences[clip] for clip, _ in rows], [clip for clip, _ in rows], guidance)
            if guidance.accept is not None:
                # Candidate 0 stays where the critic is sure enough of the asked mode (or there is no mode to ask for).
                probability = torch.sigmoid(scores)
                retry = [clip for clip in range(len(sessions)) if valences[clip] != 0 and float(probability[clip]) < guidance.accept]
                more = [(clip, k) for clip in retry for k in range(1, candidates)]
                if more:
                    extra, extra_ends, extra_rejected = self._write(more, sessions, trajectories, context, indices, None, None, guidance)
                    extra_scores, extra_classes = self._scores(extra, heard, [valences[clip] for clip, _ in more], [clip for clip, _ in more], guidance)
                    rows, chunk, ends = rows + more, torch.cat([chunk, extra]), torch.cat([ends, extra_ends])
                    scores, classes = torch.cat([scores, extra_scores]), torch.cat([classes, extra_classes])
                    rejected = torch.cat([rejected, extra_rejected])
            # A candidate with a slice the liveness check rejected (silent or blown up) is never kept; candidate 0
            # is redrawn instead of rejected, so every clip keeps one.
            scores = torch.where(rejected.to(scores.device), torch.full_like(scores, -math.inf), scores)
            # The best row of each clip; ties (valence 0 with neutral "any": every score is 0) go to the first row, candidate 0.
            best: dict[int, int] = {}
            for row, (clip, _) in enumerate(rows):
                if clip not in best or scores[row] > scores[best[clip]]:
                    best[clip] = row
            winners = [best[clip] for clip in range(len(sessions))]
            for clip, row in enumerate(winners):
                latent = sessions[clip][rows[row][1]].latent.clone()
                for session in sessions[clip]:
                    session.latent = latent.clone()
            context, heard = ends[winners], classes[winners]
            chosen.append(chunk[winners])
        return torch.cat(chosen, dim=2)[..., :total_frames].cpu()

    def _write(self, rows, sessions, trajectories, context, indices, n_slices, progress, guidance: Guidance) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Slices `indices` for each (clip, candidate) row, from its clip's kept context: the (R, 80, frames)
        chunk, each row's context after it, and whether a row holds a slice the liveness check rejected.
        Candidate 0 is redrawn when a slice is rejected; the other candidates are only marked."""
        device = context.device
        context = context[[clip for clip, _ in rows]]
        rejected = torch.zeros(len(rows), dtype=torch.bool)
        redraws = [sessions[clip][k].redraw_noise if k == 0 else None for clip, k in rows]
        pieces = []
        for index in indices:
            centre = (index + 0.5) * self.slice_frames / FRAMES_PER_SECOND
            mood = torch.tensor([guidance.condition(*trajectories[clip].at(centre)) for clip, _ in rows], dtype=torch.float32, device=device)
            latents, noises = zip(*(sessions[clip][k].draw_noise() for clip, k in rows))
            out, bad = self.liveness.write(self.model, context, mood, (torch.cat(latents), torch.cat(noises)), redraws)
            rejected |= bad.cpu()
            context = torch.cat([context, out], dim=2)[..., -self.model.context_frames :]
            pieces.append(out)
            if progress is not None:
                progress(index + 1, n_slices)
        return torch.cat(pieces, dim=2), context, rejected

    def _scores(
        self, chunk: torch.Tensor, heard: torch.Tensor | None, valences: list[float], clips: list[int], guidance: Guidance
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Each row's score (the critic's logit for the asked mode: > 0 when it hears that mode; at valence
        0, 0 or with neutral "ambiguous" minus the logit's size) on its chunk read with its clip's chosen frames before it, up to the critic's 3 s
        window; and the pitch classes of that window, kept for the next chunk.

        The critic reads the mean pitch-class profile of the window, and pitch classes are computed
        frame by frame, so the chosen frames' are kept instead of being computed again for every chunk.
        """
        classes = self.critic.pitch_classes(chunk)  # (R, 12, frames)
        if heard is not None:
            classes = torch.cat([heard[clips], classes], dim=2)[..., -self.critic.window_frames :]
        major_logit = self.critic.read_profile(classes.mean(dim=2))
        wanted = torch.tensor([float(np.sign(v)) for v in valences], device=major_logit.device)
        scores = major_logit * wanted
        if guidance.neutral == "ambiguous":
            scores = torch.where(wanted == 0, -major_logit.abs(), scores)
        return scores, classes
