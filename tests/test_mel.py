import math

import numpy as np
import torch
from speechbrain.lobes.models.HifiGAN import mel_spectrogram

from moodmusic import mel


def speechbrain_mel(audio: torch.Tensor) -> torch.Tensor:
    c = mel.MEL
    return mel_spectrogram(
        sample_rate=c.sample_rate, hop_length=c.hop_length, win_length=c.win_length, n_fft=c.n_fft,
        n_mels=c.n_mels, f_min=c.f_min, f_max=c.f_max, power=c.power, normalized=c.normalized,
        norm=c.norm, mel_scale=c.mel_scale, compression=True, audio=audio,
    )  # fmt: skip


def test_log_mel_equals_speechbrains_mel_spectrogram(make_tone):
    rng = np.random.default_rng(0)
    audio = torch.from_numpy(make_tone(1.3, 330.0) + rng.normal(0, 0.05, int(1.3 * mel.SAMPLE_RATE)).astype(np.float32))
    ours = mel.log_mel(audio)
    theirs = speechbrain_mel(audio)
    assert ours.shape == theirs.shape == (80, mel.frames_for_samples(audio.numel()))
    assert torch.max(torch.abs(ours - theirs)).item() < 1e-5


def test_batched_input_and_numpy_input():
    audio = np.zeros((3, 5000), dtype=np.float32)
    out = mel.log_mel(audio)
    assert out.shape == (3, 80, 1 + 5000 // 256)
    assert torch.allclose(out, torch.full_like(out, math.log(1e-5)))  # silence sits on the log floor


def test_frame_arithmetic():
    assert mel.frames_for_samples(22050) == 87
    assert mel.frames_for_seconds(10) == 1 + 220500 // 256
    assert mel.samples_for_frames(100) == 25600
    assert abs(mel.FRAMES_PER_SECOND - 86.13) < 0.01
    assert abs(mel.LOG_FLOOR - (-11.5129)) < 1e-3


def test_long_audio_is_transformed_a_chunk_at_a_time_with_the_one_shot_result():
    from moodmusic.classifier import features
    from moodmusic import mel

    audio = torch.from_numpy(np.random.default_rng(1).normal(0, 0.1, 22050 * 75 + 123).astype(np.float32))  # 6,461 frames: 4 chunks
    one_shot = torch.log(torch.clamp(mel._transform(audio.device)(audio), min=mel.MEL.min_amplitude))
    assert torch.equal(mel.log_mel(audio), one_shot)
    flat = audio.reshape(1, -1)
    assert torch.equal(mel.framewise(features._semitone_energy, flat, features.CHROMA_N_FFT), features._semitone_energy(flat))
