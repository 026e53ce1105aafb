"""Importing the official StyleCLIP's precomputed global directions (fs3.npy, S_mean_std).

The files are written here in the official format (as SingleChannel.py and GetCode.py
write them) from relevance this program computes exactly on tiny models; the official
repository's own files are not available offline."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch
from conftest import make_tiny_clip, make_tiny_generator

from editor.core.errors import DirectionsFileError, UnsafePickleError
from editor.core.generator import Generator, GeneratorConfig
from editor.core.style_code import StyleLayerSpec, editable_mask, flat_offsets, layer_of
from editor.methods import global_directions as gd
from editor.methods import precompute as pc
from editor.methods import styleclip_files as sf

FILE_IMAGES = 32  # the official file's 100 base images, fewer for test time


@pytest.fixture(scope="module")
def models():
    torch.set_num_threads(1)
    gen = make_tiny_generator(resolution=16, channel_max=16, seed=2)
    clip = make_tiny_clip()
    stats = gd.compute_style_stats(gen, 2000, psi=0.7)
    *_, rel = gd.compute_relevance(gen, clip, stats,
                                   gd.RelevanceConfig(n_images=FILE_IMAGES, psi=0.7))
    return gen, clip, stats, rel


def official_fs3(path, vectors: torch.Tensor, dtype=np.float16):
    """fs3.npy as SingleChannel.py saves it: the rows of the non-toRGB channels in order
    (float16 where CLIP ran on a GPU)."""
    np.save(path, vectors.numpy().astype(dtype))
    return path


def official_mean_std(path, gen: Generator, stats: gd.StyleStats, protocol: int = 3):
    """S_mean_std as GetCode.py pickles it: [means, stds], one float32 array per style
    layer, toRGB layers included."""
    offsets = flat_offsets(gen.style_specs) + [len(stats.mean)]
    bounds = list(zip(offsets[:-1], offsets[1:], strict=True))
    split = [[t[a:b].numpy().astype(np.float32) for a, b in bounds]
             for t in (stats.mean, stats.std)]
    with open(path, "wb") as f:
        pickle.dump(split, f, protocol=protocol)
    return path


def run_import(gen, clip, fs3, stats_file=None, **kwargs):
    items = list(sf.import_styleclip_pack(gen, clip, "gen-hash", "clip-hash", fs3, stats_file,
                                          clip_dims=clip.embed_dim, stats_samples=500,
                                          **kwargs))
    assert all(isinstance(p, gd.Progress) for p in items[:-1])
    return items[-1]


# --------------------------------------------------------------------------- the format


def test_fs3_rows_are_the_non_torgb_channels_in_synthesis_order_as_styleclip_counts_them():
    """FFHQ 1024: the official script's 11 layers (up to 128 px) are 5,376 rows, all 17
    non-toRGB layers 6,048; row 0 is conv1's channel 0 and row 512 the first 8 px conv's."""
    with torch.device("meta"):
        specs = Generator(GeneratorConfig(resolution=1024)).style_specs
    offsets = flat_offsets(specs)
    eleven = sf.fs3_channels(specs, 5376)
    assert len(eleven) == 5376 and len(sf.fs3_channels(specs, 6048)) == 6048
    assert int(eleven[0]) == offsets[0] and specs[0].name == "conv1"
    assert specs[1].is_torgb and int(eleven[512]) == offsets[2]  # to_rgb1 skipped
    editable = torch.nonzero(editable_mask(specs)).flatten()
    assert torch.equal(eleven, editable[:5376])
    with pytest.raises(DirectionsFileError, match="not a whole number"):
        sf.fs3_channels(specs, 5000)
    with pytest.raises(DirectionsFileError, match="not a whole number"):
        sf.fs3_channels(specs, 7000)


def official_style_names(resolution: int) -> list[str]:
    """The style layers as StyleCLIP names them (global_torch/manipulate.py GetSName)."""
    names = ["conv1_resolution_4", "toRGB_resolution_4"]
    res = 8
    while res <= resolution:
        names += [f"conv0_resolution_{res}", f"conv1_resolution_{res}", f"toRGB_resolution_{res}"]
        res *= 2
    return names


def as_official_name(name: str) -> str:
    """Ours (rosinality's modules) to StyleCLIP's name of the same layer."""
    if name in ("conv1", "to_rgb1"):
        return "conv1_resolution_4" if name == "conv1" else "toRGB_resolution_4"
    kind, k = name.split(".")
    if kind == "convs":
        return f"conv{int(k) % 2}_resolution_{8 * 2 ** (int(k) // 2)}"
    return f"toRGB_resolution_{8 * 2 ** int(k)}"


@pytest.mark.parametrize(("resolution", "last_layer"), [(1024, 16), (1024, 99), (256, 16)])
def test_each_fs3_row_lands_on_the_channel_singlechannel_py_measured(tmp_path, resolution,
                                                                     last_layer):
    """Built from the official code alone, not from our specs: SingleChannel.py loops over
    the non-ToRGB s_names indices up to 16 (all of them without that limit), then their
    channels; each fake row names its (layer, channel), and must land on that channel."""
    with torch.device("meta"):
        specs = Generator(GeneratorConfig(resolution=resolution)).style_specs
    s_names = official_style_names(resolution)
    assert [as_official_name(s.name) for s in specs] == s_names
    if resolution == 1024:  # the official fmaps and mindexs (global_torch/manipulate.py)
        fmaps = np.repeat([512, 512, 512, 512, 512, 256, 128, 64, 32], 3)[:len(specs)]
        assert [s.channels for s in specs] == fmaps.tolist()
    mindexs = [i for i, n in enumerate(s_names) if not n.startswith("toRGB")]
    rows = [(lindex, c) for lindex in mindexs if lindex <= last_layer
            for c in range(specs[lindex].channels)]
    np.save(tmp_path / "fs3.npy", np.array([(lindex, c, 1.0) for lindex, c in rows],
                                           np.float32))
    channels, vectors = sf.read_fs3(tmp_path / "fs3.npy", specs, 3)
    offsets = flat_offsets(specs)
    placed = [(layer_of(offsets, int(flat)), int(flat) - offsets[layer_of(offsets, int(flat))])
              for flat in channels]
    named = [(round(float(v[0] / v[2])), round(float(v[1] / v[2]))) for v in vectors]
    assert placed == named == rows


def test_a_float16_fs3_reads_as_unit_float32_vectors(tmp_path, models):
    gen, clip, _, rel = models
    channels, got = sf.read_fs3(official_fs3(tmp_path / "fs3.npy", rel.vectors),
                                gen.style_specs, clip.embed_dim)
    assert torch.equal(channels, rel.channels)
    assert got.dtype == torch.float32 and got.shape == rel.vectors.shape
    assert torch.allclose(got.norm(dim=1), torch.ones(len(got)), atol=1e-6)
    assert float((got * rel.vectors).sum(1).min()) > 0.999


ONE_LAYER = [StyleLayerSpec("conv1", 2, 4, False, 0), StyleLayerSpec("to_rgb1", 2, 4, True, 1)]


@pytest.mark.parametrize("content, message", [
    (np.zeros((2, 2, 2), np.float32), "shape"),
    (np.ones((2, 2), np.int64), "not floats"),
    (np.ones((2, 3), np.float32), "3-dimensional"),
    (np.ones((3, 2), np.float32), "not a whole number"),
    (np.array([[1.0, np.nan], [0.0, 1.0]], np.float32), "NaN"),
    (np.array([[1.0, 0.0], [0.0, 0.0]], np.float32), "row 1 is all zeros"),
])
def test_arrays_that_are_not_an_fs3_are_refused(tmp_path, content, message):
    path = tmp_path / "fs3.npy"
    np.save(path, content)
    with pytest.raises(DirectionsFileError, match=message):
        sf.read_fs3(path, ONE_LAYER, 2)


def test_a_transposed_fs3_is_called_so(tmp_path):
    # (512, 5376) said "holds 5376-dimensional CLIP vectors; this CLIP model's are 512":
    # the CLIP was blamed for the file's layout
    specs = [StyleLayerSpec("conv1", 3, 4, False, 0), StyleLayerSpec("to_rgb1", 3, 4, True, 1)]
    np.save(tmp_path / "fs3.npy", np.ones((3, 2), np.float32).T)
    with pytest.raises(DirectionsFileError, match=r"has shape \(2, 3\), which is transposed"):
        sf.read_fs3(tmp_path / "fs3.npy", specs, 2)
    np.save(tmp_path / "other.npy", np.ones((2, 4), np.float32))  # no layout of this model's
    with pytest.raises(DirectionsFileError, match="4-dimensional"):
        sf.read_fs3(tmp_path / "other.npy", specs, 2)


def test_damaged_and_foreign_files_are_refused_without_running_anything(tmp_path):
    ran = tmp_path / "ran"
    objects = np.array([Exploit(str(ran)), 1], dtype=object)
    np.save(tmp_path / "pickled.npy", objects, allow_pickle=True)
    with pytest.raises(DirectionsFileError, match="holds Python objects"):
        sf.read_fs3(tmp_path / "pickled.npy", ONE_LAYER, 2)
    assert not ran.exists()
    np.save(tmp_path / "whole.npy", np.ones((2, 2), np.float32))
    data = (tmp_path / "whole.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(data[:-4])
    header_end = data.index(b"\n") + 1
    (tmp_path / "lying.npy").write_bytes(data[:header_end].replace(b"(2, 2)", b"(-2, 2)")
                                         + data[header_end:])
    (tmp_path / "empty.npy").write_bytes(b"")
    (tmp_path / "text.npy").write_text("not an array")
    np.savez(tmp_path / "arch.npz", a=np.ones((2, 2)))
    torch.save({"x": torch.ones(2)}, tmp_path / "weights.pt", _use_new_zipfile_serialization=False)
    (tmp_path / "folder.npy").mkdir()
    for name, message in [("cut.npy", "truncated"), ("lying.npy", "damaged|not a readable"),
                          ("empty.npy", "is empty"), ("text.npy", "not a .npy file"),
                          ("arch.npz", "zip archive"), ("weights.pt", "pickle"),
                          ("folder.npy", "is a folder"), ("missing.npy", "cannot be read")]:
        with pytest.raises(DirectionsFileError, match=message):
            sf.read_fs3(tmp_path / name, ONE_LAYER, 2)


class Exploit:
    """Unpickling this runs os.system: a reader that runs it has failed."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("protocol", [2, 3, 4])
def test_s_mean_std_reads_into_the_flat_statistics(tmp_path, models, protocol):
    gen, _, stats, _ = models
    got = sf.read_style_mean_std(official_mean_std(tmp_path / "S_mean_std", gen, stats,
                                                   protocol), gen.style_specs)
    assert torch.allclose(got.mean, stats.mean.float()) and torch.allclose(
        got.std, stats.std.float())


def test_s_mean_std_of_another_generator_or_carrying_code_is_refused(tmp_path, models):
    gen, _, stats, _ = models
    other = make_tiny_generator(resolution=8, channel_max=16, seed=1)
    path = official_mean_std(tmp_path / "S_mean_std", gen, stats)
    with pytest.raises(DirectionsFileError, match="style layers"):
        sf.read_style_mean_std(path, other.style_specs)
    ran = tmp_path / "ran"
    (tmp_path / "evil").write_bytes(pickle.dumps([Exploit(str(ran)), []]))
    with pytest.raises(UnsafePickleError):
        sf.read_style_mean_std(tmp_path / "evil", gen.style_specs)
    assert not ran.exists()
    # GetCode.py's S ([layer names, style codes]) for S_mean_std: not "layer conv1 should
    # hold 16 numbers, found str"
    names = [spec.name for spec in gen.style_specs]
    (tmp_path / "S").write_bytes(pickle.dumps(
        [names, [np.zeros((3, spec.channels), np.float32) for spec in gen.style_specs]]))
    with pytest.raises(DirectionsFileError, match="is StyleCLIP's S .*, not S_mean_std"):
        sf.read_style_mean_std(tmp_path / "S", gen.style_specs)
    (tmp_path / "cut").write_bytes(path.read_bytes()[:100])
    with pytest.raises(DirectionsFileError, match="could not be read"):
        sf.read_style_mean_std(tmp_path / "cut", gen.style_specs)


# --------------------------------------------------------------------------- the import


def test_an_imported_fs3_makes_the_edits_the_computed_pack_makes(tmp_path, models):
    """The imported pack is the computed one (to float16 precision), so a text edit moves
    the same channels by the same amounts; the check re-measures channels and agrees."""
    gen, clip, stats, rel = models
    fs3 = official_fs3(tmp_path / "fs3.npy", rel.vectors)
    data = run_import(gen, clip, fs3, official_mean_std(tmp_path / "S", gen, stats))
    assert torch.equal(data.relevance.channels, rel.channels)
    assert data.save_error is None and not data.info["forced"]
    agreement = sf.Agreement.from_dict(data.info["agreement"])
    assert agreement.passes() and len(agreement.cosines) == sf.VERIFY_CHANNELS
    direction = gd.text_direction(clip, "face", "smiling face")
    ours = gd.edit_direction(rel, stats, direction, beta=0.1)
    imported = gd.edit_direction(data.relevance, data.stats, direction, beta=0.1)
    assert torch.equal(ours.delta != 0, imported.delta != 0)
    assert torch.allclose(ours.delta.float(), imported.delta, atol=1e-3 * float(
        ours.delta.abs().max()))
    again = pc.load_imported_pack("gen-hash", "clip-hash")
    assert again is not None and torch.equal(again.relevance.vectors, data.relevance.vectors)
    # results made from a pack (discoveries) are cached under its key: another file's
    # import for the same models must not share it
    assert again.key == data.key
    other = run_import(gen, clip, fs3)  # statistics computed, not the file's
    assert other.key != data.key


def test_without_s_mean_std_the_statistics_are_computed_and_cached(tmp_path, models):
    gen, clip, _, rel = models
    data = run_import(gen, clip, official_fs3(tmp_path / "fs3.npy", rel.vectors))
    assert data.info["stats_from"] == "computed" and data.stats.n_samples == 500
    assert pc.load_stats("gen-hash", 500, psi=gd.OFFICIAL_PSI) is not None


def test_a_file_of_fewer_layers_edits_only_those(tmp_path, models):
    """The official script stops at 128 px: the later layers have no relevance and stay."""
    gen, clip, stats, rel = models
    first = sum(s.channels for s in gen.style_specs[:4] if not s.is_torgb)
    data = run_import(gen, clip, official_fs3(tmp_path / "fs3.npy", rel.vectors[:first]))
    assert torch.equal(data.relevance.channels, rel.channels[:first])
    direction = gd.text_direction(clip, "face", "smiling face")
    edit = gd.edit_direction(data.relevance, data.stats, direction, beta=0.0)
    moved = torch.nonzero(edit.delta).flatten()
    assert len(moved) and int(moved.max()) <= int(rel.channels[first - 1])


def test_a_file_for_other_models_is_refused_unless_forced(tmp_path, models):
    """Another generator's file of the same shape (AFHQ's fs3 has FFHQ's 5,376 rows): the
    rows belong to other channels. Nothing is kept unless forced."""
    gen, clip, stats, rel = models
    perm = torch.randperm(len(rel.vectors), generator=torch.Generator().manual_seed(0))
    fs3 = official_fs3(tmp_path / "fs3.npy", rel.vectors[perm])
    with pytest.raises(sf.MismatchError, match="does not match"):
        run_import(gen, clip, fs3)
    assert pc.load_imported_pack("gen-hash", "clip-hash") is None
    data = run_import(gen, clip, fs3, force=True)
    assert data.info["forced"] and pc.load_imported_pack("gen-hash", "clip-hash") is not None
    with pytest.raises(sf.MismatchError):  # the right file with another CLIP
        run_import(gen, make_tiny_clip(5), official_fs3(tmp_path / "b.npy", rel.vectors))


def test_a_file_of_other_clip_dimensions_is_refused_before_any_work(tmp_path, models):
    gen, clip, _, rel = models
    fs3 = official_fs3(tmp_path / "fs3.npy", torch.nn.functional.normalize(
        torch.randn(len(rel.channels), 512), dim=1))
    with pytest.raises(DirectionsFileError, match="512-dimensional"):
        next(iter(sf.import_styleclip_pack(gen, clip, "g", "c", fs3,
                                           clip_dims=clip.embed_dim)))


def test_cli_import_then_edit_needs_no_precompute(tmp_path, capsys, monkeypatch, models):
    """`atelier import-styleclip` keeps the pack where the editor looks; `atelier edit`
    then edits with it at once, and a mismatching file exits 1 saying --force."""
    from editor.cli import main
    from editor.core.checkpoints import save_generator
    from editor.engine.packs import ClipSource, open_pack

    gen, _, _, rel = models
    gen_path = save_generator(gen, tmp_path / "g.safetensors")
    clip_path = make_tiny_clip().save(tmp_path / "clip.safetensors")
    fs3 = official_fs3(tmp_path / "fs3.npy", rel.vectors)
    common = ["--generator", str(gen_path), "--clip-checkpoint", str(clip_path),
              "--stats-samples", "500", "--threads", "1"]
    assert main(["import-styleclip", str(fs3), *common]) == 0
    out = capsys.readouterr().out
    assert f"imported: {len(rel.channels)} channels x 32 dims, statistics computed" in out
    assert "median cosine" in out
    assert main(["edit", "--generator", str(gen_path), "--clip-checkpoint", str(clip_path),
                 "--seed", "3", "--target", "smiling face", "--beta", "0.05",
                 "-o", str(tmp_path / "out.png")]) == 0
    out, err = capsys.readouterr()
    assert (tmp_path / "out.png").exists() and "precompute" not in out + err
    official_mean_std(tmp_path / "S_mean_std", gen, data_stats := gd.compute_style_stats(
        gen, 300, psi=0.7))  # GetCode.py writes it beside fs3.npy
    assert main(["import-styleclip", str(fs3), *common]) == 0
    out, err = capsys.readouterr()
    assert "statistics S_mean_std" in out  # and the import it replaces (silently, before)
    assert "note: this replaces the directions imported before from fs3.npy" in err
    assert main(["import-styleclip", str(fs3), *common]) == 0  # the same again: not said
    assert "replaces" not in capsys.readouterr().err
    again = open_pack(gen_path, ClipSource(path=str(clip_path))).data
    assert again.imported_from == "fs3.npy"
    assert torch.allclose(again.stats.std, data_stats.std.float())
    # the first picture's recipe names the directions it was made with: replayed with the
    # pack imported since (other statistics), it says so
    assert main(["edit", "--recipe", str(tmp_path / "out.png"), "--generator", str(gen_path),
                 "--clip-checkpoint", str(clip_path), "-o", str(tmp_path / "again.png")]) == 0
    err = capsys.readouterr().err
    assert "made with other global directions (imported fs3.npy" in err
    perm = torch.randperm(len(rel.vectors), generator=torch.Generator().manual_seed(0))
    bad = official_fs3(tmp_path / "bad.npy", rel.vectors[perm])
    assert main(["import-styleclip", str(bad), *common]) == 1
    assert "--force" in capsys.readouterr().err
    assert main(["import-styleclip", str(bad), *common, "--force"]) == 0
    assert "(kept because of --force although it does not fit these models: its channels " \
        "do not agree with them (median cosine under 0.5))" in capsys.readouterr().out
    # replayed where the imported directions are not (another cache): refused before any
    # precompute, which would take hours on a real generator and not replay it anyway
    monkeypatch.setenv("ATELIER_CACHE_DIR", str(tmp_path / "elsewhere"))
    assert main(["edit", "--recipe", str(tmp_path / "out.png"), "--generator", str(gen_path),
                 "--clip-checkpoint", str(clip_path), "-o", str(tmp_path / "third.png")]) == 1
    out, err = capsys.readouterr()
    assert "import that file first" in err and "computing" not in out + err
    assert not (tmp_path / "third.png").exists()
    # on other models the directions are theirs anyway: told, and computed
    other = save_generator(make_tiny_generator(resolution=8, channel_max=16, seed=9),
                           tmp_path / "other.safetensors")
    assert main(["edit", "--recipe", str(tmp_path / "out.png"), "--generator", str(other),
                 "--clip-checkpoint", str(clip_path), "--precompute-images", "2",
                 "--stats-samples", "100", "-o", str(tmp_path / "fourth.png")]) == 0
    assert "made with generator" in capsys.readouterr().err
    assert main(["import-styleclip", str(tmp_path / "none.npy"), *common]) == 1
    assert "no such file" in capsys.readouterr().err
    # StyleCLIP's npy/ffhq/ for its fs3.npy, or for --stats: not "no such file"
    assert main(["import-styleclip", str(tmp_path), *common]) == 1
    assert f"{tmp_path}: a folder, not a file" in capsys.readouterr().err
    assert main(["import-styleclip", str(fs3), "--stats", str(tmp_path), *common]) == 1
    assert f"{tmp_path}: a folder, not a file" in capsys.readouterr().err


def test_an_fs3_is_told_from_a_latent_by_its_shape(tmp_path, models):
    """What a dropped .npy is: fs3's rows are whole style layers, its columns CLIP's."""
    gen, clip, _, rel = models
    specs = gen.style_specs
    fs3 = official_fs3(tmp_path / "fs3.npy", rel.vectors)
    assert sf.looks_like_fs3(fs3, specs, clip.embed_dim)
    assert not sf.looks_like_fs3(fs3, specs, clip.embed_dim + 1)
    np.save(tmp_path / "w.npy", np.zeros((1, gen.num_ws, 32), np.float32))
    np.save(tmp_path / "wplus.npy", np.zeros((gen.num_ws, 32), np.float32))
    (tmp_path / "text.npy").write_text("no")
    for name in ("w.npy", "wplus.npy", "text.npy", "missing.npy"):
        assert not sf.looks_like_fs3(tmp_path / name, specs, 32)


def test_a_file_measured_as_styleclips_script_measures_is_accepted(tmp_path, models):
    """SingleChannel.py leaves each channel it has done at its mean, so row r was measured
    with rows 0..r-1 held at their means: the check measures that way too."""
    gen, clip, stats, rel = models
    offsets = flat_offsets(gen.style_specs)
    codes = gd.base_codes(gen, FILE_IMAGES, 3, 0.7)
    rows = []
    for r, flat in enumerate(rel.channels.tolist()):
        layer = max(i for i, o in enumerate(offsets) if o <= flat)
        held = sf._held_at_mean(codes, stats, rel.channels[:r])
        rows.append(gd.relevance_for_layer(gen, clip, held, stats, layer, [flat - offsets[layer]],
                                           5.0, gd.state_before(gen, held, layer), 64)[0])
    script_made = torch.stack(rows)
    assert float((script_made * rel.vectors).sum(1).median()) < 0.9  # not the clean file
    data = run_import(gen, clip, official_fs3(tmp_path / "fs3.npy", script_made))
    agreement = sf.Agreement.from_dict(data.info["agreement"])
    assert agreement.passes() and np.median(agreement.held) > np.median(agreement.clean)


def test_the_rows_checked_are_one_per_stretch_and_differ_from_file_to_file():
    channels = torch.arange(5376)
    a, b = sf.verify_rows(channels, 8, seed=1), sf.verify_rows(channels, 8, seed=2)
    assert a != b and len(a) == len(b) == 8
    for rows in (a, b):
        assert [r * 8 // 5376 for r in rows] == list(range(8))
    assert sf.verify_rows(torch.arange(3), 8, seed=1) == [0, 1, 2]


def test_statistics_of_another_generator_or_truncation_are_refused_unless_forced(tmp_path,
                                                                                 models):
    """S_mean_std scales every edit (sigma): one made for another generator of the same
    shape, or of untruncated samples where StyleCLIP's psi 0.7 is meant, is refused."""
    gen, clip, stats, rel = models
    fs3 = official_fs3(tmp_path / "fs3.npy", rel.vectors)
    other = make_tiny_generator(resolution=16, channel_max=16, seed=7)
    for name, wrong in [("other", gd.compute_style_stats(other, 2000, psi=0.7)),
                        ("untruncated", gd.compute_style_stats(gen, 2000, psi=1.0))]:
        path = official_mean_std(tmp_path / name, gen, wrong)
        with pytest.raises(sf.MismatchError, match="does not describe this generator"):
            run_import(gen, clip, fs3, path)
    assert pc.load_imported_pack("gen-hash", "clip-hash") is None
    forced = run_import(gen, clip, fs3, path, force=True).info
    assert forced["stats_from"] == "untruncated"
    assert [f.split(":")[0] for f in forced["forced"]] == ["statistics"]  # said, not hidden
    fitting = sf.statistics_mismatch(stats, gd.compute_style_stats(gen, 1000, seed=9, psi=0.7))
    assert fitting is None


def test_a_refused_import_leaves_no_folder_behind(tmp_path, capsys, models):
    from editor.cli import main
    from editor.core.checkpoints import save_generator

    gen, *_ = models
    gen_path = save_generator(gen, tmp_path / "g.safetensors")
    clip_path = make_tiny_clip().save(tmp_path / "clip.safetensors")
    (tmp_path / "text.npy").write_text("no")
    into = tmp_path / "into"
    assert main(["import-styleclip", str(tmp_path / "text.npy"), "--generator", str(gen_path),
                 "--clip-checkpoint", str(clip_path), "--into", str(into)]) == 1
    assert "not a .npy file" in capsys.readouterr().err
    assert not into.exists()


def test_a_file_that_is_no_fs3_is_refused_before_the_models_load(tmp_path, capsys,
                                                                   monkeypatch):
    # The generator and CLIP loaded first (FFHQ and ViT-B/32: many seconds) to say that
    # the file was a pickle, or 3-D.
    import editor.cli.import_styleclip as cli
    from editor.cli import main

    def no_loading(*args):
        raise AssertionError("models loaded")

    monkeypatch.setattr(cli, "load_models", no_loading)
    (tmp_path / "S").write_bytes(b"\x80\x04N.")
    np.save(tmp_path / "cube.npy", np.zeros((2, 3, 4), np.float32))
    for name, said in (("S", "a pickle"), ("cube.npy", "has shape (2, 3, 4)")):
        assert main(["import-styleclip", str(tmp_path / name),
                     "--generator", __file__, "--clip-checkpoint", __file__]) == 1
        assert said in capsys.readouterr().err


def test_an_import_that_cannot_be_cached_says_so_once_and_not_computed_again(
        tmp_path, capsys, caplog, monkeypatch, models):
    """A full disk: "it is used now but will be computed again next time" (twice) was
    wrong for an import, where the command ends with nothing imported."""
    import errno

    from editor.cli import main
    from editor.core.checkpoints import save_generator

    def full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    gen, _, _, rel = models
    gen_path = save_generator(gen, tmp_path / "g.safetensors")
    clip_path = make_tiny_clip().save(tmp_path / "clip.safetensors")
    monkeypatch.setattr(pc, "save_checked", full)
    assert main(["import-styleclip", str(official_fs3(tmp_path / "fs3.npy", rel.vectors)),
                 "--generator", str(gen_path), "--clip-checkpoint", str(clip_path),
                 "--stats-samples", "500", "--threads", "1"]) == 1
    lines = [line for line in capsys.readouterr().err.splitlines()
             if "could not be saved" in line]
    assert lines == ["atelier import-styleclip: error: the file was read but not kept, so "
                     "nothing was imported: the imported global directions could not be "
                     "saved to the cache (No space left on device)"]
    assert not [r for r in caplog.records if "imported global" in r.getMessage()]  # (twice)


def test_cli_import_for_models_with_a_computed_pack_says_it_is_not_used(tmp_path, capsys):
    """The demo pack's directions ship computed: an import for it is kept but not used."""
    from editor.cli import main
    from editor.core.paths import DEMO_MODELS_DIR
    from editor.engine.packs import demo_clip_source, open_pack

    pack = open_pack(DEMO_MODELS_DIR / "generator.safetensors", demo_clip_source())
    fs3 = official_fs3(tmp_path / "fs3.npy", pack.data.relevance.vectors)
    assert main(["import-styleclip", str(fs3), "--generator",
                 str(DEMO_MODELS_DIR / "generator.safetensors"), "--clip-checkpoint",
                 str(DEMO_MODELS_DIR / "clip.safetensors"), "--threads", "1"]) == 0
    out, err = capsys.readouterr()
    assert "a pack computed here, which text edits use instead" in err and "imported:" in out


def test_the_import_anyway_question_says_it_in_words_and_keeps_the_numbers_as_details(
        qtbot, monkeypatch):
    """It was written in statistics ("median cosine 0.10 over 8 channels re-measured at 4
    images (min -0.17; …)"): a plain sentence first, the numbers in the details, No the
    default and the answer when the box is closed."""
    from types import SimpleNamespace

    from PySide6.QtWidgets import QMainWindow, QMessageBox

    from editor.engine.jobs import JobRunner
    from editor.engine.packs import RefusedImport
    from editor.ui.styleclip_import_flow import StyleClipImportFlow

    window = QMainWindow()
    qtbot.addWidget(window)
    pack = SimpleNamespace(name="tiny")
    flow = StyleClipImportFlow(window, JobRunner(), lambda: pack, lambda p: "key",
                               lambda: "")
    message = ("other_fs3.npy does not match this generator and CLIP (median cosine 0.10 "
               "over 8 channels re-measured at 4 images (min -0.17; medians on clean base "
               "images 0.12, as StyleCLIP's script measures 0.08); the same models give "
               "about 0.85, others about 0): it was made for another generator or with "
               "another CLIP. It was not imported")
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a[2]) or
                        QMessageBox.StandardButton.No)  # the old one-line question
    monkeypatch.setattr(QMessageBox, "exec", lambda box: asked.append(
        (box.text(), box.informativeText(), box.detailedText(),
         box.defaultButton() is box.button(QMessageBox.StandardButton.No))) or 0)
    flow._ask_import_anyway(pack, RefusedImport(message, "channels", "/x/other_fs3.npy",
                                                None))
    [(text, informative, details, no_default)] = asked
    assert text == ("other_fs3.npy does not fit these models: it was made for another "
                    "generator or CLIP.")
    assert informative.startswith("Import it into tiny anyway? ") and "cosine" not in \
        informative
    assert details == message + "."  # the CLI's words, whole
    assert no_default
    assert window.statusBar().currentMessage() == "other_fs3.npy was not imported into tiny"
