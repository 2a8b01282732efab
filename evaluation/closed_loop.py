"""`moodmusic evaluate chain`: the closed loop. Ask for moods, generate, listen, and measure what came out.

A grid of moods x seeds goes through the whole chain (generator -> vocoder -> classifier -> narrator), and
the report says:
- mood: the quadrant confusion (asked vs heard) and accuracy, asked-vs-heard scatter, MAE and Spearman
  per dimension;
- the independent acoustic judge (moodmusic/acoustic.py: tempo, onset rate, loudness, centroid, mode),
  which uses no model of ours, correlated with the asked mood (and, as a reference, with the labels of
  real test clips);
- diversity: mean pairwise log-mel L1 between seeds of one mood, against the same between different real
  test clips of one quadrant;
- realism: Fréchet distance on the classifier's embeddings between generated and real test clips, beside
  copy-synthesis (real mels -> vocoder) and shuffled slices (real mels cut into slices, shuffled across
  clips of a quadrant -> vocoder), and the distance between two disjoint sets of real clips (the floor
  that the set sizes allow);
- narration consistency: the share of narratives that name the heard primary mood or a synonym.

The real clips come from the corpus's test split, split in two disjoint halves: the reference set (real
audio) and the set that is copy-synthesised and shuffled, so no distance compares a clip with itself.
`evaluate_grid(pipeline, config)` returns the report's JSON for the server (`POST /v1/evaluate`).
"""

from __future__ import annotations

import dataclasses

import argparse
import datetime
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from moodmusic.metrics import frechet_distance, mean_pairwise_l1, quadrant_confusion, spearman
from moodmusic.mood import QUADRANTS, quadrant

# The closed loop's targets: (key in the report, comparison, threshold, wording).
TARGETS = {
    "quadrant_accuracy": (">=", 0.8, "the classifier hears the asked quadrant in >= 80% of clips, a clip failing a level gate counted as a miss"),
    "valence_mae": ("<=", 0.3, "valence MAE <= 0.3"),
    "arousal_mae": ("<=", 0.3, "arousal MAE <= 0.3"),
    "arousal_spearman": (">=", 0.7, "Spearman(asked, heard arousal) >= 0.7"),
    "valence_spearman": (">=", 0.5, "Spearman(asked, heard valence) >= 0.5"),
    "diversity_ratio": (">=", 0.5, "seed diversity >= half the real same-quadrant diversity"),
    "frechet_margin": (">", 0.0, "Fréchet distance: generated beats shuffled slices"),
}
# The acoustic judge's targets: no model of ours, so the classifier cannot grade its own homework.
ACOUSTIC_TARGETS = {
    "key_mode_agreement": (">=", 0.75, "key mode (Krumhansl) agrees with the sign of the asked valence in >= 75% of clips"),
    "onset_rate_arousal_spearman": (">=", 0.6, "Spearman(asked arousal, onset rate) >= 0.6"),
}
# Level gates a judge cannot overrule: a clip failing one is a miss whatever the classifier hears
# (moodmusic.mastering: floor -30 LUFS, no 1 s below -60 dBFS, true peak <= -1 dBTP).
GATES = ("floor", "dead_air", "true_peak")
ACOUSTIC_NUMBERS = ("tempo_bpm", "onset_rate", "rms_db", "centroid_hz", "major")
DIVERSITY_MAX_PAIRS = 2000  # real same-quadrant pairs sampled per quadrant (there are ~20k in the full test split)


@dataclass(frozen=True)
class ClosedLoopConfig:
    """The grid of moods and seeds the closed loop generates, and what it measures on them; used by `moodmusic evaluate
    chain` and the server's `POST /v1/evaluate`. `quick()` is the CI grid."""

    grid: int = 5  # grid x grid moods over [-extent, extent]^2
    extent: float = 0.8
    seeds: int = 4  # seeds per mood: first_seed, first_seed + 1, ...
    first_seed: int = 0
    seconds: float = 10.0  # per generated clip; real clips are cut to the same length at most
    corpus: str | None = "data/corpus"  # its test split gives the real clips; None: no real references
    real_clips: int = 0  # 0: twice the generated clips (two disjoint halves), capped by the test split
    batch: int = 16  # clips generated per forward pass (the generator steps slice by slice: batching pays)
    # Clips vocoded per pass. Not more: on this CPU a batch of 16 x 4 s rendered 3x slower than 16 single
    # renders (24 s vs 8 s), while batches of 2-4 were about 30% faster than single ones.
    vocoder_batch: int = 4
    slice_frames: int = 32  # the shuffled-slice reference's slice length
    narrate: bool = True
    acoustic: bool = True
    progress: bool = True

    @classmethod
    def quick(cls, **overrides: Any) -> ClosedLoopConfig:
        """The CI grid: 3 x 3 moods x 2 seeds of 4 s (18 clips), against 16 real clips (8 + 8), to stay well under 3 minutes."""
        return cls(**{"grid": 3, "seeds": 2, "seconds": 4.0, "real_clips": 16, **overrides})

    def moods(self) -> list[tuple[float, float]]:
        """The grid's (valence, arousal) points, rows from high arousal to low."""
        values = [round(float(x), 6) for x in np.linspace(-self.extent, self.extent, self.grid)]
        return [(v, a) for a in reversed(values) for v in values]

    @property
    def clips(self) -> int:
        return self.grid * self.grid * self.seeds


@dataclass
class _Generated:
    """Per-clip results of the generated side, and the arrays the images need."""

    records: list[dict] = field(default_factory=list)
    mels: list[np.ndarray] = field(default_factory=list)  # float16 (80, T), what the generator wrote
    embeddings: list[list[float]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class _Real:
    reference: list  # LabelledClip: real audio, the Fréchet reference
    synthesised: list  # LabelledClip: copy-synthesised and shuffled
    audio: dict = field(default_factory=dict)  # id(clip) -> samples
    mels: dict = field(default_factory=dict)  # id(clip) -> (80, T)


class EvaluationStopped(RuntimeError):
    """The caller stopped waiting (a server's deadline): the grid's remaining work was abandoned."""


def check_stop(config: ClosedLoopConfig) -> None:
    """Raise EvaluationStopped if this run's caller asked it to stop (`evaluate_grid(stop=...)`)."""
    stop = getattr(config, "stop_event", None)
    if stop is not None and stop.is_set():
        raise EvaluationStopped("the evaluation was stopped: its caller stopped waiting")


def _tqdm(config: ClosedLoopConfig, **kwargs):
    """The progress bar of each stage; it is also where a run stops when its caller asked (`evaluate_grid(stop=...)`):
    each clip passes through one of these bars, so a stop takes effect within one clip (or one batch)."""
    import sys

    from tqdm import tqdm

    class StoppableBar(tqdm):
        def _check(self) -> None:
            check_stop(config)

        def update(self, n=1):
            self._check()
            return super().update(n)

        def __iter__(self):
            for item in super().__iter__():
                self._check()
                yield item

    return StoppableBar(disable=not config.progress, file=sys.stderr, **kwargs)


def _timed(timings: dict[str, float], name: str):
    """A context manager adding the block's wall time to timings[name]."""
    from contextlib import contextmanager

    @contextmanager
    def block():
        started = time.perf_counter()
        try:
            yield
        finally:
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - started

    return block()


def _acoustic_numbers(samples: np.ndarray) -> dict:
    import warnings

    from moodmusic.acoustic import acoustic_features

    with warnings.catch_warnings():  # near-silent clips (an untrained model) make librosa warn once per clip
        warnings.filterwarnings("ignore", message="Trying to estimate tuning", category=UserWarning)
        features = acoustic_features(samples).as_dict()
    features["major"] = 1.0 if features["mode"] == "major" else 0.0
    return features


def render(vocoder, mels, batch: int) -> np.ndarray:
    """(B, 80, T) mels -> (B, T * 256) float32 audio, `batch` at a time."""
    return np.concatenate([vocoder.render(mels[i : i + batch]).cpu().numpy() for i in range(0, len(mels), batch)]).astype(np.float32)


def master_for_listening(audio: np.ndarray, arousal: float):
    """(audio, LevelReport): the clip mastered as the chain masters it; audio that cannot be mastered
    (silence) is kept as it came, and its report fails the gates."""
    from moodmusic import mastering

    try:
        done = mastering.master(audio, arousal)
    except mastering.MasteringError:
        return audio, mastering.measure(audio, arousal=arousal)
    return done.audio, mastering.report(done)


def generate_and_listen(pipeline, config: ClosedLoopConfig) -> _Generated:
    """Every mood x seed through generator (batched), vocoder (batched), mastering, classifier, narrator, acoustic judge.

    The grid goes to the chain in batches (`pipeline.map`): one after another in this process, or each batch a task
    on a Ray cluster when the chain is a `moodmusic.cluster.ClusterChain` (`moodmusic evaluate --ray`)."""
    jobs = [(mood, seed) for mood in config.moods() for seed in range(config.first_seed, config.first_seed + config.seeds)]
    # A batch travels without this run's stop event (a cluster cannot carry it); the bar below checks it between batches.
    plain = dataclasses.replace(config)
    batches = [(plain, first, jobs[first : first + config.batch]) for first in range(0, len(jobs), config.batch)]
    out = _Generated()
    with _tqdm(config, total=len(jobs), desc="closed loop", unit="clip") as bar:
        for done in pipeline.map(listen_to_batch, batches):
            out.records += done.records
            out.mels += done.mels
            out.embeddings += done.embeddings
            for name, seconds in done.timings.items():
                out.timings[name] = out.timings.get(name, 0.0) + seconds
            bar.update(len(done.records))
    return out


def listen_to_batch(pipeline, batch: tuple[ClosedLoopConfig, int, list]) -> _Generated:
    """One batch of the grid, (config, index of its first clip, [(mood, seed), ...]), made and heard by `pipeline`."""
    from moodmusic.narrator import names_mood, narrate

    config, first, chunk = batch
    out = _Generated()
    with _timed(out.timings, "generator_s"):
        mels = pipeline.generator.generate_batch([m for m, _ in chunk], config.seconds, [s for _, s in chunk])
    with _timed(out.timings, "vocoder_s"):
        audios = render(pipeline.vocoder, mels, config.vocoder_batch)
    for index, (((valence, arousal), seed), mel, audio) in enumerate(zip(chunk, mels, audios), start=first):
        with _timed(out.timings, "mastering_s"):
            audio, level = master_for_listening(audio, arousal)
        with _timed(out.timings, "classifier_s"):
            analysis = pipeline.classifier.analyze(audio)
        heard = analysis.overall
        record = {
            "valence": valence, "arousal": arousal, "seed": seed, "asked_quadrant": quadrant(valence, arousal),
            "heard_valence": heard.valence, "heard_arousal": heard.arousal, "heard_quadrant": analysis.quadrant,
            "primary_mood": heard.primary_mood, "level": level.as_dict(),
            "gates_failed": [gate for gate in level.gates_failed if gate in GATES],
        }  # fmt: skip
        if config.narrate:
            with _timed(out.timings, "narrator_s"):
                narration = narrate(analysis, seed=index, narrator=pipeline.narrator)
            record.update(narrator=narration.narrator, fallback=narration.fallback_reason is not None,
                          names_primary=names_mood(narration.narrative, heard.primary_mood))  # fmt: skip
        if config.acoustic:
            with _timed(out.timings, "acoustic_s"):
                record["acoustic"] = _acoustic_numbers(audio)
        out.records.append(record)
        out.mels.append(mel.numpy().astype(np.float16))
        out.embeddings.append(analysis.embedding)
    return out


def _pick_evenly(items: list, count: int) -> list:
    if count >= len(items):
        return list(items)
    return [items[i] for i in np.unique(np.linspace(0, len(items) - 1, count).round().astype(int))]


def select_real(config: ClosedLoopConfig) -> _Real | str:
    """Balanced test-split clips in two disjoint halves, or the reason there are none."""
    from moodmusic.corpus.loaders import DatasetError, load_any

    if not config.corpus:
        return "no corpus given"
    try:
        clips = [c for c in load_any(Path(config.corpus)) if c.split == "test"]
    except (DatasetError, OSError) as error:
        return f"no corpus: {error}"
    if len(clips) < 4:
        return f"no corpus: {config.corpus} has {len(clips)} test-split clips (need at least 4)"
    wanted = config.real_clips or 2 * config.clips
    per_quadrant = 2 * math.ceil(wanted / (2 * len(QUADRANTS)))  # even, so the two halves are the same size
    reference, synthesised = [], []
    for name in QUADRANTS:
        chosen = _pick_evenly(sorted((c for c in clips if quadrant(c.valence, c.arousal) == name), key=lambda c: str(c.audio)), per_quadrant)
        reference += chosen[0::2]  # alternate, so both halves span the quadrant's pieces
        synthesised += chosen[1::2]
    return _Real(reference, synthesised)


def _load_real(real: _Real, config: ClosedLoopConfig) -> None:
    """Audio and log-mel of every selected clip, cut to the generated clips' length at most."""
    import torch

    from moodmusic.audio import load_audio
    from moodmusic.mel import frames_for_samples, log_mel

    for clip in _tqdm(config, iterable=real.reference + real.synthesised, desc="real clips", unit="clip"):
        audio = load_audio(clip.audio, max_seconds=config.seconds)
        frames = frames_for_samples(audio.size)
        if clip.mel is not None and clip.mel.exists():
            mel = np.load(clip.mel)[:, :frames]
        else:
            mel = log_mel(torch.from_numpy(audio)).numpy()
        real.audio[id(clip)], real.mels[id(clip)] = audio, mel.astype(np.float16)


def shuffle_slices(mels: list[np.ndarray], groups: list[str], slice_frames: int, seed: int = 0) -> list[np.ndarray]:
    """Each mel rebuilt from `slice_frames`-frame slices drawn at random from all mels of its group.

    The slices are real music; what is lost is the continuity from one slice to the next, which is
    exactly what an autoregressive generator must get right to beat this reference.
    """
    rng = np.random.default_rng(seed)
    pools: dict[str, list[np.ndarray]] = {}
    for mel, group in zip(mels, groups):
        pools.setdefault(group, []).extend(mel[:, s : s + slice_frames] for s in range(0, mel.shape[1] - slice_frames + 1, slice_frames))
    shuffled = []
    for mel, group in zip(mels, groups):
        pool = pools[group] or [mel]
        needed = math.ceil(mel.shape[1] / slice_frames)
        picks = rng.choice(len(pool), size=needed, replace=needed > len(pool))
        shuffled.append(np.concatenate([pool[i] for i in picks], axis=1)[:, : mel.shape[1]])
    return shuffled


def _render_and_embed(pipeline, mels: list[np.ndarray], config: ClosedLoopConfig, desc: str) -> list[list[float]]:
    """mels -> vocoder (batched by equal length) -> classifier embeddings, in the input order."""
    from moodmusic.audio import prevent_clipping

    embeddings: list[list[float] | None] = [None] * len(mels)
    by_length: dict[int, list[int]] = {}
    for index, mel in enumerate(mels):
        by_length.setdefault(mel.shape[-1], []).append(index)
    with _tqdm(config, total=len(mels), desc=desc, unit="clip") as bar:
        for indices in by_length.values():
            for first in range(0, len(indices), config.vocoder_batch):
                batch = indices[first : first + config.vocoder_batch]
                audios = render(pipeline.vocoder, np.stack([mels[i] for i in batch]).astype(np.float32), config.vocoder_batch)
                for index, audio in zip(batch, audios):
                    embeddings[index] = pipeline.classifier.analyze(prevent_clipping(audio)).embedding
                    bar.update(1)
    return embeddings


def _mood_section(records: list[dict]) -> dict:
    asked = np.array([[r["valence"], r["arousal"]] for r in records])
    heard = np.array([[r["heard_valence"], r["heard_arousal"]] for r in records])
    # A point on an axis belongs to a quadrant only by the tie rule (zero counts as positive); the
    # accuracy that the acceptance reads counts the points whose asked quadrant is unambiguous.
    off_axis = (asked[:, 0] != 0) & (asked[:, 1] != 0)
    confusion = quadrant_confusion(asked[off_axis], heard[off_axis])
    # Every mood of the grid is generated with the same seeds, so a seed is one latent draw shared by
    # all moods: the spread of the accuracy across seeds says how far the mean would move with others.
    by_seed: dict[int, float] = {}
    if all("seed" in r for r in records):  # generated clips; the real reference clips have none
        seeds = np.array([r["seed"] for r in records])
        by_seed = {
            int(seed): quadrant_confusion(asked[off_axis & (seeds == seed)], heard[off_axis & (seeds == seed)])["accuracy"]
            for seed in np.unique(seeds[off_axis])
        }
    seed_accuracies = np.array(list(by_seed.values()), dtype=float)
    gates: dict[str, Any] = {}
    accuracy = confusion["accuracy"]
    if all("gates_failed" in r for r in records):  # generated clips: a clip that fails a level gate is a miss
        failed = np.array([bool(r["gates_failed"]) for r in records])
        hits = np.array([r["heard_quadrant"] == r["asked_quadrant"] for r in records]) & ~failed
        accuracy = float(hits[off_axis].mean()) if off_axis.any() else None
        gates = {
            "quadrant_accuracy_ungated": confusion["accuracy"],
            "gates": {gate: int(sum(gate in r["gates_failed"] for r in records)) for gate in GATES},
            "clips_failing_a_gate": int(failed.sum()),
            "off_target": int(sum("target" in r["level"]["gates_failed"] for r in records)),
            "loudness_lufs": _spread([r["level"]["loudness_lufs"] for r in records]),
            "true_peak_dbtp_max": max((r["level"]["true_peak_dbtp"] for r in records if r["level"]["true_peak_dbtp"] is not None), default=None),
            "loudness_error_lu_max": max((abs(r["level"]["loudness_lufs"] - r["level"]["target_lufs"]) for r in records
                                          if r["level"]["loudness_lufs"] is not None), default=None),
        }  # fmt: skip
    return {
        "clips": len(records),
        "off_axis_clips": int(off_axis.sum()),
        "quadrant_accuracy": accuracy,
        **gates,
        "quadrant_accuracy_all_points": quadrant_confusion(asked, heard)["accuracy"],
        "confusion": confusion,
        "quadrant_accuracy_by_seed": by_seed,
        "quadrant_accuracy_seed_stderr": float(seed_accuracies.std(ddof=1) / np.sqrt(len(seed_accuracies))) if len(seed_accuracies) > 1 else None,
        "valence_mae": float(np.mean(np.abs(heard[:, 0] - asked[:, 0]))),
        "arousal_mae": float(np.mean(np.abs(heard[:, 1] - asked[:, 1]))),
        "valence_spearman": spearman(asked[:, 0], heard[:, 0]),
        "arousal_spearman": spearman(asked[:, 1], heard[:, 1]),
    }


def _spread(values: list) -> dict | None:
    values = [v for v in values if v is not None]
    return {"min": float(min(values)), "median": float(np.median(values)), "max": float(max(values))} if values else None


def acoustic_section(features: list[dict], valence, arousal) -> dict:
    """The judge's mean features, their Spearman correlations with valence and arousal, and mode agreement."""
    valence, arousal = np.asarray(valence, dtype=float), np.asarray(arousal, dtype=float)
    columns = {name: np.array([f[name] for f in features], dtype=float) for name in ACOUSTIC_NUMBERS}
    return {
        "clips": len(features),
        "mean": {name: float(values.mean()) for name, values in columns.items()},
        "spearman": {name: {"valence": spearman(valence, values), "arousal": spearman(arousal, values)} for name, values in columns.items()},
        # the mode estimate agrees with the sign of valence (major for pleasant, minor for unpleasant)
        "mode_agreement": float(np.mean((columns["major"] == 1.0) == (valence >= 0))),
    }


def _diversity_section(generated: _Generated, real: _Real | None) -> dict:
    by_mood: dict[tuple[float, float], list[np.ndarray]] = {}
    for record, mel in zip(generated.records, generated.mels):
        by_mood.setdefault((record["valence"], record["arousal"]), []).append(mel)
    scores = [mean_pairwise_l1(mels)[0] for mels in by_mood.values() if len(mels) > 1]
    section: dict[str, Any] = {"generated_mean_pairwise_l1": float(np.mean(scores)) if scores else None, "frames": int(generated.mels[0].shape[-1])}
    section["real_same_quadrant_mean_pairwise_l1"] = section["ratio"] = None
    if real is not None:
        # the real clips are cut to the length of the generated ones, so both compare the same frames
        real_scores, weights = [], []
        for name in QUADRANTS:
            mels = [real.mels[id(c)][:, : section["frames"]] for c in real.reference + real.synthesised if quadrant(c.valence, c.arousal) == name]
            value, pairs = mean_pairwise_l1(mels, DIVERSITY_MAX_PAIRS)
            if value is not None:
                real_scores.append(value)
                weights.append(pairs)
        if real_scores:
            section["real_same_quadrant_mean_pairwise_l1"] = float(np.average(real_scores, weights=weights))
            if section["generated_mean_pairwise_l1"] is not None:
                section["ratio"] = section["generated_mean_pairwise_l1"] / section["real_same_quadrant_mean_pairwise_l1"]
    return section


def _realism_section(pipeline, config: ClosedLoopConfig, generated: _Generated, real: _Real, timings: dict) -> tuple[dict, dict]:
    """Fréchet distances against the real reference set, and the embedding sets for the image."""
    with _timed(timings, "real_reference_s"):
        reference_analyses = [pipeline.classifier.analyze(real.audio[id(c)]) for c in _tqdm(config, iterable=real.reference, desc="real reference", unit="clip")]
    synth_mels = [real.mels[id(c)] for c in real.synthesised]
    with _timed(timings, "copy_synthesis_s"):
        copy_embeddings = _render_and_embed(pipeline, synth_mels, config, "copy-synthesis")
    with _timed(timings, "shuffled_slices_s"):
        groups = [quadrant(c.valence, c.arousal) for c in real.synthesised]
        shuffled_embeddings = _render_and_embed(pipeline, shuffle_slices(synth_mels, groups, config.slice_frames), config, "shuffled slices")
    sets = {
        "real reference": np.array([a.embedding for a in reference_analyses]),
        "generated": np.array(generated.embeddings),
        "copy-synthesis": np.array(copy_embeddings),
        "shuffled slices": np.array(shuffled_embeddings),
    }
    with _timed(timings, "real_reference_s"):
        real_other = np.array([pipeline.classifier.analyze(real.audio[id(c)]).embedding for c in real.synthesised])
    reference = sets["real reference"]
    frechet = {
        "generated": frechet_distance(sets["generated"], reference),
        "copy_synthesis": frechet_distance(sets["copy-synthesis"], reference),
        "shuffled_slices": frechet_distance(sets["shuffled slices"], reference),
        "real_vs_real": frechet_distance(real_other, reference),
    }
    labels = np.array([[c.valence, c.arousal] for c in real.reference])
    heard = np.array([[a.overall.valence, a.overall.arousal] for a in reference_analyses])
    section = {
        "frechet": frechet,
        "sizes": {"reference": len(reference), "generated": len(sets["generated"]), "copy_synthesis": len(copy_embeddings),
                  "shuffled_slices": len(shuffled_embeddings), "real_other": len(real_other)},  # fmt: skip
        "embedding_dim": int(reference.shape[1]),
        "slice_frames": config.slice_frames,
        "margin": None if frechet["generated"] is None or frechet["shuffled_slices"] is None else frechet["shuffled_slices"] - frechet["generated"],
        # how well the classifier hears the real reference clips: the ceiling of the mood section
        "real_reference_classifier": {k: v for k, v in _mood_section(
            [{"valence": v, "arousal": a, "heard_valence": hv, "heard_arousal": ha} for (v, a), (hv, ha) in zip(labels, heard)]
        ).items() if k != "confusion"},
    }  # fmt: skip
    return section, sets


def _acceptance(report: dict) -> dict:
    mood, diversity, realism = report["mood"], report["diversity"], report["realism"]
    measured = {
        "quadrant_accuracy": mood["quadrant_accuracy"], "valence_mae": mood["valence_mae"], "arousal_mae": mood["arousal_mae"],
        "arousal_spearman": mood["arousal_spearman"], "valence_spearman": mood["valence_spearman"],
        "diversity_ratio": diversity["ratio"], "frechet_margin": realism.get("margin"),
    }  # fmt: skip
    targets = dict(TARGETS)
    acoustic = report.get("acoustic", {}).get("generated_vs_asked")
    if acoustic is not None:
        measured["key_mode_agreement"] = acoustic["mode_agreement"]
        measured["onset_rate_arousal_spearman"] = acoustic["spearman"]["onset_rate"]["arousal"]
        targets.update(ACOUSTIC_TARGETS)
    if "clips_failing_a_gate" in mood:
        measured["level_gates_passed"] = 1.0 - mood["clips_failing_a_gate"] / mood["clips"]
        targets["level_gates_passed"] = (">=", 1.0, "every clip passes the level gates (>= -30 LUFS, no 1 s below -60 dBFS, <= -1 dBTP)")
    result = {}
    for key, (comparison, threshold, wording) in targets.items():
        value = measured[key]
        met = None if value is None else (value >= threshold if comparison == ">=" else value <= threshold if comparison == "<=" else value > threshold)
        result[key] = {"target": wording, "measured": value, "met": met}
    return result


def _clean(value: Any) -> Any:
    """JSON-safe: numpy scalars to Python, non-finite floats to None (the JSON is written with allow_nan=False)."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(float(value)) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _run(pipeline, config: ClosedLoopConfig) -> tuple[dict, dict]:
    """The report, and the arrays its images need (mels, embedding sets)."""
    import os
    import platform

    import torch

    started = time.perf_counter()
    generated = generate_and_listen(pipeline, config)
    timings = dict(generated.timings)
    real = select_real(config)
    no_real = real if isinstance(real, str) else None
    real = None if no_real else real
    if real is not None:
        with _timed(timings, "real_loading_s"):
            _load_real(real, config)
    records = generated.records
    report: dict[str, Any] = {
        "date": datetime.date.today().isoformat(),
        "config": asdict(config),
        "versions": pipeline.versions,
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "processor": platform.processor() or platform.machine()},
        "clips": len(records),
        "mood": _mood_section(records),
    }
    if config.acoustic:
        report["acoustic"] = {"generated_vs_asked": acoustic_section([r["acoustic"] for r in records], [r["valence"] for r in records], [r["arousal"] for r in records])}
    report["diversity"] = _diversity_section(generated, real)
    sets: dict[str, np.ndarray] = {"generated": np.array(generated.embeddings)}
    if real is not None:
        report["realism"], sets = _realism_section(pipeline, config, generated, real, timings)
        if config.acoustic:
            with _timed(timings, "acoustic_s"):
                features = [_acoustic_numbers(real.audio[id(c)]) for c in real.reference]
            labels = np.array([[c.valence, c.arousal] for c in real.reference])
            report["acoustic"]["real_vs_labels"] = acoustic_section(features, labels[:, 0], labels[:, 1])
    else:
        report["realism"] = {"available": False, "reason": no_real, "frechet": None, "margin": None}
    if config.narrate:
        report["narration"] = {
            "clips": len(records),
            "names_heard_primary_rate": float(np.mean([r["names_primary"] for r in records])),
            "narrators": sorted({r["narrator"] for r in records}),
            "fallbacks": int(sum(r["fallback"] for r in records)),
        }
    report["acceptance"] = _acceptance(report)
    timings["total_s"] = time.perf_counter() - started
    report["timings"] = timings
    report["per_clip"] = records
    artifacts = {"generated_mels": generated.mels, "records": records, "sets": sets,
                 "real_mels": [] if real is None else [(quadrant(c.valence, c.arousal), real.mels[id(c)]) for c in real.reference]}  # fmt: skip
    return _clean(report), artifacts


def evaluate_grid(pipeline, config: ClosedLoopConfig | dict | None = None, stop=None) -> dict:
    """Run the closed loop on a loaded `moodmusic.pipeline.Pipeline`; returns the report's JSON (a dict).

    `config` may be a ClosedLoopConfig, a dict of its fields (as a request body gives it) or None (the quick grid).
    `stop`, a threading.Event: once set, the run raises EvaluationStopped at its next clip (the server sets it
    when a request's deadline passes, so no worker keeps computing a report nobody will read).
    """
    if config is None:
        config = ClosedLoopConfig.quick()
    elif isinstance(config, dict):
        config = ClosedLoopConfig(**config)
    else:
        config = dataclasses.replace(config)
    # An attribute of this run's copy, not a field: the report's copy of the config (asdict) leaves it out.
    object.__setattr__(config, "stop_event", stop)
    return _run(pipeline, config)[0]


# ---- the report on disk -------------------------------------------------------------------------------


def _example_mels(artifacts: dict) -> list[tuple[str, list[tuple[str, np.ndarray]]]]:
    """Per quadrant: the generated mel of its most extreme grid point (first seed) beside a real clip's."""
    rows = []
    for name in QUADRANTS:
        candidates = [(abs(r["valence"]) + abs(r["arousal"]), i) for i, r in enumerate(artifacts["records"])
                      if r["asked_quadrant"] == name and r["valence"] != 0 and r["arousal"] != 0]  # fmt: skip
        if not candidates:
            continue
        index = max(candidates, key=lambda c: (c[0], -c[1]))[1]
        record = artifacts["records"][index]
        panels = [(f"generated ({record['valence']:+.1f}, {record['arousal']:+.1f}), seed {record['seed']}", artifacts["generated_mels"][index])]
        real = next((mel for q, mel in artifacts["real_mels"] if q == name), None)
        if real is not None:
            panels.append(("real test clip", real))
        rows.append((name, panels))
    return rows


def write_images(report: dict, artifacts: dict, out: Path, prefix: str = "evaluation") -> dict[str, str]:
    from moodmusic.plots import plot_confusion, plot_embeddings, plot_feature_scatter, plot_mel_grid, plot_scatter

    images = {}
    mood, records = report["mood"], report["per_clip"]
    images["confusion"] = f"{prefix}_confusion.png"
    plot_confusion(mood["confusion"], f"asked vs heard quadrant ({mood['off_axis_clips']} off-axis clips)", out / images["confusion"], ylabel="asked")
    images["scatter"] = f"{prefix}_scatter.png"
    asked = np.array([[r["valence"], r["arousal"]] for r in records])
    heard = np.array([[r["heard_valence"], r["heard_arousal"]] for r in records])
    plot_scatter(asked, heard, f"asked vs heard valence and arousal ({len(records)} clips)", out / images["scatter"], truth_name="asked")
    if "acoustic" in report:
        features = [r["acoustic"] for r in records]
        panels = [("asked arousal", asked[:, 1], name, np.array([f[name] for f in features])) for name in ("tempo_bpm", "onset_rate", "rms_db", "centroid_hz")]
        panels.append(("asked valence", asked[:, 0], "major (1) / minor (0)", np.array([f["major"] for f in features])))
        panels.append(("asked valence", asked[:, 0], "centroid_hz", np.array([f["centroid_hz"] for f in features])))
        images["acoustic"] = f"{prefix}_acoustic.png"
        plot_feature_scatter(panels, "the independent acoustic judge against the asked mood", out / images["acoustic"])
    mel_rows = _example_mels(artifacts)
    if mel_rows:
        images["mels"] = f"{prefix}_mels.png"
        plot_mel_grid(mel_rows, out / images["mels"])
    if len(artifacts["sets"]) > 1 and all(len(v) > 1 for v in artifacts["sets"].values()):
        images["embeddings"] = f"{prefix}_embeddings.png"
        plot_embeddings(artifacts["sets"], "classifier embeddings (first two principal axes)", out / images["embeddings"])
    return images


def _number(value: Any, digits: int = 3, percent: bool = False) -> str:
    if value is None:
        return "undefined"
    return f"{100 * value:.1f}%" if percent else f"{value:.{digits}f}"


def _met(value: bool | None) -> str:
    return "n/a" if value is None else "yes" if value else "**no**"


def markdown(report: dict, command: str) -> str:
    config, mood, diversity, realism, timings = report["config"], report["mood"], report["diversity"], report["realism"], report["timings"]
    images = report.get("images", {})
    versions = ", ".join(f"{k} `{v}`" for k, v in report["versions"].items())
    lines = [
        "# Closed-loop evaluation",
        "",
        f"A grid of {config['grid']} x {config['grid']} moods over [-{config['extent']}, {config['extent']}]^2 x {config['seeds']} seeds "
        f"({report['clips']} clips of {config['seconds']:g} s) went through generator -> vocoder -> mastering -> classifier -> narrator. "
        f"Versions: {versions}.",
        "",
        f"Measured with `{command}` on {report['date']} ({report['machine']['cpus']} CPUs, {report['machine']['torch_threads']} torch threads), "
        f"in {timings['total_s']:.0f} s. All numbers: `{images.get('json', 'evaluation.json')}`.",
        "",
        "## Acceptance",
        "",
        "| criterion | measured | met |",
        "|---|---|---|",
    ]
    for key, row in report["acceptance"].items():
        percent = key in ("quadrant_accuracy", "key_mode_agreement", "level_gates_passed")
        lines.append(f"| {row['target']} | {_number(row['measured'], percent=percent)} | {_met(row['met'])} |")
    if "gates" in mood:
        loudness = mood["loudness_lufs"] or {}
        lines += [
            "",
            "## Level gates (moodmusic.mastering)",
            "",
            "Every clip is mastered as the chain masters it (loudness -19 + 4 x arousal LUFS, true peak <= -1 dBTP) before the classifier",
            "hears it. A clip below -30 LUFS, with a 1-second stretch below -60 dBFS, or above -1 dBTP is a miss whatever the classifier hears.",
            "",
            "| gate | clips failing |",
            "|---|---|",
            *[f"| {gate} | {count} |" for gate, count in mood["gates"].items()],
            f"| any | {mood['clips_failing_a_gate']} of {mood['clips']} |",
            "",
            f"Loudness {_number(loudness.get('min'), 1)} to {_number(loudness.get('max'), 1)} LUFS (median {_number(loudness.get('median'), 1)}); "
            f"largest distance from the clip's target {_number(mood['loudness_error_lu_max'], 2)} LU ({mood['off_target']} clips off by more than 2 LU); "
            f"highest true peak {_number(mood['true_peak_dbtp_max'], 2)} dBTP. Quadrant accuracy without the gates: "
            f"{_number(mood['quadrant_accuracy_ungated'], percent=True)}.",
        ]
    lines += [
        "",
        "## Does the clip carry the mood asked for?",
        "",
        f"The heard quadrant is the quadrant of the classifier's (valence, arousal) point. Grid points on an axis (valence or arousal 0)",
        f"belong to a quadrant only by the tie rule, so the confusion matrix and accuracy count the {mood['off_axis_clips']} off-axis clips;",
        f"over all {mood['clips']} clips the accuracy is {_number(mood['quadrant_accuracy_all_points'], percent=True)}.",
        "",
    ]
    by_seed = mood.get("quadrant_accuracy_by_seed") or {}
    if len(by_seed) > 1:
        accuracies = list(by_seed.values())
        lines += [
            "Every mood is generated with the same seeds, so each seed is one latent draw shared by the whole grid. The off-axis",
            f"accuracy per seed ranges {_number(min(accuracies), percent=True)}-{_number(max(accuracies), percent=True)} "
            f"(median {_number(float(np.median(accuracies)), percent=True)}); the standard error of the mean over the {len(by_seed)} seeds is "
            f"{_number(mood['quadrant_accuracy_seed_stderr'], percent=True)}:",
            "",
            "| seed | " + " | ".join(str(seed) for seed in by_seed) + " |",
            "|---|" + "---|" * len(by_seed),
            "| accuracy | " + " | ".join(_number(value, percent=True) for value in accuracies) + " |",
            "",
        ]
    lines += [
        "| dimension | MAE (asked vs heard) | Spearman |",
        "|---|---|---|",
        f"| valence | {_number(mood['valence_mae'])} | {_number(mood['valence_spearman'])} |",
        f"| arousal | {_number(mood['arousal_mae'])} | {_number(mood['arousal_spearman'])} |",
        "",
    ]
    classifier_ceiling = realism.get("real_reference_classifier")
    if classifier_ceiling:
        lines += [
            f"For scale, the same classifier on the {classifier_ceiling['clips']} real reference clips (against their labels): quadrant accuracy "
            f"{_number(classifier_ceiling['quadrant_accuracy'], percent=True)}, valence MAE {_number(classifier_ceiling['valence_mae'])}, "
            f"arousal MAE {_number(classifier_ceiling['arousal_mae'])}.",
            "",
        ]
    for key, caption in (("confusion", "asked vs heard quadrant"), ("scatter", "asked vs heard valence and arousal")):
        if key in images:
            lines += [f"![{caption}]({images[key]})", ""]
    if "acoustic" in report:
        generated_acoustic = report["acoustic"]["generated_vs_asked"]
        real_acoustic = report["acoustic"].get("real_vs_labels")
        lines += [
            "## The independent acoustic judge",
            "",
            "librosa tempo and onset rate, RMS loudness, spectral centroid and a Krumhansl major/minor estimate (`moodmusic/acoustic.py`);",
            "no model of ours. Spearman correlation of each feature with the asked valence and arousal"
            + (", and with the labels of the real reference clips for comparison:" if real_acoustic else ":"),
            "",
            "| feature | generated: valence | generated: arousal |" + (" real: valence | real: arousal |" if real_acoustic else ""),
            "|---|---|---|" + ("---|---|" if real_acoustic else ""),
        ]
        for name in ACOUSTIC_NUMBERS:
            row = generated_acoustic["spearman"][name]
            line = f"| {name} | {_number(row['valence'])} | {_number(row['arousal'])} |"
            if real_acoustic:
                line += f" {_number(real_acoustic['spearman'][name]['valence'])} | {_number(real_acoustic['spearman'][name]['arousal'])} |"
            lines.append(line)
        lines += [
            "",
            f"Mode agrees with the sign of valence: generated {_number(generated_acoustic['mode_agreement'], percent=True)}"
            + (f", real {_number(real_acoustic['mode_agreement'], percent=True)}." if real_acoustic else "."),
            "",
        ]
        if "acoustic" in images:
            lines += [f"![acoustic features against the asked mood]({images['acoustic']})", ""]
    lines += [
        "## Diversity across seeds",
        "",
        f"Mean pairwise log-mel L1 (natural-log units, first {diversity['frames']} frames) between the seeds of one mood, against the",
        "same between different real test clips of one quadrant (cut to the same length):",
        "",
        "| generated, same mood | real, same quadrant | ratio | target |",
        "|---|---|---|---|",
        f"| {_number(diversity['generated_mean_pairwise_l1'])} | {_number(diversity['real_same_quadrant_mean_pairwise_l1'])} | {_number(diversity['ratio'], 2)} | >= 0.5 |",
        "",
        "## Realism: Fréchet distance on classifier embeddings",
        "",
    ]
    if realism.get("frechet"):
        frechet, sizes = realism["frechet"], realism["sizes"]
        lines += [
            f"Against {sizes['reference']} real test clips (the reference half; {realism['embedding_dim']}-d embeddings). Copy-synthesis and",
            f"shuffled slices ({realism['slice_frames']}-frame slices shuffled across clips of a quadrant) are made from the other, disjoint",
            "half; real vs real is that other half's own audio, the floor these set sizes allow. Lower is closer to real music.",
            "",
            "| set | clips | Fréchet distance |",
            "|---|---|---|",
            f"| real vs real (floor) | {sizes['real_other']} | {_number(frechet['real_vs_real'])} |",
            f"| copy-synthesis (real mel -> vocoder) | {sizes['copy_synthesis']} | {_number(frechet['copy_synthesis'])} |",
            f"| **generated** | {sizes['generated']} | **{_number(frechet['generated'])}** |",
            f"| shuffled slices -> vocoder | {sizes['shuffled_slices']} | {_number(frechet['shuffled_slices'])} |",
            "",
        ]
        if "embeddings" in images:
            lines += [f"![classifier embeddings]({images['embeddings']})", ""]
    else:
        lines += [f"Not measured: {realism.get('reason', 'no corpus')}.", ""]
    if "mels" in images:
        lines += ["Generated log-mels per quadrant" + (" beside real test clips:" if realism.get("frechet") else ":"), "", f"![generated and real mels]({images['mels']})", ""]
    if "narration" in report:
        narration = report["narration"]
        lines += [
            "## Narration consistency",
            "",
            f"{_number(narration['names_heard_primary_rate'], percent=True)} of {narration['clips']} narratives name the heard primary mood or a synonym "
            f"(`moodmusic.narrator.words`); narrators: {', '.join(narration['narrators'])}; template fallbacks: {narration['fallbacks']}.",
            "",
        ]
    lines += ["## Time", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {name.removesuffix('_s').replace('_', ' ')} | {seconds:.1f} |" for name, seconds in timings.items()]
    lines.append("")
    return "\n".join(lines)


def write_report(report: dict, artifacts: dict, out: Path, command: str, prefix: str = "evaluation") -> dict:
    out.mkdir(parents=True, exist_ok=True)
    report["images"] = write_images(report, artifacts, out, prefix) | {"json": f"{prefix}.json"}
    report["command"] = command
    (out / f"{prefix}.json").write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    (out / f"{prefix}.md").write_text(markdown(report, command))
    return report


# ---- the command ----------------------------------------------------------------------------------------

QUICK_OUT = "runs/evaluation-quick"  # a quick run must not overwrite the committed full report in docs/


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from moodmusic.commandline import add_ray_arguments, candidates_argument

    defaults = ClosedLoopConfig()
    parser.add_argument("--quick", action="store_true", help="the CI grid: 3 x 3 moods x 2 seeds of 4 s (written to runs/evaluation-quick unless --out)")
    parser.add_argument("--grid", type=int, help=f"moods per side of the grid (default {defaults.grid}; quick 3)")
    parser.add_argument("--extent", type=float, default=defaults.extent, help=f"the grid spans [-extent, extent]^2 (default {defaults.extent})")
    parser.add_argument("--seeds", type=int, help=f"seeds per mood (default {defaults.seeds}; quick 2)")
    parser.add_argument("--seconds", type=float, help=f"clip length (default {defaults.seconds:g}; quick 4)")
    parser.add_argument("--first-seed", type=int, help=f"seeds are first-seed, first-seed + 1, ... (default {defaults.first_seed}); "
                        "choose a checkpoint on other seeds than the reported evaluation's")
    parser.add_argument("--corpus", default=defaults.corpus, help="corpus whose test split gives the real clips ('' for none; default data/corpus)")
    parser.add_argument("--real-clips", type=int, help="real test clips to use (default: twice the generated clips; quick 16)")
    parser.add_argument("--batch", type=int, default=defaults.batch, help=f"clips per generator/vocoder pass (default {defaults.batch})")
    parser.add_argument("--no-narrate", action="store_true", help="skip the narration check")
    parser.add_argument("--no-acoustic", action="store_true", help="skip the acoustic judge")
    parser.add_argument("--checkpoints", help="a checkpoints folder (default: the shipped one)")
    parser.add_argument("--vocoder", help="'griffinlim', 'griffinlim-sparse' or a HiFi-GAN folder instead of the shipped vocoder")
    parser.add_argument("--candidates", type=candidates_argument, help="the generator's critic-guided sampling: candidates per chunk (1: plain sampling; default: its guidance.json)")
    parser.add_argument("--out", help="folder for evaluation.md/.json/_*.png (default docs; with --quick runs/evaluation-quick)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    add_ray_arguments(parser, "the grid's clips (a batch a task)")


def config_from_args(args: argparse.Namespace) -> ClosedLoopConfig:
    base = ClosedLoopConfig.quick() if args.quick else ClosedLoopConfig()
    overrides = {"grid": args.grid, "seeds": args.seeds, "seconds": args.seconds, "real_clips": args.real_clips, "first_seed": args.first_seed}
    return ClosedLoopConfig(**{
        **asdict(base), **{k: v for k, v in overrides.items() if v is not None},
        "extent": args.extent, "corpus": args.corpus or None, "batch": args.batch,
        "narrate": not args.no_narrate, "acoustic": not args.no_acoustic,
    })  # fmt: skip


def run(args: argparse.Namespace) -> int:
    import torch

    from moodmusic.commandline import command_line
    from moodmusic.pipeline import load_pipeline

    torch.set_num_threads(args.threads)
    config = config_from_args(args)
    out = Path(args.out or (QUICK_OUT if args.quick else "docs"))
    if args.ray:  # the grid's batches as Ray tasks; the rest of the report (real references) in this process
        from moodmusic.cluster import ClusterChain

        pipeline = ClusterChain.start(None if args.ray == "local" else args.ray, args.checkpoints, workers=args.ray_workers,
                                      vocoder=args.vocoder, candidates=args.candidates)  # fmt: skip
    else:
        pipeline = load_pipeline(args.checkpoints, vocoder=args.vocoder, candidates=args.candidates)
    report, artifacts = _run(pipeline, config)
    write_report(report, artifacts, out, command_line(args))
    for key, row in report["acceptance"].items():
        print(f"{key}: {row['measured']} (met: {row['met']})")
    print(f"wrote {out / 'evaluation.md'} in {report['timings']['total_s']:.0f} s")
    return 0
