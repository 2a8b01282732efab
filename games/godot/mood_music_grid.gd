# The bar and beat grid of one moodmusic loop, for scheduling clip switches on musical boundaries.
#
#   var grid = MoodMusicGrid.new(entry["bpm"], entry["beats_per_bar"])   # an entry of bank.json's "loops"
#   var switch_at = grid.next_bar_time(song_time)                         # seconds, strictly after song_time
#
# Times are seconds of "song time": from the start of the file, counting on across loop wraps (a loop of
# whole bars keeps the grid: bank.json's loop_start and loop_end lie on bar lines). first_bar_s shifts the
# grid when the first bar line is not at sample 0 (bank.json's bar_starts[0] / sample_rate).
extends Reference
class_name MoodMusicGrid

const EPSILON = 1e-9

var bpm := 120.0
var beats_per_bar := 4
var first_bar_s := 0.0


func _init(p_bpm := 120.0, p_beats_per_bar := 4, p_first_bar_s := 0.0) -> void:
	bpm = float(p_bpm)
	beats_per_bar = int(p_beats_per_bar)
	first_bar_s = float(p_first_bar_s)
	assert(bpm > 0.0 and beats_per_bar > 0)


func beat_length() -> float:
	return 60.0 / bpm


func bar_length() -> float:
	return beat_length() * beats_per_bar


# The first grid line (every `step` seconds from first_bar_s) strictly after position_s: a switch asked for
# exactly on a line waits for the next one, since the player's position is always a little behind the mix.
func _next_line(position_s: float, step: float) -> float:
	var index = floor((position_s - first_bar_s) / step + EPSILON) + 1.0
	return first_bar_s + index * step


func next_bar_time(position_s: float) -> float:
	return _next_line(position_s, bar_length())


func next_beat_time(position_s: float) -> float:
	return _next_line(position_s, beat_length())


# The bar that position_s lies in, counting from 0.
func bar_index(position_s: float) -> int:
	return int(floor((position_s - first_bar_s) / bar_length() + EPSILON))
