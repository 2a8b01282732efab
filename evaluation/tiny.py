"""Tiny untrained models in the shipped checkpoint layout, and small hostile inputs: what tests, `--tiny` load runs
and the upload-cost script (scripts/upload_bombs.py) use."""

from __future__ import annotations

from pathlib import Path


def write_tiny_checkpoints(root) -> Path:
    """Untrained, tiny versions of the generator, vocoder and classifier in the shipped layout.

    They make noise, not music: tests that use them check plumbing (shapes, formats, errors,
    timings, caching), never mood accuracy. The shipped checkpoints are tested elsewhere.
    """
    import torch

    from moodmusic.classifier.inference import build_model as build_classifier
    from moodmusic.classifier.model import ClassifierConfig
    from moodmusic.generator.inference import build_model as build_generator
    from moodmusic.generator.model import GeneratorConfig
    from moodmusic import checkpoints
    from moodmusic.vocoder.model import VocoderConfig, build_generator as build_vocoder

    root = Path(root)
    torch.manual_seed(0)
    g_config = GeneratorConfig(channels=32, dilations=[1, 2], latent_dim=8, condition_dim=16)
    checkpoints.save(build_generator(g_config), g_config, root / "generator")
    v_config = VocoderConfig(upsample_initial_channel=16, resblock_kernel_sizes=(3,), resblock_dilation_sizes=((1, 3, 5),))
    checkpoints.save(build_vocoder(v_config), v_config, root / "vocoder")
    c_config = ClassifierConfig(channels=[4, 4, 4, 4], gru_hidden=8, embedding_dim=16, chroma_channels=4, mode_hidden=4)
    checkpoints.save(build_classifier(c_config), c_config, root / "classifier")
    return root


def silent_flac(seconds: float, rate: int = 44100) -> bytes:
    """A FLAC of `seconds` of silence, written 10 s at a time: FLAC packs silence to almost nothing (a
    decompression bomb's shape: two hours in about 1 MB)."""
    import io

    import numpy as np
    import soundfile

    buffer = io.BytesIO()
    with soundfile.SoundFile(buffer, "w", samplerate=rate, channels=1, format="FLAC", subtype="PCM_16") as f:
        block = np.zeros(rate * 10, dtype=np.int16)
        for _ in range(int(seconds // 10)):
            f.write(block)
    return buffer.getvalue()
