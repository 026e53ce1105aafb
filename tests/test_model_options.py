"""--generator: a file or the name of an installed model, checked when the command is read."""
import argparse

import pytest

from editor.cli.model_options import clip_file_path, generator_path
from editor.core import zoo


def test_an_installed_generator_is_found_by_its_name(tmp_path):
    src = tmp_path / "mine.pt"
    src.write_bytes(b"weights")
    model = zoo.import_file(src, name="my-faces")
    assert generator_path("my-faces") == str(model.path)
    assert generator_path("My-Faces ") == str(model.path)  # as `atelier models` takes names
    assert generator_path(str(src)) == str(src)  # a file is a file, whatever its name


def test_a_known_model_not_installed_says_how_to_get_it():
    with pytest.raises(argparse.ArgumentTypeError,
                       match="ffhq-1024-rosinality is not installed: `atelier models "
                             "download ffhq-1024-rosinality` gets it"):
        generator_path("ffhq-1024-rosinality")


def test_a_clip_name_is_not_a_generator():
    with pytest.raises(argparse.ArgumentTypeError, match="is a CLIP model, not a generator"):
        generator_path("clip-vit-b-32-openai")


def test_a_near_name_gets_a_suggestion_and_a_path_does_not(tmp_path):
    with pytest.raises(argparse.ArgumentTypeError,
                       match=r"ffhq is neither a file nor an installed model; did you mean "
                             r"ffhq-1024-\w+\?"):
        generator_path("ffhq")
    with pytest.raises(argparse.ArgumentTypeError, match=r"^\S+missing.pt does not exist$"):
        generator_path(str(tmp_path / "missing.pt"))


def test_the_commands_read_it_before_any_model_loads(capsys):
    from editor.cli import main

    for argv in (["edit", "-o", "x.png"], ["precompute", "--clip-pretrained", "openai",
                                             "--clip-arch", "ViT-B-32"],
                 ["invert", "p.png", "-o", "x.png"], ["discover"],
                 ["import-styleclip", "fs3.npy"]):
        with pytest.raises(SystemExit) as ended:
            main([*argv, "--generator", "ffhq-1024-nvidia"])
        assert ended.value.code == 2
        assert "`atelier models download ffhq-1024-nvidia`" in capsys.readouterr().err


def test_every_command_says_its_models_may_be_installed_ones():
    # --generator takes an installed model's name in every command, and an installed
    # CLIP's file needs no --clip-arch (its architecture was found at import); the help of
    # import-styleclip's --generator and every CLIP file option said neither
    from editor.cli import build_parser

    for command in ("edit", "invert", "discover", "precompute", "import-styleclip"):
        sub = next(a for a in build_parser(command)._actions
                   if isinstance(a, argparse._SubParsersAction)).choices[command]
        helps = {opt: a.help for a in sub._actions for opt in a.option_strings}
        assert "installed by `atelier models`" in helps["--generator"], command
        assert helps["--clip-file"] == helps["--clip-checkpoint"], command
        assert "unless saved by this program or installed by `atelier models`" \
            in helps["--clip-file"], command


def test_a_clip_file_option_takes_an_installed_clips_name_too(tmp_path):
    # --clip-file took a path only: an installed CLIP had to be found under the cache
    src = tmp_path / "clip.safetensors"
    src.write_bytes(b"weights")
    model = zoo.import_file(src, name="my-clip")  # (no identify: recorded as it is)
    assert clip_file_path("my-clip") == str(model.path)
    with pytest.raises(argparse.ArgumentTypeError,
                       match="clip-vit-b-16-openai is not installed: `atelier models "
                             "download clip-vit-b-16-openai` gets it"):
        clip_file_path("clip-vit-b-16-openai")
    with pytest.raises(argparse.ArgumentTypeError, match="is a generator, not a CLIP model"):
        clip_file_path("ffhq-1024-rosinality")
    with pytest.raises(argparse.ArgumentTypeError, match=r"^\S+missing.pt does not exist$"):
        clip_file_path(str(tmp_path / "missing.pt"))
