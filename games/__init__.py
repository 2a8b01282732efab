"""Game soundtrack integration: live streams that follow a game's mood, loop banks, stingers.

`moodmusic.livestream.LiveStream` feeds the server's WebSocket; `games.bank` is `moodmusic bank`.
Loops and stingers themselves are made by moodmusic.pipeline (`compose(loop=True)`, `stinger()`).
"""
