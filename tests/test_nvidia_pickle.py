"""NVIDIA network pickles: read without running them, renamed into our layout, and refused
clearly when unsafe, broken or unsupported. The pickles are written by stand-ins that
reproduce NVIDIA's layout (tests/nvidia_layout.py), so no NVIDIA code is needed."""

from __future__ import annotations

import builtins
import os
import pickle
import sys

import numpy as np
import pytest
import torch

from editor.core.errors import CheckpointError, IncompatibleModelError, UnsafePickleError
from editor.core.generator import Generator
from editor.core.nvidia_pickle import is_nvidia_pickle, load_nvidia_pickle, read_pickle
from tests.conftest import make_tiny_generator
from tests.nvidia_layout import (
    Persistent,
    marker_source,
    nvidia_from_ours,
    nvidia_modules,
    snapshot,
    write_nvidia_pickle,
)

PROTOCOLS = [2, 3, 4, 5]


@pytest.fixture(scope="module")
def ours() -> Generator:
    gen = make_tiny_generator(resolution=16, style_dim=32, n_mlp=2, channel_max=32, seed=3)
    # a non-default mapping lr and an active clamp, so both must come through the file
    cfg = type(gen.config)(**{**gen.config.__dict__, "lr_mlp": 0.05, "conv_clamp": 0.5})
    clamped = Generator(cfg)
    clamped.load_state_dict(gen.state_dict())
    clamped.w_avg.copy_(gen.w_avg)
    return clamped.eval()


def _render(gen: Generator, batch: int = 2) -> torch.Tensor:
    z = torch.randn(batch, gen.z_dim, generator=torch.Generator().manual_seed(11))
    with torch.no_grad():
        return gen.generate(z, psi=0.7, noise_mode="const")


def _load_into_generator(path) -> Generator:
    config, state, w_avg = load_nvidia_pickle(path)
    gen = Generator(config)
    gen.load_state_dict(state, strict=True)
    gen.w_avg.copy_(w_avg)
    return gen.eval()


def _assert_no_stand_ins_loaded() -> None:
    leaked = [m for m in sys.modules if m.split(".")[0] in ("torch_utils", "dnnlib", "training")]
    assert leaked == []


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_nvidia_layout_loads_and_renders_like_the_original(tmp_path, ours, protocol):
    marker = tmp_path / "module_src_ran"
    path = write_nvidia_pickle(tmp_path / "net.pkl", snapshot(nvidia_from_ours(ours, 2)),
                               protocol=protocol, module_src=marker_source(marker))
    _assert_no_stand_ins_loaded()
    assert is_nvidia_pickle(path)

    config, state, w_avg = load_nvidia_pickle(path)
    assert config.channels == ours.config.channels
    assert (config.resolution, config.style_dim, config.n_mlp) == (16, 32, 2)
    assert config.lr_mlp == pytest.approx(0.05)
    assert config.conv_clamp == 0.5 and config.num_fp16_res == 2 and config.z_dim == 32
    assert set(state) == set(ours.state_dict())
    assert torch.equal(w_avg, ours.w_avg)

    loaded = _load_into_generator(path)
    assert (loaded.w_avg == ours.w_avg).all()
    for batch in (1, 3):  # the single-image and the batched conv paths
        assert torch.allclose(_render(loaded, batch), _render(ours, batch), atol=1e-4)
    assert not marker.exists(), "the pickle's embedded module source was executed"
    _assert_no_stand_ins_loaded()


def test_generator_without_w_avg_or_noise_still_loads(tmp_path, ours):
    g = nvidia_from_ours(ours)
    del g.mapping._buffers["w_avg"]  # trained with w_avg_beta=None
    path = write_nvidia_pickle(tmp_path / "net.pkl", snapshot(g))
    config, state, w_avg = load_nvidia_pickle(path)
    assert torch.allclose(w_avg, ours.mean_latent(), atol=1e-4)

    from tests.nvidia_layout import StandInGenerator

    quiet = StandInGenerator(z_dim=32, c_dim=0, w_dim=32, img_resolution=8, channels=(32, 32),
                             use_noise=False)
    config, state, _ = load_nvidia_pickle(
        write_nvidia_pickle(tmp_path / "quiet.pkl", snapshot(quiet)))
    assert all(state[k].item() == 0 for k in state if k.endswith("noise.weight"))
    Generator(config).load_state_dict(state, strict=True)


# --------------------------------------------------------------------------- unsafe pickles


class _RunsShell:
    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class _RunsEval:
    def __init__(self, code: str):
        self.code = code

    def __reduce__(self):
        return (builtins.eval, (self.code,))


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("kind", ["system", "eval"])
def test_code_in_the_pickle_is_refused_and_never_runs(tmp_path, protocol, kind):
    marker = tmp_path / "pwned"
    payload = (_RunsShell(f"touch {marker}") if kind == "system"
               else _RunsEval(f"open({str(marker)!r}, 'w').write('x')"))
    path = tmp_path / "evil.pkl"
    # hidden inside an otherwise plausible snapshot, as an attacker would
    path.write_bytes(pickle.dumps({"training_set_kwargs": {"x": payload}, "G_ema": None},
                                  protocol=protocol))
    with pytest.raises(UnsafePickleError) as err:
        load_nvidia_pickle(path)
    expected = f"{os.system.__module__}.system" if kind == "system" else "builtins.eval"
    assert expected in str(err.value) and "evil.pkl" in str(err.value)
    assert not marker.exists()


def test_the_networks_own_classes_are_refused(tmp_path):
    class Generator(torch.nn.Module):  # a plain (non-persistent) class, named as NVIDIA's
        pass

    Generator.__module__, Generator.__qualname__ = "training.networks", "Generator"
    with nvidia_modules():
        sys.modules["training.networks"].Generator = Generator
        data = pickle.dumps({"G_ema": Generator()}, protocol=4)
    path = tmp_path / "plain.pkl"
    path.write_bytes(data)
    with pytest.raises(UnsafePickleError, match=r"training\.networks\.Generator"):
        load_nvidia_pickle(path)


def test_a_pickle_cannot_rewrite_our_stand_ins(tmp_path):
    cases = {
        # GLOBAL dnnlib.util.EasyDict; BUILD (None, {'x': 1}): setattr on the class itself
        "class.pkl": b"\x80\x02cdnnlib.util\nEasyDict\nN}X\x01\x00\x00\x00xK\x01s\x86b.",
        # a persistent record with a BUILD on top of it
        "record.pkl": b"\x80\x02ctorch_utils.persistence\n_reconstruct_persistent_obj\n"
                      b"}(X\x04\x00\x00\x00typeX\x05\x00\x00\x00classu\x85R"
                      b"}X\x01\x00\x00\x00xK\x01sb.",
    }
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(CheckpointError, match="read-only|extra state"):
            read_pickle(path)


def test_a_pickle_cannot_rewrite_the_functions_it_is_allowed_to_call(tmp_path, ours):
    # GLOBAL torch._utils._rebuild_tensor_v2; BUILD (None, {'__defaults__': ({'neg':
    # True},)}): refused with the file, it had set the function's defaults for every later
    # load in the process, whose tensors then came back negated (helper-115)
    import editor.core.nvidia_pickle as nvidia_pickle

    defaults = nvidia_pickle._rebuild_tensor_v2.__defaults__
    state = pickle.dumps((None, {"__defaults__": ({"neg": True},)}), protocol=2)[2:-1]
    poison = tmp_path / "poison.pkl"
    poison.write_bytes(b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n" + state + b"b0}.")
    with pytest.raises(CheckpointError, match="sets attributes of _rebuild_tensor_v2"):
        read_pickle(poison)
    assert nvidia_pickle._rebuild_tensor_v2.__defaults__ == defaults
    good = write_nvidia_pickle(tmp_path / "good.pkl", snapshot(nvidia_from_ours(ours)))
    assert torch.equal(_render(_load_into_generator(good)), _render(ours))


def test_a_tensor_grown_by_its_own_build_anywhere_in_the_pickle_is_refused(tmp_path, ours):
    # a BUILD's 4-tuple state makes torch.Tensor.__setstate__ call set_() with a shape of
    # its own, past the size check of our _rebuild_tensor_v2; only G_ema's tensors were
    # checked afterwards, so one in D claimed 20 GB unseen (helper-115)
    import collections

    class Grown:
        def __reduce__(self):
            small = torch.zeros(4)
            storage = small._typed_storage()
            return (torch._utils._rebuild_tensor_v2,
                    (storage, 0, (4,), (1,), False, collections.OrderedDict()),
                    (storage, 0, (1 << 26,), (1,)))  # 256 MB of float32, reserved only

    path = write_nvidia_pickle(tmp_path / "grown.pkl",
                               snapshot(nvidia_from_ours(ours), D=Grown()))
    with pytest.raises(CheckpointError, match="claims more data than the file holds"):
        load_nvidia_pickle(path)


# --------------------------------------------------------------------------- broken files


def test_empty_truncated_and_garbage_files_give_clear_errors(tmp_path, ours):
    good = write_nvidia_pickle(tmp_path / "good.pkl", snapshot(nvidia_from_ours(ours)))
    data = good.read_bytes()

    empty = tmp_path / "empty.pkl"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_nvidia_pickle(empty)
    assert not is_nvidia_pickle(empty)

    for cut in (len(data) // 2, len(data) - 1, 5):
        truncated = tmp_path / f"cut{cut}.pkl"
        truncated.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match="truncated"):
            load_nvidia_pickle(truncated)

    garbage = tmp_path / "garbage.pkl"
    garbage.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(CheckpointError, match="not a pickle|corrupt"):
        load_nvidia_pickle(garbage)
    assert not is_nvidia_pickle(garbage)

    with pytest.raises(CheckpointError, match="does-not-exist"):
        load_nvidia_pickle(tmp_path / "does-not-exist.pkl")


def test_pickles_without_a_usable_g_ema(tmp_path, ours):
    cases = {
        "list.pkl": [1, 2, 3],
        "noema.pkl": {"G": nvidia_from_ours(ours)},
        "tensor.pkl": {"G_ema": torch.zeros(3)},
    }
    messages = {"list.pkl": "list", "noema.pkl": "no 'G_ema'", "tensor.pkl": "Tensor"}
    for name, obj in cases.items():
        path = write_nvidia_pickle(tmp_path / name, obj)
        with pytest.raises(CheckpointError, match=messages[name]):
            load_nvidia_pickle(path)


def test_legacy_torch_save_files_are_left_to_torch_load(tmp_path, ours):
    legacy = tmp_path / "legacy.pt"
    torch.save({"g_ema": ours.state_dict()}, legacy, _use_new_zipfile_serialization=False)
    assert not is_nvidia_pickle(legacy)
    zipped = tmp_path / "zip.pt"
    torch.save({"g_ema": ours.state_dict()}, zipped)
    assert not is_nvidia_pickle(zipped)


# --------------------------------------------------------------------------- unsupported


def test_stylegan3_and_conditional_generators_are_incompatible(tmp_path, ours):
    g3 = nvidia_from_ours(ours)
    syn = g3.synthesis
    for name in list(syn._modules):
        del syn._modules[name]
    syn.input = Persistent()
    syn.input.affine = Persistent()
    syn.L0_36_32 = Persistent()
    path = write_nvidia_pickle(tmp_path / "sg3.pkl", snapshot(g3))
    with pytest.raises(IncompatibleModelError, match="StyleGAN3 pickles are not supported"):
        load_nvidia_pickle(path)

    from tests.nvidia_layout import StandInGenerator

    cond = StandInGenerator(z_dim=32, c_dim=4, w_dim=32, img_resolution=8, channels=(32, 32))
    path = write_nvidia_pickle(tmp_path / "cond.pkl", snapshot(cond))
    with pytest.raises(IncompatibleModelError, match="conditional"):
        load_nvidia_pickle(path)

    tf = tmp_path / "tf.pkl"  # TensorFlow-era pickles hold dnnlib.tflib Network objects
    tf.write_bytes(b"\x80\x03cdnnlib.tflib.network\nNetwork\n)\x81.")
    with pytest.raises(IncompatibleModelError, match="TensorFlow"):
        load_nvidia_pickle(tf)

    resnet = StandInGenerator(z_dim=32, c_dim=0, w_dim=32, img_resolution=8, channels=(32, 32),
                              architecture="resnet")
    path = write_nvidia_pickle(tmp_path / "resnet.pkl", snapshot(resnet))
    with pytest.raises(IncompatibleModelError, match="'resnet'"):
        load_nvidia_pickle(path)


def test_a_generator_with_weights_stylegan2_has_not_is_refused(tmp_path, ours):
    # modified code's extra layer or scale was dropped and the network drew another
    # picture, silently (helper-149)
    from tests.nvidia_layout import FullyConnectedLayer

    added = nvidia_from_ours(ours)
    added.synthesis.b8.attn = FullyConnectedLayer(32, 32)
    scaled = nvidia_from_ours(ours)
    scaled.synthesis.b16.conv1.channel_scale = torch.nn.Parameter(torch.full((32,), 3.0))
    for g, extra in ((added, "synthesis.b8.attn.weight"),
                     (scaled, "synthesis.b16.conv1.channel_scale")):
        path = write_nvidia_pickle(tmp_path / "modified.pkl", snapshot(g))
        with pytest.raises(IncompatibleModelError, match="StyleGAN2 has no place for") as info:
            load_nvidia_pickle(path)
        assert extra in str(info.value)


def test_shapes_that_disagree_with_the_stored_kwargs_are_reported(tmp_path, ours):
    g = nvidia_from_ours(ours)
    g._init_kwargs["w_dim"] = 64
    g.w_dim = 64
    path = write_nvidia_pickle(tmp_path / "liar.pkl", snapshot(g))
    with pytest.raises(CheckpointError, match="w_dim=64 disagrees"):
        load_nvidia_pickle(path)

    g = nvidia_from_ours(ours)
    g.synthesis.b8.resample_filter.mul_(2)
    path = write_nvidia_pickle(tmp_path / "filter.pkl", snapshot(g))
    with pytest.raises(IncompatibleModelError, match=r"\[1,3,3,1\]"):
        load_nvidia_pickle(path)


# --------------------------------------------------------------------------- numpy


@pytest.mark.parametrize("protocol", [2, 5])
def test_numpy_arrays_and_scalars_in_the_snapshot_load(tmp_path, ours, protocol):
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    snap = snapshot(nvidia_from_ours(ours))
    snap["training_set_kwargs"] = {"mean": arr, "scale": np.float64(0.25), "n": np.int64(7)}
    path = write_nvidia_pickle(tmp_path / "np.pkl", snap, protocol=protocol)
    data = read_pickle(path)
    kwargs = data["training_set_kwargs"]
    np.testing.assert_array_equal(kwargs["mean"], arr)
    assert kwargs["scale"] == 0.25 and kwargs["n"] == 7
    # the stand-ins also store numpy scalars (weight_gain, act_gain) in module state
    assert isinstance(data["G_ema"].modules["mapping"].modules["fc0"].state["weight_gain"],
                      np.floating)
    config, _, _ = load_nvidia_pickle(path)
    assert config.resolution == 16


def test_nan_weights_in_a_pickle_are_refused_with_their_name(tmp_path, ours):
    from editor.core.checkpoints import load_generator
    from editor.core.errors import CheckpointError

    with torch.no_grad():
        ours.convs[0].conv.weight.fill_(float("nan"))
    path = write_nvidia_pickle(tmp_path / "nan.pkl", snapshot(nvidia_from_ours(ours)))
    with pytest.raises(CheckpointError, match="convs.0.conv.weight holds NaN"):
        load_generator(path)


# --------------------------------------------------------------------------- damaged numpy data


class _DtypeWithForgedSize:
    """numpy.dtype('f4') whose BUILD state claims a huge element size: numpy takes it, and
    reading an array of that dtype crashed the process (a damaged file does it too)."""

    def __reduce__(self):
        return (np.dtype, ("f4", False, True), (3, "<", None, None, None, 1313754637, -1, 0))


class _ArrayOfForgedDtype:
    def __reduce__(self):
        return (np._core.multiarray._reconstruct, (np.ndarray, (0,), b"b"),
                (1, (16,), _DtypeWithForgedSize(), False, bytes(64)))


def _read_in_a_child(path, limit_bytes: int | None = None):
    """read_pickle in a subprocess: a crash or a kill is a failed test, not a lost run.
    limit_bytes caps the memory it may take beyond what it holds once torch is loaded."""
    import subprocess

    code = ("import resource\n"
            "from editor.core.nvidia_pickle import read_pickle\n"
            "from editor.core.errors import AtelierError\n"
            "_, hard = resource.getrlimit(resource.RLIMIT_AS)\n"
            "used = int(open('/proc/self/statm').read().split()[0]) * resource.getpagesize()\n"
            f"if {limit_bytes!r}: resource.setrlimit(resource.RLIMIT_AS, "
            f"(used + {limit_bytes!r}, hard))\n"
            f"try:\n    read_pickle({str(path)!r})\nexcept AtelierError as e:\n"
            "    print('refused:', e)\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)


def test_a_pickled_dtype_with_a_forged_state_is_refused_not_crashing(tmp_path):
    path = tmp_path / "forged.pkl"
    path.write_bytes(pickle.dumps({"G_ema": [_ArrayOfForgedDtype()]}, protocol=3))
    done = _read_in_a_child(path)
    assert done.returncode == 0, done.stderr[-500:]
    assert "refused:" in done.stdout and "unexpected state" in done.stdout


def test_a_damaged_memo_index_is_refused_before_the_unpickler_allocates_for_it(tmp_path):
    """LONG_BINPUT 2**29: the C unpickler would grow its memo to 2**30 entries (8 GB)."""
    import struct

    path = tmp_path / "memo.pkl"
    path.write_bytes(b"\x80\x03]r" + struct.pack("<I", 2**29) + b".")
    done = _read_in_a_child(path, limit_bytes=2 * 2**30)
    assert done.returncode == 0, done.stderr[-500:]
    assert "refused:" in done.stdout and "memo index" in done.stdout


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_arrays_of_every_plain_kind_and_byte_order_read_back_exactly(tmp_path, protocol):
    arrays = [(np.arange(6) % 4).astype(d).reshape(2, 3) for d in
              ("<f4", ">f8", "<f2", "i8", ">i4", "u1", "?", "<c8")]
    arrays.append(np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)))
    path = tmp_path / "arrays.pkl"
    path.write_bytes(pickle.dumps({"a": arrays, "s": np.float32(2.5)}, protocol=protocol))
    got = read_pickle(path)
    for want, have in zip(arrays, got["a"], strict=True):  # (numpy itself reads some
        # big-endian arrays back in native order: the same numbers)
        assert have.dtype.newbyteorder("=") == want.dtype.newbyteorder("=")
        assert np.array_equal(have, want)
    assert got["s"] == np.float32(2.5)
    assert type(pickle.loads(pickle.dumps(got["a"][0]))) is np.ndarray  # kept, re-pickled
    object_array = tmp_path / "objects.pkl"
    object_array.write_bytes(pickle.dumps(np.array([1, "x"], dtype=object), protocol=protocol))
    with pytest.raises(CheckpointError, match="not a plain number type"):
        read_pickle(object_array)


# --------------------------------------------------------------------------- forged sizes


class _Oversized:
    """Pickles as a float tensor of `numel` elements over a storage of 4: torch's rebuilder
    grows the storage to fit (memory nothing fills) instead of refusing it."""

    def __init__(self, numel):
        self.numel = numel

    def __reduce_ex__(self, protocol):
        from collections import OrderedDict

        storage = torch.storage.TypedStorage(wrap_storage=torch.zeros(4).untyped_storage(),
                                             dtype=torch.float32, _internal=True)
        return (torch._utils._rebuild_tensor_v2,
                (storage, 0, (self.numel,), (1,), False, OrderedDict()))


def test_tensors_that_claim_more_data_than_the_pickle_holds_are_refused(tmp_path, ours):
    """A pickle's tensors are views of the storages it carries: a view that repeats one
    number over a weight's shape (stride 0) or reaches past its storage claimed a generator
    the file does not hold (made contiguous, then built, it could take all the memory)."""
    import time

    from editor.core.checkpoints import load_generator

    g = nvidia_from_ours(ours)
    const = g.synthesis.b4.const
    g.synthesis.b4.const = torch.nn.Parameter(torch.zeros(1).expand(const.shape),
                                              requires_grad=False)
    repeated = write_nvidia_pickle(tmp_path / "repeated.pkl", snapshot(g))
    oversized = write_nvidia_pickle(tmp_path / "oversized.pkl",
                                    snapshot(nvidia_from_ours(ours), extra=_Oversized(2**24)))
    for path in (repeated, oversized):
        started = time.perf_counter()
        with pytest.raises(CheckpointError, match="claims more data than the file holds: it "
                                                  "is damaged or made to exhaust memory"):
            load_generator(path)
        assert time.perf_counter() - started < 2


def test_the_reason_a_pickle_is_unreadable_is_cut_short(tmp_path):
    """A float literal of 100,000 characters: the message quoted all of it."""
    path = tmp_path / "long.pkl"
    path.write_bytes(b"\x80\x02F" + b"1x" * 50_000 + b"\n.")
    with pytest.raises(CheckpointError, match="not a pickle at all") as info:
        read_pickle(path)
    assert len(str(info.value)) < 400 and str(info.value).endswith("…)")


def test_garbage_read_as_a_pickle_is_not_quoted_back_as_bytes(tmp_path):
    # the window's box showed four lines of "(invalid literal for int() with base 10:
    # b'arbageFqt\xa7q\xe4E…')"
    path = tmp_path / "corrupt.pt"
    path.write_bytes(b"\x80\x02I" + b"garbageFqt\xa7q\xe4E" * 30 + b"\n.")
    with pytest.raises(CheckpointError) as info:
        read_pickle(path)
    message = str(info.value)
    assert message == ("corrupt.pt could not be read as a network pickle (NVIDIA's .pkl "
                       "format); it may be truncated, corrupt or not a pickle at all")
