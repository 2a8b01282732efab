"""The classifier stage: the system's ear.

    from moodmusic import classifier
    model = classifier.load()              # the shipped checkpoints/classifier
    analysis = model.analyze("clip.wav")   # or bytes, or mono float32 samples at 22,050 Hz
    analysis.overall.valence, analysis.quadrant, analysis.timeline, analysis.embedding

The analysis types (`Analysis`, `MoodReading`, `TimelineWindow`) live in moodmusic/analysis.py.
"""

from moodmusic.classifier.inference import MoodClassifier, load

__all__ = ["MoodClassifier", "load"]
