"""How well the classifier hears held-out clips: quadrant accuracy, valence/arousal MAE, confusion."""

from __future__ import annotations

import numpy as np
import torch

from moodmusic.classifier.data import Example
from moodmusic.classifier.inference import MoodClassifier
from moodmusic.metrics import quadrant_confusion
from moodmusic.mood import quadrant_indices


def predict_examples(classifier: MoodClassifier, examples: list[Example]) -> dict[str, np.ndarray]:
    """Whole-clip predictions, windowed exactly as `analyze()` does."""
    points, probabilities, embeddings = [], [], []
    for example in examples:
        va, quadrant_probabilities, embedding = classifier.read(torch.from_numpy(example.mel.astype(np.float32)), torch.from_numpy(example.tonal.astype(np.float32))).combined()
        points.append(va)
        probabilities.append(quadrant_probabilities)
        embeddings.append(embedding)
    return {"valence_arousal": np.array(points), "quadrant_probabilities": np.array(probabilities), "embeddings": np.array(embeddings)}


def score(examples: list[Example], predictions: dict[str, np.ndarray]) -> dict:
    """Metrics against the labels. The quadrant heard is the quadrant of the predicted point, the
    same reading `Analysis.quadrant` gives; the quadrant head's own argmax is reported beside it."""
    truth = np.array([[e.valence, e.arousal] for e in examples])
    true_quadrant = np.array([e.quadrant for e in examples])
    predicted = predictions["valence_arousal"]
    heard = quadrant_indices(predicted[:, 0], predicted[:, 1])
    head = predictions["quadrant_probabilities"].argmax(axis=1)
    has_point = np.array([not e.quadrant_only for e in examples])
    errors = np.abs(predicted - truth)[has_point] if has_point.any() else np.full((1, 2), np.nan)
    return {
        "clips": len(examples),
        "quadrant_accuracy": float(np.mean(heard == true_quadrant)),
        "quadrant_head_accuracy": float(np.mean(head == true_quadrant)),
        "valence_mae": float(errors[:, 0].mean()),
        "arousal_mae": float(errors[:, 1].mean()),
        "confusion": {k: v for k, v in quadrant_confusion(truth, predicted).items() if k in ("labels", "rows_true_columns_heard")},
    }
