"""Loading rosinality checkpoints and our own safetensors format into one Generator."""

from __future__ import annotations

import argparse
import os
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from editor.core.checkpoints import generator_hash, load_generator, save_generator
from editor.core.errors import AtelierError, CheckpointError, IncompatibleModelError
from tests.conftest import make_tiny_generator


def _image(gen, seed=1):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(2, gen.z_dim, generator=g)
    with torch.no_grad():
        return gen.generate(z, psi=0.7)


def test_a_pytorch_checkpoint_named_safetensors_is_read_by_its_content(tmp_path,
                                                                       tiny_generator):
    # torch.load(path) reads any name ending in .safetensors as safetensors: such a file
    # (downloaded or imported under that name) raised safetensors' "header too large"
    path = tmp_path / "ffhq.safetensors"
    torch.save({"g_ema": tiny_generator.state_dict(), "latent_avg": tiny_generator.w_avg}, path)
    loaded = load_generator(path)
    assert loaded.source_format == "rosinality"
    assert torch.allclose(_image(loaded.generator), _image(tiny_generator), atol=1e-6)


def test_rosinality_checkpoint_loads_strictly_and_renders_the_same(tmp_path, tiny_generator):
    path = tmp_path / "g.pt"
    torch.save({"g_ema": tiny_generator.state_dict(), "latent_avg": tiny_generator.w_avg}, path)
    loaded = load_generator(path)
    assert loaded.source_format == "rosinality"
    assert loaded.generator.config.channels == tiny_generator.config.channels
    assert loaded.generator.config.resolution == 16
    assert torch.equal(loaded.generator.w_avg, tiny_generator.w_avg)
    assert torch.allclose(_image(loaded.generator), _image(tiny_generator), atol=1e-6)
    # every key of the file was used and every parameter came from the file
    assert set(torch.load(path)["g_ema"]) == set(loaded.generator.state_dict())


def test_weights_saved_from_a_multi_gpu_wrapper_load(tmp_path, tiny_generator):
    # every name began with 'module.': "missing weight 'input.input' needed to infer the
    # architecture" (helper-115)
    wrapped = {f"module.{k}": v for k, v in tiny_generator.state_dict().items()}
    for name, obj in (("g_ema.pt", {"g_ema": wrapped}), ("bare.pt", wrapped)):
        torch.save(obj, tmp_path / name)
        loaded = load_generator(tmp_path / name)
        assert loaded.generator.config.channels == tiny_generator.config.channels
        assert set(loaded.generator.state_dict()) == set(tiny_generator.state_dict())
        assert all(torch.equal(loaded.generator.state_dict()[k], v)
                   for k, v in tiny_generator.state_dict().items())


def test_nada_output_and_training_checkpoint_with_args(tmp_path, tiny_generator):
    opt = torch.optim.Adam(tiny_generator.parameters(), lr=0.002)
    nada = tmp_path / "nada.pt"
    torch.save({"g_ema": tiny_generator.state_dict(), "g_optim": opt.state_dict()}, nada)
    loaded = load_generator(nada)
    # no latent_avg in the file: it is estimated by sampling the mapping network
    assert torch.allclose(loaded.generator.w_avg, tiny_generator.mean_latent(), atol=1e-5)
    train = tmp_path / "train.pt"
    torch.save({"g": tiny_generator.state_dict(), "g_ema": tiny_generator.state_dict(),
                "args": argparse.Namespace(size=16, batch=4)}, train)
    assert load_generator(train).generator.config.resolution == 16


def test_e4e_style_checkpoint_decoder_is_found(tmp_path, tiny_generator):
    sd = {f"decoder.{k}": v for k, v in tiny_generator.state_dict().items()}
    sd["encoder.conv.weight"] = torch.zeros(3)
    path = tmp_path / "e4e.pt"
    torch.save({"state_dict": sd, "latent_avg": tiny_generator.w_avg.repeat(6, 1)}, path)
    loaded = load_generator(path)
    assert torch.allclose(loaded.generator.w_avg, tiny_generator.w_avg)


def test_larger_architecture_is_inferred_from_shapes(tmp_path):
    gen = make_tiny_generator(resolution=32, style_dim=48, n_mlp=3, channel_max=24)
    path = tmp_path / "g32.pt"
    torch.save({"g_ema": gen.state_dict(), "latent_avg": gen.w_avg}, path)
    cfg = load_generator(path).generator.config
    assert (cfg.resolution, cfg.style_dim, cfg.n_mlp) == (32, 48, 3)
    assert cfg.channels == gen.config.channels


def test_atelier_format_round_trip_fp32_and_fp16(tmp_path, tiny_generator):
    p32 = save_generator(tiny_generator, tmp_path / "g.safetensors", metadata={"name": "tiny"})
    loaded = load_generator(p32)
    assert loaded.source_format == "atelier"
    assert loaded.metadata == {"name": "tiny"}
    assert torch.equal(_image(loaded.generator), _image(tiny_generator))
    assert loaded.content_hash == load_generator(p32).content_hash
    p16 = save_generator(tiny_generator, tmp_path / "g16.safetensors", half=True)
    assert os.path.getsize(p16) < os.path.getsize(p32) * 0.6
    diff = (_image(load_generator(p16).generator) - _image(tiny_generator)).abs().max()
    assert diff < 0.05
    assert not list(tmp_path.glob("*.tmp*")), "atomic write left a temporary file"


def test_content_hash_is_format_independent(tmp_path, tiny_generator):
    pt = tmp_path / "g.pt"
    torch.save({"g_ema": tiny_generator.state_dict(), "latent_avg": tiny_generator.w_avg}, pt)
    st = save_generator(tiny_generator, tmp_path / "g.safetensors")
    assert load_generator(pt).content_hash == load_generator(st).content_hash
    other = make_tiny_generator(seed=5)
    st2 = save_generator(other, tmp_path / "other.safetensors")
    assert load_generator(st2).content_hash != load_generator(st).content_hash


def test_empty_truncated_and_garbage_files_give_clear_errors(tmp_path, tiny_generator):
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_generator(empty)

    good = tmp_path / "good.pt"
    torch.save({"g_ema": tiny_generator.state_dict()}, good)
    data = good.read_bytes()
    trunc = tmp_path / "truncated.pt"
    trunc.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated|corrupt|readable"):
        load_generator(trunc)

    garbage = tmp_path / "noise.pt"
    garbage.write_bytes(os.urandom(4096))
    with pytest.raises(CheckpointError):
        load_generator(garbage)

    with pytest.raises(CheckpointError, match="does not exist"):
        load_generator(tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match="folder"):
        load_generator(tmp_path)

    st = save_generator(tiny_generator, tmp_path / "g.safetensors")
    raw = st.read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(raw[: len(raw) - 100])
    with pytest.raises(CheckpointError):
        load_generator(tmp_path / "cut.safetensors")


def test_wrong_architecture_is_refused(tmp_path, tiny_generator):
    resnet_like = {"conv.weight": torch.zeros(8, 3, 3, 3), "fc.weight": torch.zeros(10, 8)}
    path = tmp_path / "resnet.pt"
    torch.save(resnet_like, path)
    with pytest.raises(CheckpointError, match="no StyleGAN2 generator"):
        load_generator(path)

    sd = tiny_generator.state_dict()
    sd["extra.weight"] = torch.zeros(3)
    path2 = tmp_path / "extra.pt"
    torch.save({"g_ema": sd}, path2)
    with pytest.raises(CheckpointError, match="unexpected"):
        load_generator(path2)

    sd = dict(tiny_generator.state_dict())
    del sd["convs.1.noise.weight"]
    path3 = tmp_path / "missing.pt"
    torch.save({"g_ema": sd}, path3)
    with pytest.raises(CheckpointError, match="missing"):
        load_generator(path3)

    sd = dict(tiny_generator.state_dict())
    sd["convs.1.conv.weight"] = torch.zeros(1, 5, 5, 3, 3)
    path4 = tmp_path / "shape.pt"
    torch.save({"g_ema": sd}, path4)
    with pytest.raises(CheckpointError, match="shape"):
        load_generator(path4)

    from safetensors.torch import save_file

    foreign = tmp_path / "foreign.safetensors"
    save_file({"a": torch.zeros(2)}, str(foreign))
    with pytest.raises(CheckpointError, match="not a Latent Atelier"):
        load_generator(foreign)
    assert issubclass(IncompatibleModelError, Exception)


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_torch_file_carrying_code_is_refused_and_nothing_runs(tmp_path, tiny_generator):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"g_ema": tiny_generator.state_dict(), "payload": _Evil(marker)}, path)
    with pytest.raises(CheckpointError, match="only weight files"):
        load_generator(path)
    assert not marker.exists()


def test_unsafe_pickle_message_names_the_object_not_torchs_advice(tmp_path, tiny_generator):
    path = tmp_path / "evil.pt"
    torch.save({"g_ema": tiny_generator.state_dict(), "payload": _Evil(tmp_path / "m")}, path)
    with pytest.raises(CheckpointError) as info:
        load_generator(path)
    assert "weights_only" not in str(info.value) and "system" in str(info.value)


def test_a_cut_torch_zip_is_called_truncated(tmp_path, tiny_generator):
    good = tmp_path / "good.pt"
    torch.save({"g_ema": tiny_generator.state_dict()}, good)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_generator(cut)


def _saved(tmp_path, name, state):
    path = tmp_path / name
    torch.save(state, path)
    return path


@pytest.mark.parametrize("change,match", [
    (lambda sd: sd.update({"conv1.conv.weight": torch.full_like(sd["conv1.conv.weight"],
                                                                float("nan"))}),
     "conv1.conv.weight holds NaN"),
    (lambda sd: sd.update({"style.1.weight": torch.full_like(sd["style.1.weight"],
                                                             float("inf"))}),
     "style.1.weight holds NaN or infinite"),
    (lambda sd: sd.update({"conv1.conv.weight": sd["conv1.conv.weight"].to(torch.complex64)}),
     "not floating-point"),
    (lambda sd: sd.update({"conv1.conv.weight": sd["conv1.conv.weight"].long()}),
     "not floating-point"),
    (lambda sd: sd.update({"conv1.conv.weight": "x"}), "is not a tensor"),
    (lambda sd: sd.update({"input.input": torch.zeros(16)}), "do not describe"),
    (lambda sd: sd.update({"style.1.weight": torch.zeros(32)}), "do not describe"),
    (lambda sd: sd.update({0: torch.zeros(1)}), "name is not text"),
    (lambda sd: sd.update({"conv1.conv.weight": sd["conv1.conv.weight"].to("meta")}),
     "holds no data"),
])
def test_damaged_or_forged_weights_are_refused_with_their_name(tmp_path, tiny_generator,
                                                               change, match):
    sd = dict(tiny_generator.state_dict())
    change(sd)
    with pytest.raises(CheckpointError, match=match):
        load_generator(_saved(tmp_path, "bad.pt", {"g_ema": sd}))


def test_a_state_dict_entry_that_is_not_a_dict_is_not_a_generator(tmp_path):
    for obj in ({"state_dict": [1, 2]}, {"state_dict": torch.zeros(3)}, {0: torch.zeros(1)}):
        with pytest.raises(CheckpointError, match="no StyleGAN2 generator"):
            load_generator(_saved(tmp_path, "odd.pt", obj))


def test_a_small_file_cannot_claim_a_huge_generator(tmp_path, monkeypatch):
    """A few kilobytes of tensors whose names and shapes claim a 4096 px generator with 512
    channels: refused from names and shapes before the architecture is built (a 16384 px
    claim used to take 12 GB before failing); beyond 4096 px, refused outright."""
    import editor.core.checkpoints as checkpoints

    def no_build(*_a, **_k):
        raise AssertionError("the generator was built before the file was checked")

    state = {"style.1.weight": torch.zeros(4, 4), "style.1.bias": torch.zeros(4),
             "input.input": torch.zeros(1, 512, 4, 4),
             "conv1.conv.weight": torch.zeros(1, 1, 1, 3, 3)}
    for k in range(10):
        state[f"to_rgbs.{k}.conv.weight"] = torch.zeros(1, 3, 1, 1, 1)
        state[f"convs.{2 * k}.conv.weight"] = torch.zeros(1, 512, 1, 3, 3)
    monkeypatch.setattr(checkpoints, "Generator", no_build)
    with pytest.raises(CheckpointError, match="shape|missing keys"):
        load_generator(_saved(tmp_path, "bomb.pt", {"g_ema": state}))
    for k in range(10, 12):
        state[f"to_rgbs.{k}.conv.weight"] = torch.zeros(1, 3, 1, 1, 1)
        state[f"convs.{2 * k}.conv.weight"] = torch.zeros(1, 512, 1, 3, 3)
    with pytest.raises(CheckpointError, match="above the largest supported"):
        load_generator(_saved(tmp_path, "bigger.pt", {"g_ema": state}))


def _safetensors_with(tmp_path, gen, name, **meta_changes):
    """Our generator file with some of its metadata replaced."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    src = save_generator(gen, tmp_path / "src.safetensors")
    with safe_open(str(src), framework="pt") as f:
        meta = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    meta.update(meta_changes.pop("meta", {}))
    tensors.update(meta_changes)
    path = tmp_path / name
    save_file(tensors, str(path), metadata=meta)
    return path


def test_damaged_metadata_in_our_format_is_a_checkpoint_error(tmp_path, tiny_generator):
    import json

    config = tiny_generator.config.to_dict()
    cases = [
        ({"meta": {"format_version": "abc"}}, "invalid format version"),
        ({"meta": {"config": json.dumps({**config, "resolution": 2**40})}}, "above the largest"),
        ({"meta": {"config": json.dumps({**config, "style_dim": 10**7,
                                          "channels": [10**5] * len(config["channels"])})}},
         "shape"),
        ({"meta": {"config": "[1, 2]"}}, "invalid generator config"),
        ({"w_avg": torch.zeros(5)}, "w_avg has shape"),
        ({"w_avg": torch.full((tiny_generator.w_dim,), float("nan"))}, "w_avg holds NaN"),
    ]
    for i, (change, match) in enumerate(cases):
        with pytest.raises(CheckpointError, match=match):
            load_generator(_safetensors_with(tmp_path, tiny_generator, f"{i}.safetensors",
                                             **change))
    # A config whose fields are of the wrong kind: each failed deep in the network with a
    # TypeError or RuntimeError (a traceback), and NaN lr_mlp built a NaN generator.
    for i, (field, value) in enumerate([("lr_mlp", "x"), ("n_mlp", "2"), ("z_dim", -5),
                                        ("conv_clamp", "x"), ("blur_kernel", "abc"),
                                        ("style_dim", "32"), ("lr_mlp", float("nan")),
                                        ("channels", [8, True, 8]), ("n_mlp", 2.5)]):
        path = _safetensors_with(tmp_path, tiny_generator, f"field{i}.safetensors",
                                 meta={"config": json.dumps({**config, field: value})})
        with pytest.raises(CheckpointError, match=f"invalid generator config \\({field} "):
            load_generator(path)
    # free-form metadata that is not JSON only informs: the model still loads
    path = _safetensors_with(tmp_path, tiny_generator, "user.safetensors",
                             meta={"user": "{bad"})
    assert load_generator(path).metadata == {}


def _flip_in_tensor_data(path):
    """Flip the lowest bit of the first byte of a tensor's data inside a torch zip file (a
    mantissa bit: the weights stay finite, only the member's CRC32 tells)."""
    import struct
    import zipfile

    with zipfile.ZipFile(path) as z:
        info = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    data = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26:
                                                    info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len
    data[start] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_bit_flip_inside_a_torch_zip_is_called_damaged(tmp_path, tiny_generator):
    from editor.core.model_files import identify_model_file

    path = tmp_path / "g.pt"
    torch.save({"g_ema": tiny_generator.state_dict()}, path)
    load_generator(path)  # intact: loads
    _flip_in_tensor_data(path)
    with pytest.raises(CheckpointError, match=r"damaged \(a checksum inside the file does "
                                               r"not match\): download or copy it again"):
        load_generator(path)
    with pytest.raises(CheckpointError, match="damaged") as info:
        identify_model_file(path)  # said once, not retried as CLIP weights
    assert "not a model file" not in str(info.value)


def _deflated_copy(src, dest):
    """`src`, a torch zip file, written again with its records compressed (PyTorch never
    compresses them; torch.load still reads such a file, unpacking each record whole)."""
    import zipfile

    with zipfile.ZipFile(src) as z_in, zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as z_out:
        for info in z_in.infolist():
            z_out.writestr(info.filename, z_in.read(info.filename))
    return dest


def test_a_torch_zip_with_compressed_records_is_refused_before_it_is_unpacked(
        tmp_path, tiny_generator, monkeypatch):
    # 2 MB of deflated zeros in a .pt became 2.5 GB in memory before the loader's size
    # check ran (helper-115): 20 MB would need 20 GB
    from editor.core.clip_model import read_weights
    from editor.core.model_files import identify_model_file
    from editor.engine.compose import EditError, holds_a_latent, load_wplus

    plain = tmp_path / "plain.pt"
    torch.save({"g_ema": tiny_generator.state_dict(), "zeros": torch.zeros(17 << 20)}, plain)
    bomb = _deflated_copy(plain, tmp_path / "bomb.pt")
    assert bomb.stat().st_size < plain.stat().st_size / 10
    latent = tmp_path / "latent.pt"
    torch.save(torch.zeros(17 << 20), latent)
    latent_bomb = _deflated_copy(latent, tmp_path / "latent_bomb.pt")

    def never(*a, **k):
        raise AssertionError("torch.load ran on a compressed record")

    monkeypatch.setattr(torch, "load", never)
    refused = r"bomb.pt holds compressed records that would unpack to 68 MB; PyTorch"
    with pytest.raises(CheckpointError, match=refused):
        load_generator(bomb)
    with pytest.raises(CheckpointError, match=refused) as info:
        identify_model_file(bomb)  # said once, not retried as CLIP weights
    assert "not a model file" not in str(info.value)
    with pytest.raises(AtelierError, match=refused):
        read_weights(bomb)
    with pytest.raises(EditError, match=refused):
        load_wplus(latent_bomb, 8, 512)
    assert not holds_a_latent(latent_bomb)
    # small compressed records (a TorchScript archive's code) are read as before
    monkeypatch.undo()
    small = tmp_path / "small.pt"
    torch.save({"g_ema": tiny_generator.state_dict()}, small)
    loaded = load_generator(_deflated_copy(small, tmp_path / "small_deflated.pt"))
    assert loaded.content_hash == load_generator(small).content_hash


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_a_zip_archive_holding_a_checkpoint_is_named_for_what_it_is(
        tmp_path, tiny_generator, monkeypatch, compression):
    # a zipped download was "truncated or corrupt ([enforce fail at inline_container.cc]
    # ...)" or, deflated past 64 MB, refused as records that "could fill the memory":
    # copying it again changed nothing (helper-149)
    monkeypatch.setattr("editor.core.checkpoints.MAX_UNPACKED_BYTES", 1000)
    inner = _saved(tmp_path, "ffhq.pt", {"g_ema": tiny_generator.state_dict()})
    for archive, members in ((tmp_path / "ffhq.zip", {"ffhq.pt": inner.read_bytes()}),
                             (tmp_path / "dataset.pt", {"00000.png": b"\x89PNG",
                                                        "dataset.json": b"{}"})):
        with zipfile.ZipFile(archive, "w", compression) as z:
            for name, data in members.items():
                z.writestr(name, data)
        with pytest.raises(CheckpointError, match="a zip archive of other files, not a "
                                                  "PyTorch checkpoint") as info:
            load_generator(archive)
        assert all(repr(name) in str(info.value) for name in members)
        assert "corrupt" not in str(info.value) and "memory" not in str(info.value)


def test_a_torchscript_archive_is_named_for_what_it_is_without_torchs_warning(tmp_path):
    # torch.load printed "dispatching to 'torch.jit.load'" on the terminal, then refused
    # the file: "truncated or corrupt (Cannot use weights_only=True with TorchScript
    # archives ... we changed the default value of weights_only ...)"
    import warnings

    path = tmp_path / "G-jit.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated
        torch.jit.script(torch.nn.Linear(3, 3)).save(str(path))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(CheckpointError, match="G-jit.pt is a TorchScript archive") as info:
            load_generator(path)
    assert "corrupt" not in str(info.value) and "weights_only" not in str(info.value)


@pytest.mark.parametrize("cut", [1000, 0.5], ids=["head-cut-1k", "tail-half-only"])
def test_a_damaged_pickle_is_called_corrupt_not_code(tmp_path, tiny_generator, cut):
    """A zip whose head was lost still opens (its directory is at the end), but torch reads
    garbage for its pickle. Since torch 2.6 every weights_only refusal mentions weights_only,
    garbage included: that must not be reported as code, nor pass on torch's advice."""
    good = tmp_path / "good.pt"
    torch.save({"g_ema": tiny_generator.state_dict()}, good)
    data = good.read_bytes()
    bad = tmp_path / "bad.pt"
    bad.write_bytes(data[cut if isinstance(cut, int) else int(len(data) * cut):])
    with pytest.raises(CheckpointError, match="truncated or corrupt: download or copy it "
                                              "again") as info:
        load_generator(bad)
    text = str(info.value)
    assert "never code" not in text and "other than tensors" not in text
    assert "weights_only" not in text and "False" not in text


# --------------------------------------------------------------------------- forged sizes


def _no_build(monkeypatch):
    import editor.core.checkpoints as checkpoints

    def no_build(*_a, **_k):
        raise AssertionError("the generator was built before the file was checked")

    monkeypatch.setattr(checkpoints, "Generator", no_build)


def test_tensors_that_claim_more_data_than_the_file_holds_are_refused_at_once(
        tmp_path, tiny_generator, monkeypatch):
    """Views that repeat one stored number (torch.zeros(1).expand(shape)) made a 10 KB file
    claim a 22 GB generator: a minute in isfinite, then the build ate the memory; one view of
    2**40 elements ended in a RuntimeError traceback. Refused before any per-element work."""
    import time

    from editor.core.generator import GeneratorConfig, state_shapes

    sd = dict(tiny_generator.state_dict())
    repeated = {k: torch.zeros(1).expand(v.shape) if v.ndim else v for k, v in sd.items()}
    # a generator's every weight a view of one 5 MB storage: 40 MB claimed
    shapes = state_shapes(GeneratorConfig(resolution=32, style_dim=32, n_mlp=2,
                                          channels=(384,) * 4))
    shared = torch.zeros(max(s.numel() for s in shapes.values()))
    one_storage = {k: shared[:s.numel()].view(s) for k, s in shapes.items()}
    cases = {
        "every-weight-one-number": {"g_ema": repeated},
        "one-view-of-2**40": {"g_ema": {**sd, "conv1.conv.weight":
                                        torch.zeros(1).expand(2**20, 2**20)}},
        "a-latent_avg-of-2**40": {"g_ema": sd, "latent_avg": torch.zeros(
            1, dtype=torch.float64).expand(2**20, 2**20)},
        "overlapping-rows": {"g_ema": {**sd, "style.1.weight":
                                       torch.zeros(64).as_strided((32, 32), (1, 1))}},
        "many-names-one-storage": {"g_ema": one_storage},
    }
    _no_build(monkeypatch)
    for case, obj in cases.items():
        started = time.perf_counter()
        with pytest.raises(CheckpointError, match="claims more data than the file holds: it "
                                                  "is damaged or made to exhaust memory"):
            load_generator(_saved(tmp_path, f"{case}.pt", obj))
        assert time.perf_counter() - started < 1, case


def test_views_and_shared_storages_of_a_real_file_still_load(tmp_path, tiny_generator):
    """What an honest file may hold: slices of one larger buffer, a transposed weight, a
    weight stored twice under two names (tied)."""
    sd = dict(tiny_generator.state_dict())
    flat = torch.cat([v.reshape(-1) for v in sd.values()])
    views, at = {}, 0
    for k, v in sd.items():
        views[k] = flat[at:at + v.numel()].view(v.shape)
        at += v.numel()
    views["style.1.weight"] = sd["style.1.weight"].t().contiguous().t()
    loaded = load_generator(_saved(tmp_path, "views.pt", {"g_ema": views,
                                                          "latent_avg": sd["style.1.bias"]}))
    assert torch.equal(loaded.generator.state_dict()["conv1.conv.weight"],
                       sd["conv1.conv.weight"])


@pytest.mark.parametrize("corrupt", ["storage-key", "string-length"])
def test_a_damaged_legacy_torch_file_is_called_corrupt(tmp_path, tiny_generator, corrupt):
    """One changed byte in a legacy (non-zip) torch.save file made torch.load raise an
    AssertionError ('storage key ... not found') or IndexError ('pop from empty list'):
    a traceback in the CLI, an 'unexpected error' in the window."""
    from editor.core.model_files import identify_model_file

    good = tmp_path / "good.pt"
    torch.save({"g_ema": tiny_generator.state_dict()}, good,
               _use_new_zipfile_serialization=False)
    data = bytearray(good.read_bytes())
    if corrupt == "storage-key":  # the first storage's key (a number) no longer matches
        at = data.index(b"X", data.index(b"FloatStorage\n")) + 5
        assert chr(data[at]).isdigit()
        data[at] = ord("0")
    else:  # the string 'storage' read as opcodes
        data[data.index(b"X\x07\x00\x00\x00storage") + 1] = 0
    bad = tmp_path / "bad.pt"
    bad.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="could not be read as a PyTorch checkpoint; it "
                                              "may be truncated or corrupt"):
        load_generator(bad)
    with pytest.raises(CheckpointError):
        identify_model_file(bad)


def test_a_reader_error_megabytes_long_is_cut_short(tmp_path):
    """A float literal of a million characters: the unpickler's message quoted all of it (a
    5 MB message took seconds to show in a dialog)."""
    from editor.core.model_files import identify_model_file

    path = tmp_path / "long.pkl"
    path.write_bytes(b"\x80\x02F" + b"A" * 100_000 + b"\n.")
    for read in (load_generator, identify_model_file):
        with pytest.raises(CheckpointError, match="corrupt") as info:
            read(path)
        assert len(str(info.value)) < 1000 and "A…" in str(info.value)


def test_refusing_a_pickle_shows_no_torch_protocol_warning(tmp_path):
    """torch.load(weights_only) warns of 'pickle protocol 4' on any such pickle; when a file
    is neither a generator nor CLIP weights that note only cluttered the user's terminal."""
    import pickle
    import warnings

    from editor.core.model_files import identify_model_file

    path = tmp_path / "other.pt"
    path.write_bytes(pickle.dumps({"a": 1}, protocol=4))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(CheckpointError):
            identify_model_file(path)
    assert not [w for w in caught if "pickle protocol" in str(w.message)]


def test_a_latent_avg_of_the_wrong_size_is_ignored_with_a_warning(tmp_path, tiny_generator,
                                                                  caplog):
    import logging

    path = _saved(tmp_path, "g.pt", {"g_ema": tiny_generator.state_dict(),
                                     "latent_avg": torch.zeros(7)})
    with caplog.at_level(logging.WARNING, logger="editor.core.checkpoints"):
        loaded = load_generator(path)
    assert loaded.metadata == {"has_latent_avg": False}
    assert any("latent_avg has shape (7,)" in r.getMessage() for r in caplog.records)


@pytest.mark.skipif(sys.platform != "linux", reason="Linux file names are any bytes")
def test_safetensors_files_whose_names_are_not_utf8_are_read(tmp_path, tiny_generator):
    # Legal on Linux (a Latin-1 "café"): safetensors writes such a name but will not read
    # one, and the generator, the CLIP and latents were called unreadable files
    from editor.core.clip_model import ClipModel
    from editor.engine.compose import holds_a_latent, load_wplus
    from tests.conftest import make_tiny_clip

    folder = os.fsdecode(bytes(tmp_path) + b"/caf\xe9")
    os.mkdir(folder)
    gen_path = save_generator(tiny_generator, Path(folder) / "g.safetensors")
    loaded = load_generator(gen_path)
    assert loaded.content_hash == generator_hash(tiny_generator)
    clip_path = make_tiny_clip().save(Path(folder) / "clip.safetensors")
    assert ClipModel.load(clip_path).embed_dim == make_tiny_clip().embed_dim
    g = tiny_generator
    latent = Path(folder) / "w.safetensors"
    save_file({"w": torch.zeros(1, g.n_latent, g.w_dim)}, str(latent))
    assert holds_a_latent(latent)
    assert load_wplus(latent, g.n_latent, g.w_dim).shape == (1, g.n_latent, g.w_dim)


@pytest.mark.skipif(sys.platform != "linux", reason="Linux file names are any bytes")
def test_a_read_error_under_a_name_that_is_not_utf8_is_not_chained_to_the_name(tmp_path):
    # the name was yielded inside the except block that caught its UnicodeEncodeError:
    # every error while reading came with it as context, and a logged traceback began
    # with "During handling of the above exception (UnicodeEncodeError …)"
    from editor.core.tensor_files import readable_name

    path = Path(os.fsdecode(bytes(tmp_path) + b"/caf\xe9.safetensors"))
    path.write_bytes(b"damaged")
    with pytest.raises(ValueError) as caught, readable_name(path) as name:
        assert Path(name).read_bytes() == b"damaged"
        raise ValueError("a damaged header")
    assert caught.value.__context__ is None
