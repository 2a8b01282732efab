"""The report images every evaluation draws (classifier, closed loop, user folders), drawn one way.

matplotlib is imported inside each function with the Agg backend, so importing this module is cheap and
works on machines without a display.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _mood_axes(ax, xlabel: str = "valence", ylabel: str = "arousal") -> None:
    """A [-1, 1]^2 mood square with its quadrant axes."""
    ax.axhline(0, color="gray", linewidth=0.8)
    ax.axvline(0, color="gray", linewidth=0.8)
    ax.set_xlim(-1.05, 1.05)
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)


def plot_confusion(confusion: dict, title: str, path: Path, ylabel: str = "asked (label)") -> None:
    """Quadrant confusion (`labels`, `rows_true_columns_heard`): counts and row shares."""
    plt = _pyplot()
    matrix = np.array(confusion["rows_true_columns_heard"])
    normalised = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(4.6, 4))
    ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    labels = confusion["labels"]
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("heard")
    ax.set_ylabel(ylabel)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{matrix[i, j]}\n{normalised[i, j]:.0%}", ha="center", va="center", color="white" if normalised[i, j] > 0.5 else "black", fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_scatter(truth: np.ndarray, heard: np.ndarray, title: str, path: Path, truth_name: str = "label") -> None:
    """(N, 2) points asked (or labelled) vs heard: valence and arousal panels, and arrows on the mood square."""
    plt = _pyplot()
    truth, heard = np.asarray(truth, dtype=float).reshape(-1, 2), np.asarray(heard, dtype=float).reshape(-1, 2)
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    for ax, dim, name in ((axes[0], 0, "valence"), (axes[1], 1, "arousal")):
        ax.scatter(truth[:, dim], heard[:, dim], s=6, alpha=0.5)
        ax.plot([-1, 1], [-1, 1], color="gray", linewidth=0.8)
        ax.set_xlabel(f"{name} {truth_name}")
        ax.set_ylabel(f"{name} heard")
        ax.set_xlim(-1.05, 1.05)
        ax.set_ylim(-1.05, 1.05)
    axes[2].quiver(truth[:, 0], truth[:, 1], heard[:, 0] - truth[:, 0], heard[:, 1] - truth[:, 1], angles="xy", scale_units="xy", scale=1, width=0.002, alpha=0.5)
    _mood_axes(axes[2])
    axes[2].set_title(f"{truth_name} -> heard", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_mood_square(points: np.ndarray, names: list[str], title: str, path: Path, bins: int = 8) -> None:
    """Where a set of clips lies on the mood square: a 2-D histogram behind the points, quadrant shares in the corners."""
    from moodmusic.mood import QUADRANTS, quadrant_indices

    plt = _pyplot()
    points = np.asarray(points, dtype=float).reshape(-1, 2)
    fig, ax = plt.subplots(figsize=(5.6, 5))
    counts, edges_v, edges_a = np.histogram2d(points[:, 0], points[:, 1], bins=bins, range=[[-1, 1], [-1, 1]])
    image = ax.imshow(counts.T, origin="lower", extent=(-1, 1, -1, 1), cmap="Greens", alpha=0.8, aspect="auto")
    fig.colorbar(image, ax=ax, label="files per cell")
    ax.scatter(points[:, 0], points[:, 1], s=14, color="black", alpha=0.7)
    if len(names) <= 30:  # label the points only when that stays legible
        for (v, a), name in zip(points, names):
            ax.annotate(name, (v, a), fontsize=6, xytext=(3, 3), textcoords="offset points")
    shares = np.bincount(quadrant_indices(points[:, 0], points[:, 1]), minlength=4) / max(len(points), 1)
    corners = {"happy": (0.95, 0.95), "angry": (-0.95, 0.95), "sad": (-0.95, -0.95), "calm": (0.95, -0.95)}
    for name, share in zip(QUADRANTS, shares):
        x, y = corners[name]
        ax.text(x, y, f"{name} {share:.0%}", ha="right" if x > 0 else "left", va="top" if y > 0 else "bottom", fontsize=9, weight="bold")
    _mood_axes(ax)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_feature_scatter(panels: list[tuple[str, np.ndarray, str, np.ndarray]], title: str, path: Path) -> None:
    """One small scatter per (x name, x values, y name, y values): the acoustic judge against the asked mood."""
    plt = _pyplot()
    columns = min(4, len(panels))
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.9 * rows), squeeze=False)
    for ax, (x_name, x, y_name, y) in zip(axes.flat, panels):
        ax.scatter(x, y, s=8, alpha=0.6)
        ax.set_xlabel(x_name, fontsize=8)
        ax.set_ylabel(y_name, fontsize=8)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_mel_grid(rows: list[tuple[str, list[tuple[str, np.ndarray]]]], path: Path) -> None:
    """Log-mels in a grid: one row per (row title, [(panel title, (80, T) mel), ...]), shared colour scale."""
    from moodmusic.mel import FRAMES_PER_SECOND, LOG_FLOOR

    plt = _pyplot()
    columns = max(len(panels) for _, panels in rows)
    fig, axes = plt.subplots(len(rows), columns, figsize=(4.2 * columns, 2.2 * len(rows)), squeeze=False, constrained_layout=True)
    top = max(float(np.max(mel)) for _, panels in rows for _, mel in panels)
    image = None
    for row_axes, (row_title, panels) in zip(axes, rows):
        for ax, (panel_title, mel) in zip(row_axes, panels):
            mel = np.asarray(mel, dtype=np.float32)
            image = ax.imshow(mel, origin="lower", aspect="auto", cmap="magma", vmin=max(LOG_FLOOR, top - 10), vmax=top,
                              extent=(0, mel.shape[1] / FRAMES_PER_SECOND, 0, mel.shape[0]))  # fmt: skip
            ax.set_title(f"{row_title}: {panel_title}", fontsize=8)
            ax.set_xlabel("seconds", fontsize=7)
            ax.set_ylabel("mel band", fontsize=7)
        for ax in row_axes[len(panels) :]:
            ax.axis("off")
    if image is not None:
        fig.colorbar(image, ax=axes, label="ln magnitude", shrink=0.6)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_embeddings(sets: dict[str, np.ndarray], title: str, path: Path) -> None:
    """Sets of embeddings projected on the first two principal axes of their union."""
    plt = _pyplot()
    sets = {name: np.asarray(values, dtype=float) for name, values in sets.items() if len(values)}
    union = np.concatenate(list(sets.values()))
    centre = union.mean(axis=0)
    _, _, axes_t = np.linalg.svd(union - centre, full_matrices=False)
    fig, ax = plt.subplots(figsize=(5.6, 4.6))
    for name, values in sets.items():
        projected = (values - centre) @ axes_t[:2].T
        ax.scatter(projected[:, 0], projected[:, 1] if projected.shape[1] > 1 else np.zeros(len(projected)), s=10, alpha=0.6, label=f"{name} ({len(values)})")
    ax.set_xlabel("principal axis 1")
    ax.set_ylabel("principal axis 2")
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_labelled_points(points: np.ndarray, labels: list[str], title: str, path: Path) -> None:
    """Heard (valence, arousal) points on the mood square, one colour per label, with each label's mean."""
    plt = _pyplot()
    points = np.asarray(points, dtype=float).reshape(-1, 2)
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    for index, name in enumerate(sorted(set(labels))):
        chosen = np.array([label == name for label in labels])
        colour = plt.cm.tab10(index % 10)
        ax.scatter(points[chosen, 0], points[chosen, 1], s=10, alpha=0.55, color=colour, label=f"{name} ({chosen.sum()})")
        mean = points[chosen].mean(axis=0)
        ax.scatter(*mean, s=120, marker="X", color=colour, edgecolor="black", linewidth=0.8)
    _mood_axes(ax)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
