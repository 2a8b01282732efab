"""The vocoder stage: loading (ours, speechbrain's, Griffin-Lim), rendering, streaming, the
multi-resolution distance, training with resume and export, the evaluation script, and the
shipped checkpoint against Griffin-Lim."""

import json
import shutil

import numpy as np
import pytest
import torch

from moodmusic import vocoder
from moodmusic import checkpoints
from moodmusic.checkpoints import CheckpointError
from moodmusic.cli import main
from moodmusic.mel import FRAMES_PER_SECOND, HOP_LENGTH, SAMPLE_RATE, log_mel
from moodmusic.vocoder.metrics import join_jumps, multi_resolution_distance, relative_log_mel_l1
from moodmusic.vocoder.model import VocoderConfig, build_generator, receptive_field_frames
from moodmusic.vocoder.streaming import render_in_chunks
from moodmusic.vocoder.train import TrainConfig, read_state_step, train

TINY = VocoderConfig(upsample_initial_channel=16)  # same layout as the default, 1/8 of the width: `--channels 16`
SHIPPED = checkpoints.stage_dir("vocoder") / checkpoints.WEIGHTS_FILE
needs_fluidsynth = pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="fluidsynth not installed: run scripts/setup.sh")


def music(seconds: float = 1.0, seed: int = 0) -> torch.Tensor:
    """A few plucked harmonic notes (decaying partials), like the corpus' instruments."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    audio = np.zeros_like(t)
    notes = 4
    for i, midi in enumerate(rng.choice([57, 60, 62, 64, 67, 69, 72], size=notes)):
        start = i * seconds / notes
        local = np.clip(t - start, 0, None)
        frequency = 440 * 2 ** ((midi - 69) / 12)
        partials = sum(np.sin(2 * np.pi * k * frequency * local) / k for k in range(1, 7) if k * frequency < 8000)
        audio += (t >= start) * np.exp(-4 * local) * partials
    return torch.from_numpy((0.3 * audio / np.abs(audio).max()).astype(np.float32))


TINY_V3 = VocoderConfig.preset("v3", 16)  # the shipped layout at 1/8 of its width: `--layout v3 --channels 16`


def tiny_vocoder(seed: int = 0, config: VocoderConfig = TINY) -> vocoder.HifiganVocoder:
    torch.manual_seed(seed)
    generator = build_generator(config)
    generator.remove_weight_norm()
    return vocoder.HifiganVocoder(generator, config, name="tiny", version="test")


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    if shutil.which("fluidsynth") is None:
        pytest.skip("fluidsynth not installed: run scripts/setup.sh")
    from moodmusic.corpus.build import BuildConfig, build

    out = tmp_path_factory.mktemp("corpus")
    build(BuildConfig(out=str(out), clips=8, seconds=1.0, workers=1), progress=False)  # 8: one val and one test piece
    return out


def test_griffinlim_renders_one_hop_per_frame():
    griffin_lim = vocoder.load("griffinlim")
    mel = log_mel(music(0.5))
    audio = griffin_lim.render(mel)
    assert audio.shape == (mel.shape[-1] * HOP_LENGTH,) and torch.isfinite(audio).all()
    batch = griffin_lim.render(torch.stack([mel, mel]).numpy().astype(np.float16))  # corpus mels are float16
    assert batch.shape == (2, mel.shape[-1] * HOP_LENGTH)
    assert griffin_lim.render(mel[:, :3]).shape == (3 * HOP_LENGTH,)  # shorter than the convolutions' padding


def test_multi_resolution_distance_is_zero_for_identical_signals_and_grows_with_noise():
    clean = music(1.0)
    same = multi_resolution_distance(clean, clean)
    assert set(same) == {512, 1024, 2048}
    assert all(v["sc"] < 1e-6 and v["log_mag_l1"] < 1e-6 for v in same.values())
    generator = torch.Generator().manual_seed(0)
    distances = [multi_resolution_distance(clean + level * torch.randn(clean.shape, generator=generator), clean) for level in (0.003, 0.03)]
    for n_fft in (512, 1024, 2048):
        assert 0 < distances[0][n_fft]["sc"] < distances[1][n_fft]["sc"]
        assert 0 < distances[0][n_fft]["log_mag_l1"] < distances[1][n_fft]["log_mag_l1"]


SPEECHBRAIN_YAML = """\
in_channels: 80
out_channels: 1
resblock_type: "1"
resblock_dilation_sizes: [[1, 3, 5], [1, 3, 5], [1, 3, 5]]
resblock_kernel_sizes: [3, 7, 11]
upsample_kernel_sizes: [16, 16, 4, 4]
upsample_initial_channel: {channels}
upsample_factors: [8, 8, 2, 2]
inference_padding: 5
cond_channels: 0
conv_post_bias: True

generator: !new:speechbrain.lobes.models.HifiGAN.HifiganGenerator
    in_channels: !ref <in_channels>
    out_channels: !ref <out_channels>
    resblock_type: !ref <resblock_type>
    resblock_dilation_sizes: !ref <resblock_dilation_sizes>
    resblock_kernel_sizes: !ref <resblock_kernel_sizes>
    upsample_kernel_sizes: !ref <upsample_kernel_sizes>
    upsample_initial_channel: !ref <upsample_initial_channel>
    upsample_factors: !ref <upsample_factors>
    inference_padding: !ref <inference_padding>
    cond_channels: !ref <cond_channels>
    conv_post_bias: !ref <conv_post_bias>

modules:
    generator: !ref <generator>

pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        generator: !ref <generator>
"""


def speechbrain_folder(folder, yaml_channels: int, ckpt_channels: int, seed: int = 0):
    folder.mkdir()
    (folder / "hyperparams.yaml").write_text(SPEECHBRAIN_YAML.format(channels=yaml_channels))
    torch.manual_seed(seed)
    generator = build_generator(VocoderConfig(upsample_initial_channel=ckpt_channels))
    torch.save(generator.state_dict(), folder / "generator.ckpt")
    return generator


def test_a_speechbrain_folder_loads_strictly_and_renders(tmp_path):
    generator = speechbrain_folder(tmp_path / "my-hifigan", yaml_channels=16, ckpt_channels=16)
    loaded = vocoder.load(tmp_path / "my-hifigan")
    assert loaded.name == "speechbrain-hifigan:my-hifigan" and loaded.config == TINY
    mel = log_mel(music(0.5))
    audio = loaded.render(mel)
    assert audio.shape == (mel.shape[-1] * HOP_LENGTH,) and torch.isfinite(audio).all()
    generator.remove_weight_norm()
    with torch.no_grad():
        assert torch.allclose(audio, generator.eval()(mel[None]).reshape(-1), atol=1e-5)


def test_a_mismatched_checkpoint_raises(tmp_path):
    speechbrain_folder(tmp_path / "wrong-size", yaml_channels=32, ckpt_channels=16)
    with pytest.raises(CheckpointError, match="does not match"):
        vocoder.load(tmp_path / "wrong-size")
    folder = tmp_path / "missing-tensor"
    speechbrain_folder(folder, yaml_channels=16, ckpt_channels=16)
    state = torch.load(folder / "generator.ckpt", weights_only=True)
    state.pop(next(iter(state)))
    torch.save(state, folder / "generator.ckpt")
    with pytest.raises(CheckpointError):
        vocoder.load(folder)
    with pytest.raises(CheckpointError, match="not a vocoder"):
        vocoder.load(tmp_path)


def test_without_a_shipped_checkpoint_load_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("MOODMUSIC_CHECKPOINTS", str(tmp_path))
    with pytest.raises(CheckpointError, match="griffinlim"):
        vocoder.load()


@pytest.mark.parametrize("layout, frames", [("v2", 15), ("v3", 12)])
def test_receptive_field_bounds_the_reach_of_a_frame(layout, frames):
    config = VocoderConfig.preset(layout, 16)
    reach = receptive_field_frames(config)
    assert reach == receptive_field_frames(VocoderConfig.preset(layout)) == frames  # the width does not change the reach
    voc = tiny_vocoder(config=config)
    mel = log_mel(music(1.0))
    changed = mel.clone()
    changed[:, 40] += 2.0
    difference = (voc.render(changed) - voc.render(mel)).abs()
    moved = torch.nonzero(difference > 0).reshape(-1)
    assert moved.numel() and (40 - reach) * HOP_LENGTH <= moved.min() and moved.max() < (41 + reach) * HOP_LENGTH


@pytest.mark.parametrize("config", [TINY, TINY_V3], ids=["v2", "v3"])
def test_streaming_joins_without_clicks_and_matches_the_one_shot_rendering(config):
    voc = tiny_vocoder(config=config)
    mel = log_mel(torch.cat([music(1.5, seed=1), music(1.5, seed=2)]))
    one_shot = voc.render(mel)
    streamed, joins = render_in_chunks(voc, mel, chunk_frames=round(0.5 * FRAMES_PER_SECOND))
    assert streamed.shape == one_shot.shape and len(joins) >= 5
    jumps = join_jumps(streamed, joins)
    assert jumps["max_join_jump"] <= jumps["p999_inner_jump"]
    assert relative_log_mel_l1(streamed, one_shot) < 0.05
    assert torch.allclose(streamed, one_shot, atol=1e-5)  # context = receptive field: the same samples
    # Pushes of any size, and a stream reused after flush, give the same audio.
    stream = voc.stream()
    pieces = [stream.push(mel[:, a:b]) for a, b in [(0, 1), (1, 30), (30, 31), (31, 200), (200, mel.shape[-1])]]
    assert torch.allclose(torch.cat([*pieces, stream.flush()]), one_shot, atol=1e-5)
    assert torch.allclose(torch.cat([stream.push(mel), stream.flush()]), one_shot, atol=1e-5)
    # Griffin-Lim streams too (its chunks are faded together): the right length, no jump at the joins.
    griffin_lim = vocoder.load("griffinlim")
    gl_streamed, gl_joins = render_in_chunks(griffin_lim, mel[:, :130], chunk_frames=43)
    assert gl_streamed.shape == (130 * HOP_LENGTH,)
    gl_jumps = join_jumps(gl_streamed, gl_joins)
    assert gl_jumps["max_join_jump"] <= gl_jumps["p999_inner_jump"]


@needs_fluidsynth
def test_training_writes_a_resumable_state_exports_and_resumes(tiny_corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("MOODMUSIC_CHECKPOINTS", str(tmp_path / "checkpoints"))
    out = tmp_path / "run"
    config = TrainConfig(
        corpus=str(tiny_corpus), out=str(out), steps=3, batch_size=2, segment=2048, adversarial_start=2,
        checkpoint_every=3, log_every=1, val_clips=1, generator=TINY, export=True,
    )  # fmt: skip
    scores = train(config, progress=False)
    assert read_state_step(out) == 3 and "val_sc_1024" in scores
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    losses = [e for e in log if "G_loss" in e]
    assert [e["step"] for e in losses] == [1, 2, 3]
    assert "D_loss" not in losses[1] and "D_loss" in losses[2]  # discriminators idle before --adversarial-start
    assert all(np.isfinite(e["G_loss"]) for e in losses)
    # Exported: checkpoints/vocoder + a manifest entry, loadable as the shipped vocoder.
    entry = checkpoints.read_manifest()["vocoder"]
    assert entry["parameters"] == checkpoints.parameter_count(build_generator(TINY)) and "val_sc_1024" in entry["metrics"]
    shipped = vocoder.load()
    assert shipped.version == entry["sha256"][:12]
    before = vocoder.load(out / "state" / "generator").render(log_mel(music(0.3)))
    assert torch.allclose(before, shipped.render(log_mel(music(0.3))))

    # Resume through the command line: it continues at step 4 with the saved optimizer state.
    args = ["train", "vocoder", "--corpus", str(tiny_corpus), "--out", str(out), "--steps", "5", "--batch-size", "2",
            "--segment", "2048", "--adversarial-start", "2", "--layout", "v2", "--channels", "16", "--log-every", "1", "--val-clips", "1",
            "--lr", "1e-4", "--sc-weight", "0"]  # fmt: skip
    assert main(args) == 0
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    losses = [e for e in log if "G_loss" in e]
    assert [e["step"] for e in losses] == [1, 2, 3, 4, 5]
    # A new --lr on resume halves (1e-4 vs 2e-4) the schedule where it stood; --sc-weight 0 drops that term.
    assert losses[3]["lr"] == pytest.approx(losses[2]["lr"] * 0.5 * config.lr_decay)
    assert losses[3]["G_stft_loss_sc"] == 0.0 and losses[2]["G_stft_loss_sc"] > 0
    assert read_state_step(out) == 5
    after = vocoder.load(out / "state" / "generator").render(log_mel(music(0.3)))
    assert not torch.allclose(before, after)
    # --export-only writes the saved state out as the shipped vocoder; the manifest names both commands.
    assert main([*args[:args.index("--steps")], "--layout", "v2", "--channels", "16", "--export-only"]) == 0
    assert read_state_step(out) == 5 and torch.allclose(vocoder.load().render(log_mel(music(0.3))), after)
    entry = checkpoints.read_manifest()["vocoder"]
    assert entry["steps"] == 5 and "2 a step" in entry["data"]  # the run's batch size, not the CLI default's
    command = entry["command"]
    assert command.startswith("from step 0: ") and "; then from step 3: moodmusic train vocoder" in command and "--sc-weight 0" in command
    # Another generator size cannot resume this run.
    with pytest.raises(CheckpointError, match="other model sizes"):
        train(TrainConfig(corpus=str(tiny_corpus), out=str(out), steps=6, batch_size=2, segment=2048), progress=False)


def test_sparse_inversion_finds_the_partials_of_a_chord():
    """The mel of an A minor triad (5 harmonics a note) is explained by sinusoids at its partials, and
    the linear magnitude they make folds back to the mel it was given."""
    from moodmusic.mel import SinusoidMelInverse, filterbank

    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    notes = [220.0, 261.63, 329.63]  # A3 C4 E4
    partials = [k * f for f in notes for k in range(1, 6)]
    chord = sum(np.sin(2 * np.pi * p * t) / (1 + i % 5) for i, p in enumerate(partials))
    magnitude = torch.exp(log_mel(torch.from_numpy((0.3 * chord / np.abs(chord).max()).astype(np.float32))))[None]
    inverse = SinusoidMelInverse()
    middle = magnitude.shape[-1] // 2
    amplitudes = inverse.amplitudes(magnitude)[0, :, middle]
    strongest = inverse.frequencies[torch.argsort(amplitudes, descending=True)[:6].numpy()]
    semitones_off = [min(abs(12 * np.log2(f / p)) for p in partials) for f in strongest]
    assert max(semitones_off) < 0.5, (strongest, semitones_off)
    linear = inverse(magnitude)
    refolded = (linear.transpose(1, 2) @ filterbank()).transpose(1, 2)
    loud = magnitude > 1e-2 * magnitude.max()
    assert float(((refolded - magnitude).abs()[loud] / magnitude[loud]).median()) < 0.05


def test_sparse_griffinlim_loads_and_renders():
    sparse = vocoder.load("griffinlim-sparse")
    assert sparse.name == "griffinlim-sparse" and sparse.version == f"griffinlim-sparse-{sparse.n_iter}"
    clip = music(0.5)
    audio = sparse.render(log_mel(clip))
    assert audio.shape == (log_mel(clip).shape[-1] * HOP_LENGTH,) and torch.isfinite(audio).all()
    with pytest.raises(ValueError, match="inversion"):
        vocoder.GriffinLimVocoder(inversion="pinv")


@needs_fluidsynth
def test_evaluate_writes_the_report(tiny_corpus, tmp_path):
    folder = tmp_path / "voc"
    checkpoints.save(build_generator(TINY), TINY, folder)
    out = tmp_path / "docs"
    args = ["evaluate", "vocoder", "--corpus", str(tiny_corpus), "--clips", "1", "--vocoder", str(folder),
            "--out", str(out), "--seconds", "1", "--threads", "1"]  # fmt: skip
    assert main(args) == 0
    results = json.loads((out / "vocoder_eval.json").read_text())
    assert {"hifigan", "griffinlim", "griffinlim_sparse", "speed", "streaming", "acceptance"} <= set(results)
    assert results["acceptance"]["streaming_joins_ok"] and results["acceptance"]["streaming_mel_ok"]
    assert (out / "vocoder_spectrograms.png").stat().st_size > 10_000
    assert "| 1024 |" in (out / "vocoder.md").read_text()


@pytest.mark.skipif(not SHIPPED.exists(), reason=f"no shipped vocoder at {SHIPPED}: train with `moodmusic train vocoder --export`")
@pytest.mark.xfail(strict=True, reason="known gap: the shipped HiFi-GAN (V3-128, 18,500 CPU steps, no adversarial phase) does not beat "
                   "Griffin-Lim yet (docs/vocoder.md); strict, so this turns into a failure once it does, as a reminder to switch "
                   "checkpoints/pipeline.json")
def test_the_shipped_vocoder_beats_griffin_lim_on_a_synthesised_clip():
    shipped = vocoder.load()
    clip = music(2.0, seed=3)
    mel = log_mel(clip)
    audio = shipped.render(mel)
    assert audio.shape == (mel.shape[-1] * HOP_LENGTH,) and torch.isfinite(audio).all()
    ours = multi_resolution_distance(audio[: clip.numel()], clip)
    theirs = multi_resolution_distance(vocoder.load("griffinlim").render(mel)[: clip.numel()], clip)
    assert np.mean([v["sc"] for v in ours.values()]) < np.mean([v["sc"] for v in theirs.values()])
    assert np.mean([v["log_mag_l1"] for v in ours.values()]) < np.mean([v["log_mag_l1"] for v in theirs.values()])
