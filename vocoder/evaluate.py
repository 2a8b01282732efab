"""`moodmusic evaluate vocoder`: the acceptance numbers of the vocoder -> docs/vocoder.md.

On held-out (test split) clips of the corpus:
- copy-synthesis: real audio -> log-mel -> vocoder -> audio, compared with the original by the
  multi-resolution STFT distance up to 8 kHz (vocoder/metrics.py) at n_fft 512, 1024 and 2048,
  for the HiFi-GAN, for Griffin-Lim after torchaudio's least-squares inversion of the mel (the
  baseline of the acceptance) and after the sparse sinusoid inversion (`griffinlim-sparse`); plus the
  re-analysed log-mel L1;
- speed: median of 5 renders of a 10 s mel (after one warm-up), torch on `--threads` threads;
- streaming: the same 10 s mel pushed in 0.5 s chunks; the largest sample-to-sample jump across
  a join of the emitted pieces against the 99.9th percentile of all other jumps, and the
  difference from the one-shot rendering as a relative log-mel L1;
- what the shipped classifier hears in each rendering (quadrant accuracy, V/A MAE);
- an image of the original, HiFi-GAN and Griffin-Lim log-mels of one held-out clip.
Writes <out>/vocoder.md, <out>/vocoder_eval.json and <out>/vocoder_spectrograms.png.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from moodmusic.mood import quadrant

ACCEPT_SC_RATIO = 0.75  # the HiFi-GAN's mean spectral convergence at most this share of Griffin-Lim's
ACCEPT_SECONDS = 0.5  # to render 10 s
ACCEPT_STREAM_MEL = 0.05  # streamed vs one-shot, relative log-mel L1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--corpus", default="data/corpus", help="corpus folder with manifest.csv (default: data/corpus)")
    parser.add_argument("--clips", type=int, default=20, help="test-split clips, evenly spaced (default: 20)")
    parser.add_argument("--vocoder", default=None, help="a vocoder folder (default: the shipped checkpoints/vocoder)")
    parser.add_argument("--out", default="docs", help="folder for vocoder.md, vocoder_eval.json and the image (default: docs)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the speed and streaming mel (default: 10)")
    parser.add_argument("--chunk-seconds", type=float, default=0.5, help="streaming chunk (default: 0.5)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for the speed measurement (default: 2)")
    parser.add_argument("--record", action="store_true", help="store the test metrics in the manifest's vocoder entry")


def held_out_clips(corpus: str | Path, count: int) -> list:
    """`count` test-split clips spread evenly over the split (sorted by file), so every run picks the same."""
    import numpy as np

    from moodmusic.vocoder.train import split_clips

    clips = split_clips(corpus, "test")
    if not clips:
        raise SystemExit(f"{corpus} has no test-split clips")
    picks = np.unique(np.linspace(0, len(clips) - 1, min(count, len(clips))).round().astype(int))
    return [clips[i] for i in picks]




def mood_agreement(renderers: dict, clips: list, audios: list) -> dict:
    """What the shipped classifier hears in each rendering: quadrant accuracy and V/A MAE against the labels.

    The measure that matters for this product: a renderer is only as good as the mood that survives it.
    `renderers` maps a name to a vocoder, or to None for the original audio. Empty when no classifier is shipped.
    """
    import numpy as np

    from moodmusic import classifier
    from moodmusic.checkpoints import CheckpointError
    from moodmusic.mel import log_mel

    try:
        ear = classifier.load()
    except (CheckpointError, FileNotFoundError):
        return {}
    scores = {}
    for name, renderer in renderers.items():
        hits, valence, arousal = 0, [], []
        for clip, audio in zip(clips, audios):
            heard = ear.analyze(audio.numpy() if renderer is None else renderer.render(log_mel(audio)).cpu().numpy())
            hits += heard.quadrant == quadrant(clip.valence, clip.arousal)
            valence.append(abs(heard.overall.valence - clip.valence))
            arousal.append(abs(heard.overall.arousal - clip.arousal))
        scores[name] = {"quadrant_accuracy": hits / len(clips), "valence_mae": float(np.mean(valence)), "arousal_mae": float(np.mean(arousal))}
    return scores


def copy_synthesis(vocoder, audios: list) -> dict:
    """Mean multi-resolution distances and log-mel L1 of the vocoder's re-renderings of `audios`."""
    import numpy as np

    from moodmusic.mel import log_mel
    from moodmusic.vocoder.metrics import log_mel_l1, multi_resolution_distance

    per_clip = []
    for audio in audios:
        rendered = vocoder.render(log_mel(audio)).cpu()[: audio.numel()]
        scores = {f"{name}_{n_fft}": value for n_fft, values in multi_resolution_distance(rendered, audio).items() for name, value in values.items()}
        scores["log_mel_l1"] = log_mel_l1(rendered, audio)
        per_clip.append(scores)
    means = {key: float(np.mean([s[key] for s in per_clip])) for key in per_clip[0]}
    means["sc_mean"] = float(np.mean([v for k, v in means.items() if k.startswith("sc_")]))
    return means


def long_mel(audios: list, seconds: float):
    """The log-mel of `seconds` of held-out audio (clips joined, repeated if too few)."""
    import torch

    from moodmusic.mel import SAMPLE_RATE, log_mel

    needed = int(round(seconds * SAMPLE_RATE))
    joined = torch.cat(audios)
    joined = joined.repeat(needed // joined.numel() + 1)[:needed]
    return log_mel(joined)


def render_seconds(vocoder, mel, repeats: int = 5) -> float:
    """Median wall time of `repeats` renders after one warm-up."""
    import numpy as np

    vocoder.render(mel)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        vocoder.render(mel)
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def streaming_check(vocoder, mel, chunk_seconds: float) -> dict:
    from moodmusic.mel import FRAMES_PER_SECOND, HOP_LENGTH, SAMPLE_RATE
    from moodmusic.vocoder.metrics import join_jumps, relative_log_mel_l1
    from moodmusic.vocoder.streaming import render_in_chunks

    chunk_frames = max(1, int(round(chunk_seconds * FRAMES_PER_SECOND)))
    streamed, joins = render_in_chunks(vocoder, mel, chunk_frames)
    one_shot = vocoder.render(mel)
    result = join_jumps(streamed.cpu(), joins)
    result.update(
        chunk_frames=chunk_frames,
        context_frames=vocoder.context_frames,
        latency_ms=1000 * vocoder.context_frames * HOP_LENGTH / SAMPLE_RATE,
        same_length=streamed.numel() == one_shot.numel(),
        relative_log_mel_l1=relative_log_mel_l1(streamed.cpu(), one_shot.cpu()),
        max_abs_difference=float((streamed - one_shot).abs().max()),
    )
    return result


def plot_spectrograms(path: Path, renderings: dict) -> None:
    """One panel per rendering (name -> audio), log-mel on a shared colour scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from moodmusic.mel import FRAMES_PER_SECOND, LOG_FLOOR, log_mel

    mels = {name: log_mel(audio).numpy() for name, audio in renderings.items()}
    top = max(float(m.max()) for m in mels.values())
    fig, axes = plt.subplots(len(mels), 1, figsize=(10, 2.6 * len(mels)), sharex=True, constrained_layout=True)
    for ax, (name, mel) in zip(axes, mels.items()):
        image = ax.imshow(mel, origin="lower", aspect="auto", vmin=max(LOG_FLOOR, top - 10), vmax=top,
                          extent=(0, mel.shape[1] / FRAMES_PER_SECOND, 0, mel.shape[0]), cmap="magma")  # fmt: skip
        ax.set_title(name)
        ax.set_ylabel("mel band")
    axes[-1].set_xlabel("seconds")
    fig.colorbar(image, ax=axes, label="ln magnitude")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def evaluate(corpus: str, clips: int, vocoder_source: str | None, seconds: float = 10.0, chunk_seconds: float = 0.5, threads: int = 2) -> tuple[dict, dict]:
    """All the numbers, and the renderings of one held-out clip for the image."""
    import torch

    from moodmusic import vocoder as vocoder_api
    from moodmusic import checkpoints
    from moodmusic.audio import load_audio
    from moodmusic.mel import HOP_LENGTH, SAMPLE_RATE, log_mel

    torch.set_num_threads(threads)
    hifigan = vocoder_api.load(vocoder_source)
    griffin_lim = vocoder_api.load("griffinlim")
    sparse = vocoder_api.load("griffinlim-sparse")
    chosen = held_out_clips(corpus, clips)
    audios = [torch.from_numpy(load_audio(c.audio)) for c in chosen]
    mel = long_mel(audios, seconds)
    results = {
        "vocoder": {"name": hifigan.name, "version": hifigan.version, "config": hifigan.config.as_dict(),
                    "parameters": checkpoints.parameter_count(hifigan.generator)},  # fmt: skip
        "clips": [str(c.audio) for c in chosen],
        "hifigan": copy_synthesis(hifigan, audios),
        "griffinlim": copy_synthesis(griffin_lim, audios),
        "griffinlim_sparse": copy_synthesis(sparse, audios),
        "speed": {"seconds_of_audio": mel.shape[-1] * HOP_LENGTH / SAMPLE_RATE, "threads": threads,
                  "hifigan_seconds": render_seconds(hifigan, mel), "griffinlim_seconds": render_seconds(griffin_lim, mel, repeats=1),
                  "griffinlim_sparse_seconds": render_seconds(sparse, mel, repeats=1)},  # fmt: skip
        "streaming": streaming_check(hifigan, mel, chunk_seconds),
        "mood": mood_agreement({"original": None, "hifigan": hifigan, "griffinlim": griffin_lim, "griffinlim-sparse": sparse}, chosen, audios),
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(), "torch": torch.__version__},
    }
    h, g, speed, stream = results["hifigan"], results["griffinlim"], results["speed"], results["streaming"]
    results["acceptance"] = {
        "beats_griffinlim_every_resolution": all(h[k] < g[k] for k in h if k.startswith(("sc_", "log_mag_l1_")) and k != "sc_mean"),
        "sc_ratio": h["sc_mean"] / g["sc_mean"],
        "sc_ratio_ok": h["sc_mean"] <= ACCEPT_SC_RATIO * g["sc_mean"],
        "speed_ok": speed["hifigan_seconds"] <= ACCEPT_SECONDS * speed["seconds_of_audio"] / 10,
        "streaming_joins_ok": stream["max_join_jump"] <= stream["p999_inner_jump"],
        "streaming_mel_ok": stream["relative_log_mel_l1"] < ACCEPT_STREAM_MEL,
    }
    audio, clip_mel = audios[0], log_mel(audios[0])
    spectrograms = {
        f"original ({chosen[0].audio.name}, test split)": audio,
        f"HiFi-GAN ({hifigan.name})": hifigan.render(clip_mel).cpu()[: audio.numel()],
        f"Griffin-Lim ({griffin_lim.n_iter} iterations)": griffin_lim.render(clip_mel).cpu()[: audio.numel()],
        f"Griffin-Lim, sparse inversion ({sparse.n_iter} iterations)": sparse.render(clip_mel).cpu()[: audio.numel()],
    }
    return results, spectrograms


def write_report(results: dict, spectrograms: dict, out: Path, command: str, training: dict | None) -> None:
    plot_spectrograms(out / "vocoder_spectrograms.png", spectrograms)
    (out / "vocoder_eval.json").write_text(json.dumps({"command": command, "training": training, **results}, indent=2) + "\n")
    (out / "vocoder.md").write_text(markdown(results, command, training))


def mood_table(mood: dict) -> str:
    if not mood:
        return "(no shipped classifier to listen with)\n"
    lines = ["| audio | quadrant accuracy | valence MAE | arousal MAE |", "|---|---|---|---|"]
    lines += [f"| {name} | {100 * m['quadrant_accuracy']:.1f}% | {m['valence_mae']:.3f} | {m['arousal_mae']:.3f} |" for name, m in mood.items()]
    return "\n".join(lines) + (
        "\n\nThese are real clips. The shipped chain's renderer (`checkpoints/pipeline.json`) is chosen by what the"
        "\nclassifier hears in *generated* clips, which can rank the renderers differently (the section on the sparse inversion below).\n"
    )


def _mark(ok: bool) -> str:
    return "yes" if ok else "**no**"


def markdown(r: dict, command: str, training: dict | None) -> str:
    h, g, s, st, acc, v = r["hifigan"], r["griffinlim"], r["speed"], r["streaming"], r["acceptance"], r["vocoder"]
    sp = r["griffinlim_sparse"]
    per_10s = s["hifigan_seconds"] * 10 / s["seconds_of_audio"]
    rows = "\n".join(
        f"| {n} | {h[f'sc_{n}']:.3f} | {g[f'sc_{n}']:.3f} | {sp[f'sc_{n}']:.3f} | {h[f'log_mag_l1_{n}']:.3f} | {g[f'log_mag_l1_{n}']:.3f} | {sp[f'log_mag_l1_{n}']:.3f} |"
        for n in (512, 1024, 2048)
    )
    trained = ""
    if training:
        trained = f"\nTrained with `{training.get('command', '?')}` on {training.get('data', '?')} ({training.get('steps', '?')} steps).\n"
    return f"""# Vocoder

The vocoder turns every mel (docs/conventions.md) into sound: speechbrain's `HifiganGenerator`
({v['parameters'] / 1e6:.2f} M parameters, upsample_initial_channel {v['config']['upsample_initial_channel']},
resblock type {v['config']['resblock_type']}, upsampling {'-'.join(str(f) for f in v['config']['upsample_factors'])},
`{v['name']}` version `{v['version']}`), with Griffin-Lim as the fallback that needs no weights.
{trained}
Measured with:

```bash
{command}
```

## Copy-synthesis on held-out clips

{len(r['clips'])} test-split clips of the corpus: real audio -> log-mel -> vocoder -> audio, compared with the
original, both limited to 8 kHz (the top of the mel), by the multi-resolution STFT distance
(`vocoder/metrics.py`; hop n_fft/4, Hann window). Spectral convergence is ||Y - Y'|| / ||Y|| over the
magnitude spectrogram (0 is identical); log-magnitude L1 is the mean |ln Y - ln Y'|. Lower is better.
Griffin-Lim (GL) is rendered twice: after torchaudio's least-squares inversion of the mel, the baseline
of the acceptance below, and after the sparse sinusoid inversion (`griffinlim-sparse`, GL sparse).

| n_fft | HiFi-GAN SC | GL SC | GL sparse SC | HiFi-GAN log-mag L1 | GL log-mag L1 | GL sparse log-mag L1 |
|---|---|---|---|---|---|---|
{rows}
| mean | {h['sc_mean']:.3f} | {g['sc_mean']:.3f} | {sp['sc_mean']:.3f} | | | |

Re-analysed log-mel L1 (not the criterion): HiFi-GAN {h['log_mel_l1']:.3f}, GL {g['log_mel_l1']:.3f}, GL sparse {sp['log_mel_l1']:.3f}.

![original, HiFi-GAN and Griffin-Lim log-mels of one held-out clip](vocoder_spectrograms.png)

## Speed and streaming

- Speed: {s['seconds_of_audio']:.2f} s of audio from its mel in **{s['hifigan_seconds']:.3f} s** (median of 5 after a
  warm-up, {s['threads']} torch threads, {r['machine']['cpus']} CPUs); Griffin-Lim takes {s['griffinlim_seconds']:.2f} s,
  with the sparse inversion {s['griffinlim_sparse_seconds']:.2f} s.
- Streaming: the same mel pushed in {st['chunk_frames']}-frame chunks. The stream keeps {st['context_frames']} frames
  of context (the generator's receptive field) and holds back as many as lookahead
  ({st['latency_ms']:.0f} ms of latency), so the pieces it emits are the one-shot rendering's samples.
  Largest jump between adjacent samples across the {st['joins']} joins: {st['max_join_jump']:.4f}; 99.9th percentile of
  all other jumps: {st['p999_inner_jump']:.4f}. Difference from the one-shot rendering: relative log-mel L1
  {100 * st['relative_log_mel_l1']:.3f} % (mean |difference| over the mean height of the log-mel above its floor),
  largest sample difference {st['max_abs_difference']:.2e}.

## What the classifier hears after each renderer

""" + mood_table(r.get("mood", {})) + f"""
## Acceptance

| criterion | measured | met |
|---|---|---|
| beats Griffin-Lim at every resolution (SC and log-mag L1) | see table | {_mark(acc['beats_griffinlim_every_resolution'])} |
| mean SC at most 75 % of Griffin-Lim's | {100 * acc['sc_ratio']:.1f} % | {_mark(acc['sc_ratio_ok'])} |
| 10 s rendered in at most 0.5 s | {per_10s:.3f} s | {_mark(acc['speed_ok'])} |
| largest join jump <= 99.9th percentile of inner jumps | {st['max_join_jump']:.4f} <= {st['p999_inner_jump']:.4f} | {_mark(acc['streaming_joins_ok'])} |
| streamed vs one-shot log-mel L1 under 5 % | {100 * st['relative_log_mel_l1']:.3f} % | {_mark(acc['streaming_mel_ok'])} |

All numbers are in `docs/vocoder_eval.json`.
"""


def run(args: argparse.Namespace) -> int:
    from moodmusic import checkpoints
    from moodmusic.commandline import command_line

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = command_line(args)
    results, spectrograms = evaluate(args.corpus, args.clips, args.vocoder, args.seconds, args.chunk_seconds, args.threads)
    training = checkpoints.read_manifest().get("vocoder") if args.vocoder is None else None
    write_report(results, spectrograms, out, command, training)
    for key, value in results["acceptance"].items():
        print(f"{key}: {value}")
    if args.record:
        if training is None:
            raise SystemExit("--record needs the shipped vocoder (no --vocoder) and its manifest entry")
        from moodmusic.vocoder.model import VocoderConfig, build_generator

        metrics = {"test_clips": len(results["clips"]), "hifigan": results["hifigan"], "griffinlim": results["griffinlim"], "griffinlim_sparse": results["griffinlim_sparse"],
                   "render_10s_seconds": results["speed"]["hifigan_seconds"], "streaming": results["streaming"]}  # fmt: skip
        keep = {k: v for k, v in training.items() if k not in {"file", "sha256", "bytes", "parameters", "command", "data", "metrics", "date"}}
        counted = build_generator(VocoderConfig.from_dict(results["vocoder"]["config"]))  # as stored: with weight norm
        checkpoints.record("vocoder", model=counted, command=training["command"], data=training["data"], metrics=metrics, extra=keep)
    print(f"wrote {out / 'vocoder.md'}")
    return 0
