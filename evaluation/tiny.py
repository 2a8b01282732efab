"""Tiny untrained models in the shipped checkpoint layout: what tests and `--tiny` load runs use."""

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
