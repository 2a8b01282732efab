# What Godot reads from a moodmusic bank at res://bank/, as ONE line of JSON on stdout.
#
#   godot3-server --path . --audio-driver Dummy --script res://check_bank.gd [--lanes=3] [--positions=0.5,2.3] [--no-play]
#
# (after `godot3-server --path . --editor --quit` has imported the WAV files). For every .wav entry of
# res://bank/bank.json: the AudioStreamSample's loop_mode, loop_begin, loop_end, mix_rate and length in frames.
# Then it plays clips with AudioStreamPlayer (the Dummy audio driver mixes in real time, so
# get_playback_position() advances) and switches clips on bar lines, as a game would: in each of `lanes`
# players, for every position p in `positions` (seconds of song time of the clip playing), it waits until the
# player reaches p, schedules the switch at MoodMusicGrid.next_bar_time(), waits until the player reaches that
# time and starts the next clip. It records what it asked, what it scheduled and when the switch happened.
# Exit code 0, or 1 with "errors" in the JSON.
extends SceneTree

const Grid = preload("res://mood_music_grid.gd")
const BANK = "res://bank/"
const LOOP_MODES = ["disabled", "forward", "ping_pong", "backward"]
const MAX_SECONDS = 90.0

var report := {}
var entries := []  # the bank.json entries of the WAV files Godot loaded that give bpm and beats_per_bar
var lanes := []
var started_msec := 0
var finished := false


func _init() -> void:
	started_msec = OS.get_ticks_msec()
	report = {
		"godot_version": Engine.get_version_info()["string"],
		"audio_driver": OS.get_audio_driver_name(0),
		"audio_mix_rate": AudioServer.get_mix_rate(),
		"files": {},
		"skipped": [],
		"switches": [],
		"playback": [],
		"errors": [],
	}
	var options = _options()
	var bank = _read_bank()
	if bank == null:
		_finish()
		return
	for entry in bank["loops"]:
		var file := str(entry.get("file", ""))
		if file.get_extension().to_lower() != "wav":
			report["skipped"].append(file)  # Godot 3 reads no loop points from Ogg comments
			continue
		var info = _describe(file)
		report["files"][file] = info
		if not info["loaded"]:
			report["errors"].append("could not load " + BANK + file + " (was the bank imported?)")
		elif _number(entry, "bpm") > 0.0 and _number(entry, "beats_per_bar") >= 1.0:
			entries.append(entry)
	if entries.empty() and not report["files"].empty():
		report["notes"] = ["no WAV entry gives bpm and beats_per_bar: no clip switches were played"]
	if options["play"] and entries.size() > 0 and options["positions"].size() > 0:
		for k in range(min(options["lanes"], entries.size())):
			lanes.append(_new_lane(k, options["positions"]))
	else:
		_finish()


func _options() -> Dictionary:
	var options = {"lanes": 3, "positions": [0.5, 2.3], "play": true}
	for arg in OS.get_cmdline_args():
		if arg.begins_with("--lanes="):
			options["lanes"] = int(arg.split("=")[1])
		elif arg.begins_with("--positions="):
			options["positions"] = []
			for value in arg.split("=")[1].split(",", false):
				options["positions"].append(float(value))
		elif arg == "--no-play":
			options["play"] = false
	return options


func _number(entry: Dictionary, key: String) -> float:
	var value = entry.get(key)
	return float(value) if typeof(value) in [TYPE_REAL, TYPE_INT] else 0.0


func _read_bank():
	var file = File.new()
	if file.open(BANK + "bank.json", File.READ) != OK:
		report["errors"].append("no " + BANK + "bank.json")
		return null
	var parsed = JSON.parse(file.get_as_text())
	file.close()
	if parsed.error != OK or typeof(parsed.result) != TYPE_DICTIONARY or not parsed.result.has("loops"):
		report["errors"].append("bank.json is not a bank: " + parsed.error_string)
		return null
	return parsed.result


func _describe(file: String) -> Dictionary:
	var path = BANK + file
	if not ResourceLoader.exists(path):
		return {"loaded": false}
	var stream = load(path)
	if not stream is AudioStreamSample:
		return {"loaded": false}
	var frames = null
	if stream.format != AudioStreamSample.FORMAT_IMA_ADPCM:
		var bytes_per_frame = (2 if stream.format == AudioStreamSample.FORMAT_16_BITS else 1) * (2 if stream.stereo else 1)
		frames = stream.data.size() / bytes_per_frame
	return {
		"loaded": true,
		"loop_mode": LOOP_MODES[stream.loop_mode] if stream.loop_mode < LOOP_MODES.size() else str(stream.loop_mode),
		"loop_begin": stream.loop_begin,
		"loop_end": stream.loop_end,
		"mix_rate": stream.mix_rate,
		"frames": frames,
		"stereo": stream.stereo,
		"format": stream.format,
		"length_s": stream.get_length(),
	}


func _grid(entry: Dictionary):
	var first_bar_s = 0.0
	if entry.has("bar_starts") and entry["bar_starts"].size() > 0:
		first_bar_s = float(entry["bar_starts"][0]) / float(entry["sample_rate"])
	return Grid.new(float(entry["bpm"]), int(entry["beats_per_bar"]), first_bar_s)


# One AudioStreamPlayer that plays entries[k], entries[k + 1], ... switching at the next bar line after each
# of `positions`.
func _new_lane(k: int, positions: Array) -> Dictionary:
	var player = AudioStreamPlayer.new()
	get_root().add_child(player)
	var lane = {"index": k, "player": player, "positions": positions, "step": 0, "clip": k, "done": false, "max_position": 0.0, "readings": 0}
	_start_clip(lane)
	return lane


func _start_clip(lane: Dictionary) -> void:
	var entry = entries[lane["clip"] % entries.size()]
	var rate = float(entry["sample_rate"])
	lane["entry"] = entry
	lane["grid"] = _grid(entry)
	lane["loop_s"] = (float(entry["loop_end"]) - float(entry["loop_start"])) / rate  # song time gained per wrap
	lane["wraps"] = 0
	lane["last_position"] = 0.0
	lane["phase"] = "ask"
	lane["clip_started_msec"] = OS.get_ticks_msec()
	lane["player"].stream = load(BANK + str(entry["file"]))
	lane["player"].play()


# Seconds since the clip started, counting on across loop wraps: the player's position (updated at each mix)
# plus the time since that mix, as Godot's docs advise for syncing gameplay with audio.
func _song_time(lane: Dictionary) -> float:
	var position = lane["player"].get_playback_position()
	if position + 1e-6 < lane["last_position"]:
		lane["wraps"] += 1
	lane["last_position"] = position
	if position <= 0.0:
		return 0.0  # not mixed yet
	lane["readings"] += 1
	lane["max_position"] = max(lane["max_position"], position)
	return lane["wraps"] * lane["loop_s"] + position + AudioServer.get_time_since_last_mix()


func _idle(_delta: float) -> bool:
	if finished:
		return false
	if OS.get_ticks_msec() - started_msec > MAX_SECONDS * 1000.0:
		report["errors"].append("timed out after %d s waiting for playback" % MAX_SECONDS)
		_finish()
		return false
	var all_done = true
	for lane in lanes:
		if not lane["done"]:
			_advance(lane)
			all_done = all_done and lane["done"]
	if all_done:
		_finish()
	return false


func _advance(lane: Dictionary) -> void:
	var song = _song_time(lane)
	var step = lane["step"]
	if lane["phase"] == "ask" and song >= lane["positions"][step]:
		lane["asked_at"] = song
		lane["scheduled"] = lane["grid"].next_bar_time(song)
		lane["next_beat"] = lane["grid"].next_beat_time(song)
		lane["phase"] = "switch"
	elif lane["phase"] == "switch" and song >= lane["scheduled"]:
		var entry = lane["entry"]
		var next_entry = entries[(lane["clip"] + 1) % entries.size()]
		report["switches"].append({
			"lane": lane["index"],
			"from": entry["file"],
			"to": next_entry["file"],
			"bpm": entry["bpm"],
			"beats_per_bar": entry["beats_per_bar"],
			"bar_s": lane["grid"].bar_length(),
			"first_bar_s": lane["grid"].first_bar_s,
			"requested": lane["positions"][step],
			"asked_at": lane["asked_at"],
			"next_beat": lane["next_beat"],
			"scheduled": lane["scheduled"],
			"switched_at": song,
			"loop_wraps": lane["wraps"],
			"wall_s": (OS.get_ticks_msec() - lane["clip_started_msec"]) / 1000.0,
		})
		_record_playback(lane)
		lane["clip"] += 1
		lane["step"] += 1
		if lane["step"] < lane["positions"].size():
			_start_clip(lane)
		else:
			lane["player"].stop()
			lane["done"] = true


func _record_playback(lane: Dictionary) -> void:
	report["playback"].append({
		"lane": lane["index"],
		"file": lane["entry"]["file"],
		"position_readings": lane["readings"],
		"max_position": lane["max_position"],
		"loop_wraps": lane["wraps"],
		"advanced": lane["max_position"] > 0.0,
	})
	lane["readings"] = 0
	lane["max_position"] = 0.0


func _finish() -> void:
	finished = true
	for lane in lanes:
		lane["player"].stop()
	report["elapsed_s"] = (OS.get_ticks_msec() - started_msec) / 1000.0
	print(JSON.print(report))
	OS.exit_code = 0 if report["errors"].empty() else 1
	quit()
