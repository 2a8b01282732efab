"""A clip's log-mel as a PNG, for the web page and for people reading the API by hand."""

from __future__ import annotations

import io

import numpy as np

from moodmusic.mel import FRAMES_PER_SECOND, LOG_FLOOR

BACKGROUND, INK = "#1d2029", "#9a9db0"  # the web page's panel and muted text colours


def mel_png(mel: np.ndarray, width_px: int = 900, height_px: int = 260) -> bytes:
    # The object-oriented API (Figure + Agg canvas), not pyplot: pyplot keeps global state and is not
    # safe to call from the server's threads at once.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    mel = np.asarray(mel, dtype=np.float32)
    dpi = 100
    figure = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi, facecolor=BACKGROUND)
    FigureCanvasAgg(figure)
    axes = figure.add_axes((0.06, 0.17, 0.93, 0.78))
    seconds = mel.shape[-1] / FRAMES_PER_SECOND
    axes.imshow(mel, origin="lower", aspect="auto", cmap="magma", vmin=LOG_FLOOR, vmax=max(float(mel.max()), LOG_FLOOR + 1),
                extent=(0.0, seconds, 0, mel.shape[0]), interpolation="nearest")  # fmt: skip
    axes.set_xlabel("seconds", fontsize=8, color=INK)
    axes.set_ylabel("mel band", fontsize=8, color=INK)
    axes.tick_params(labelsize=7, colors=INK)
    for spine in axes.spines.values():
        spine.set_color(INK)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
