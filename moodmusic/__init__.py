"""moodmusic: compose short music clips for a mood, check them, and tell what they sound like."""

__version__ = "0.1.0"
