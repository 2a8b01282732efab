"""The `moodmusic` command line: every job has a subcommand, and a group alone runs its default."""

import pytest

from moodmusic.cli import COMMANDS, build_parser, with_default_subcommand


def test_every_command_parses_its_help(capsys):
    parser = build_parser()
    for path, _, _ in COMMANDS:
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args([*path, "--help"])
        assert exit_info.value.code == 0
        assert "usage: moodmusic " + " ".join(path) in capsys.readouterr().out


def test_a_group_alone_runs_its_default_subcommand():
    assert with_default_subcommand(["evaluate", "--quick"]) == ["evaluate", "chain", "--quick"]
    assert with_default_subcommand(["bench"]) == ["bench", "all"]
    assert with_default_subcommand(["evaluate", "vocoder", "--clips", "4"]) == ["evaluate", "vocoder", "--clips", "4"]
    assert with_default_subcommand(["evaluate", "--help"]) == ["evaluate", "--help"]  # the group's own help
    args = build_parser().parse_args(with_default_subcommand(["evaluate", "--quick"]))
    assert args._module == "moodmusic.evaluation.closed_loop" and args.quick


def test_serve_takes_the_guidance_candidates_from_the_environment_or_the_flag():
    from moodmusic.server.settings import Settings, SettingsError

    assert Settings.from_env({}).candidates is None  # the generator's guidance.json decides
    assert Settings.from_env({"MOODMUSIC_CANDIDATES": "1"}).candidates == 1
    args = build_parser().parse_args(["serve", "--candidates", "4"])
    assert Settings.from_env({"MOODMUSIC_CANDIDATES": "1"}).with_args(args).candidates == 4
    with pytest.raises(SettingsError, match="candidates"):
        Settings.from_env({"MOODMUSIC_CANDIDATES": "0"})
    for command in (["serve"], ["generate"], ["evaluate", "chain"]):
        with pytest.raises(SystemExit):  # argparse's usage error, not a traceback
            build_parser().parse_args([*command, "--candidates", "0"])


def test_unusable_data_or_checkpoints_end_in_a_message_not_a_traceback(tmp_path, capsys):
    from moodmusic.cli import main

    nowhere = str(tmp_path / "nowhere")
    assert main(["corpus", "rerender", "--from", nowhere, "--out", str(tmp_path / "out")]) == 2
    assert "moodmusic: error:" in (err := capsys.readouterr().err) and "has no manifest.csv" in err and "Traceback" not in err
    assert main(["train", "classifier", "--init", nowhere, "--out", str(tmp_path / "run"), "--epochs", "1"]) == 2
    assert "config.json is missing" in capsys.readouterr().err
    assert main(["train", "classifier", "--data", nowhere, "--out", str(tmp_path / "run"), "--epochs", "1"]) == 2
    assert "neither a folder nor a .csv manifest" in capsys.readouterr().err
    # A file name whose format we cannot write is refused before any work, saying which suffixes work.
    with pytest.raises(SystemExit, match=r"end the name in \.wav, \.flac, \.ogg, \.mp3"):
        main(["generate", "--mood", "calm", "--out", str(tmp_path / "clip.aiff"), "--checkpoints", nowhere])
    assert not (tmp_path / "clip.aiff").exists()
