"""ClipModel: the image path against open_clip's own preprocessing, gradients, prompt
ensembles and their cache, loading from tags/files/configs, and content hashes.

Every model is a tiny open_clip config with seeded random weights; nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pickle
import socket
import subprocess
import sys
import urllib.error
import warnings
import zipfile

import huggingface_hub.constants
import open_clip
import pytest
import torch
from open_clip.transform import PreprocessCfg, image_transform_v2
from open_clip.transformer import QuickGELU
from PIL import Image

from editor.core.clip_model import ClipModel, read_weights
from editor.core.errors import ClipError
from editor.core.prompt_templates import IMAGENET_TEMPLATES, PLAIN_TEMPLATE

TEXT_CFG = {"context_length": 32, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2}
TINY_VIT = {"embed_dim": 32, "text_cfg": TEXT_CFG,
            "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8,
                           "head_width": 32}}
# The demo CLIP's tower type (ModifiedResNet), scaled down.
TINY_RN = {"embed_dim": 32, "text_cfg": TEXT_CFG,
           "vision_cfg": {"image_size": 64, "layers": [1, 1, 1, 1], "width": 8,
                          "head_width": 32}}
TINY_ARCH = "atelier-test-tiny-vit"


def make_clip(config: dict = TINY_VIT, seed: int = 0, **kwargs) -> ClipModel:
    torch.manual_seed(seed)
    return ClipModel.from_config(config, name="tiny", **kwargs)


def smooth_images(batch: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    """Images in [-1, 1] with structure at a few scales, like generator output."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(batch, 3, 6, 6, generator=g)
    fine = torch.rand(batch, 3, h, w, generator=g)
    x = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear")
    return (0.8 * x + 0.2 * fine) * 2 - 1


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    return ((x + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)


@pytest.fixture
def clip() -> ClipModel:
    return make_clip()


@pytest.fixture
def tiny_arch(monkeypatch):
    """TINY_VIT registered as an open_clip architecture name, for this test only."""
    import open_clip.factory

    monkeypatch.setitem(open_clip.factory._MODEL_CONFIGS, TINY_ARCH, dict(TINY_VIT))
    return TINY_ARCH


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to reach the network fails at once, whichever path open_clip takes."""
    import open_clip.pretrained

    def refuse(*args, **kwargs):
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(open_clip.pretrained.urllib.request, "urlopen", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


# --------------------------------------------------------------------------- templates


def test_templates_are_the_clip_notebook_list_without_many():
    notebook = [t("{}") for t in open_clip.OPENAI_IMAGENET_TEMPLATES]
    assert len(IMAGENET_TEMPLATES) == 79
    assert list(IMAGENET_TEMPLATES) == [t for t in notebook if t != "a photo of many {}."]
    assert PLAIN_TEMPLATE == ("{}",)


# --------------------------------------------------------------------------- image path


@pytest.mark.parametrize("config", [TINY_VIT, TINY_RN], ids=["vit", "resnet"])
@pytest.mark.parametrize("size", [(1.0, 1.0), (2.0, 2.0), (1.5, 2.5), (0.625, 0.625)],
                         ids=["same", "down", "non-square", "up"])
def test_image_path_matches_open_clip_preprocess(config, size):
    clip = make_clip(config)
    s = clip.image_size[0]
    h, w = round(size[0] * s), round(size[1] * s)
    u8 = to_uint8(smooth_images(2, h, w))
    x = u8.float() / 127.5 - 1  # the same pixels PIL sees, so only resizing can differ

    pp = PreprocessCfg(**open_clip.get_model_preprocess_cfg(clip.model))
    transform = image_transform_v2(pp, is_train=False)
    ref = torch.stack([transform(Image.fromarray(u.permute(1, 2, 0).numpy())) for u in u8])
    ours = clip.preprocess_images(x)
    assert ours.shape == ref.shape == (2, 3, s, s)
    # PIL rounds to uint8 after resizing (and between its two passes when enlarging).
    step = 1 / 255 / min(clip.preprocess.std)
    tolerance = 1e-5 if size == (1.0, 1.0) else 3 * step if size[0] >= 1 else 6 * step
    assert (ours - ref).abs().max().item() < tolerance

    with torch.no_grad():
        e_ours = clip.encode_images(x)
        e_ref = clip.model.encode_image(ref, normalize=True)
    cosine = (e_ours * e_ref).sum(-1)
    assert cosine.min().item() > 0.999


def test_gradients_flow_to_the_image(clip):
    x = smooth_images(2, 48, 48).requires_grad_(True)
    target = clip.text_embedding("a smiling face")
    loss = (1 - clip.encode_images(x) @ target).sum()
    loss.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert x.grad.abs().sum() > 0
    assert all(p.grad is None for p in clip.model.parameters())


def test_image_embeddings_are_unit_vectors_unless_asked(clip):
    x = smooth_images(3, 40, 40)
    with torch.no_grad():
        e = clip.encode_images(x)
        raw = clip.encode_images(x, normalize=False)
    assert e.shape == (3, clip.embed_dim)
    assert torch.allclose(e.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert torch.allclose(raw / raw.norm(dim=-1, keepdim=True), e, atol=1e-5)


def test_wrong_image_shape_is_a_clip_error(clip):
    with pytest.raises(ClipError, match="batch, 3"):
        clip.encode_images(torch.zeros(3, 32, 32))


def test_model_is_frozen_and_in_eval_mode(clip):
    assert not clip.model.training
    assert not any(p.requires_grad for p in clip.model.parameters())
    assert clip.device == torch.device("cpu")
    assert clip.to("cpu") is clip
    assert clip.name == "tiny" and clip.context_length == 32 and clip.image_size == (32, 32)


# --------------------------------------------------------------------------- text


def test_ensemble_is_unit_norm_and_matches_a_manual_computation(clip):
    templates = IMAGENET_TEMPLATES[:7]
    got = clip.text_embedding("face with glasses", templates)

    tokens = open_clip.SimpleTokenizer(context_length=32)(
        [t.format("face with glasses") for t in templates])
    with torch.no_grad():
        each = clip.model.encode_text(tokens)
    each = each / each.norm(dim=-1, keepdim=True)
    manual = each.mean(0) / each.mean(0).norm()
    assert got.shape == (clip.embed_dim,)
    assert torch.allclose(got.norm(), torch.tensor(1.0), atol=1e-6)
    assert torch.allclose(got, manual, atol=1e-6)
    assert not got.requires_grad


def test_plain_template_is_the_prompt_itself(clip):
    got = clip.text_embedding("a blonde woman", PLAIN_TEMPLATE)
    with torch.no_grad():
        direct = clip.encode_text(["a blonde woman"])[0]
    assert torch.allclose(got, direct, atol=1e-6)


def test_text_embeddings_are_cached(clip, monkeypatch):
    calls = []
    encode = clip.encode_text

    def counting(prompts, normalize=True):
        calls.append(len(prompts))
        return encode(prompts, normalize=normalize)

    monkeypatch.setattr(clip, "encode_text", counting)
    first = clip.text_embedding("smiling face")
    assert calls == [79]
    assert clip.text_embedding("smiling face") is first
    assert clip.text_embedding("  smiling face ") is first  # surrounding spaces don't matter
    assert clip.text_embedding("smiling face", None) is first  # None: the default ensemble
    assert clip.text_embedding("smiling face", list(IMAGENET_TEMPLATES)) is first
    assert calls == [79]
    clip.text_embedding("smiling face", PLAIN_TEMPLATE)  # other templates: other entry
    assert calls == [79, 1]
    clip.clear_text_cache()
    assert clip.text_embedding("smiling face") is not first
    assert calls == [79, 1, 79]


def test_text_cache_drops_the_least_recently_used(clip, monkeypatch):
    monkeypatch.setattr(clip, "_text_cache_size", 2)
    a = clip.text_embedding("a", PLAIN_TEMPLATE)
    clip.text_embedding("b", PLAIN_TEMPLATE)
    assert clip.text_embedding("a", PLAIN_TEMPLATE) is a  # 'a' is now the most recent
    clip.text_embedding("c", PLAIN_TEMPLATE)  # evicts 'b'
    assert clip.text_embedding("a", PLAIN_TEMPLATE) is a
    assert len(clip._text_cache) == 2


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_prompt_is_a_clear_error(clip, text):
    with pytest.raises(ClipError, match="prompt is empty"):
        clip.text_embedding(text)
    with pytest.raises(ClipError, match="prompt is empty"):
        clip.encode_text(["fine", text])


def test_bad_templates_and_empty_prompt_lists_are_errors(clip):
    with pytest.raises(ClipError, match="no prompts"):
        clip.encode_text([])
    with pytest.raises(ClipError, match="no '\\{\\}'"):
        clip.text_embedding("face", ["a photo of a face"])
    with pytest.raises(ClipError, match="no prompt templates"):
        clip.text_embedding("face", [])


# --------------------------------------------------------------------------- pretrained tags


def test_pretrained_weights_not_cached_fail_without_touching_the_network(tmp_path, monkeypatch):
    import open_clip.pretrained

    def forbidden(*args, **kwargs):
        raise AssertionError("tried to download")

    monkeypatch.setattr(open_clip.pretrained.urllib.request, "urlopen", forbidden)
    monkeypatch.setattr(open_clip.pretrained, "hf_hub_download", forbidden)
    with pytest.raises(ClipError, match="not available locally") as info:
        ClipModel.from_pretrained("ViT-B-32", "openai", cache_dir=tmp_path)
    assert "import it as a local CLIP checkpoint" in str(info.value)
    # the zoo's entry named, to copy as it stands
    assert "`atelier models download clip-vit-b-32-openai`" in str(info.value)


def test_pretrained_download_offline_fails_quickly_with_clip_error(tmp_path, no_network):
    with pytest.raises(ClipError, match="could not be downloaded") as info:
        ClipModel.from_pretrained("ViT-B-32", "openai", cache_dir=tmp_path, download=True)
    assert "import it as a local CLIP checkpoint" in str(info.value)
    assert not any(tmp_path.rglob("*.bin")) and not any(tmp_path.rglob("*.safetensors"))


def _unresolvable(monkeypatch) -> list[str]:
    """Host names fail to resolve, as offline; the names asked are listed."""
    asked: list[str] = []

    def fail(host, *args, **kwargs):
        asked.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                 "ALL_PROXY", "HF_ENDPOINT", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    return asked


def test_a_download_offline_stops_at_the_failed_name_look_up(tmp_path, monkeypatch):
    # with no network (a name that does not resolve) the Hugging Face client retried with
    # back-off: `atelier precompute --download` took 57 s to say it could not download
    import open_clip.pretrained

    def forbidden(*args, **kwargs):
        raise AssertionError("went on to the download")

    asked = _unresolvable(monkeypatch)
    monkeypatch.setattr(open_clip.pretrained, "hf_hub_download", forbidden)
    with pytest.raises(ClipError, match="could not be downloaded") as info:
        ClipModel.from_pretrained("ViT-B-32", "openai", cache_dir=tmp_path, download=True)
    assert asked == ["huggingface.co"]
    assert "the host name huggingface.co could not be looked up" in str(info.value)
    assert "import it as a local CLIP checkpoint" in str(info.value)


def test_behind_a_proxy_the_proxy_looks_the_name_up(tmp_path, monkeypatch):
    import open_clip.pretrained

    tried = []

    def refused(*args, **kwargs):
        tried.append(args)
        raise OSError("proxy refused")

    asked = _unresolvable(monkeypatch)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setattr(open_clip.pretrained, "hf_hub_download", refused)
    with pytest.raises(ClipError, match="proxy refused"):
        ClipModel.from_pretrained("ViT-B-32", "openai", cache_dir=tmp_path, download=True)
    assert asked == [] and tried  # the download itself was tried


@pytest.mark.parametrize("env", [
    {"no_proxy": "localhost,127.0.0.1"},  # set on many machines that have no proxy
    {"http_proxy": "http://proxy.example:3128"},  # not used for an https download
    {"HTTPS_PROXY": "http://proxy.example:3128", "NO_PROXY": ".huggingface.co"},
])
def test_a_download_not_through_a_proxy_looks_the_name_up(tmp_path, monkeypatch, env):
    # any proxy variable, no_proxy alone too, skipped the look-up: offline, the client
    # retried the host for a minute again
    import open_clip.pretrained

    def forbidden(*args, **kwargs):
        raise AssertionError("went on to the download")

    asked = _unresolvable(monkeypatch)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(open_clip.pretrained, "hf_hub_download", forbidden)
    with pytest.raises(ClipError, match="could not be looked up"):
        ClipModel.from_pretrained("ViT-B-32", "openai", cache_dir=tmp_path, download=True)
    assert asked == ["huggingface.co"]


def test_missing_openai_weights_say_to_import_them_with_quickgelu(tmp_path, no_network):
    # "import it as a local CLIP checkpoint for ViT-B-32": done so, the import found
    # ViT-B-32 from the shapes and loaded OpenAI's weights with GELU (other embeddings).
    for download in (False, True):
        with pytest.raises(ClipError, match="not available locally") as info:
            ClipModel.from_pretrained("ViT-B-32", "openai", cache_dir=tmp_path,
                                      download=download)
        assert "checkpoint for ViT-B-32-quickgelu (atelier models import FILE --clip-arch " \
               "ViT-B-32-quickgelu)" in str(info.value)
    # weights trained with GELU are imported as the architecture they fit
    tag = next(t for t in open_clip.list_pretrained_tags_by_model("ViT-B-32")
               if not open_clip.get_pretrained_cfg("ViT-B-32", t).get("quick_gelu"))
    with pytest.raises(ClipError, match="not available locally") as info:
        ClipModel.from_pretrained("ViT-B-32", tag, cache_dir=tmp_path)
    assert "checkpoint for ViT-B-32." in str(info.value) and "quickgelu" not in str(info.value)


def test_unknown_tag_or_architecture_is_a_clip_error():
    with pytest.raises(ClipError, match="no pretrained tag 'nonsense'.*openai"):
        ClipModel.from_pretrained("ViT-B-32", "nonsense")
    # the architecture is what is wrong ("no pretrained tag 'openai' ... (tags: none)")
    with pytest.raises(ClipError, match="unknown CLIP architecture 'No-Such-Arch'"):
        ClipModel.from_pretrained("No-Such-Arch", "openai")
    with pytest.raises(ClipError, match="unknown CLIP architecture"):
        ClipModel.from_checkpoint("No-Such-Arch", __file__)


def test_openai_tags_select_quick_gelu():
    # open_clip's registry marks OpenAI's weights as trained with QuickGELU.
    assert open_clip.get_pretrained_cfg("ViT-B-32", "openai").get("quick_gelu") is True


def test_cached_tag_loads_with_the_tags_activation_and_preprocessing(tmp_path, tiny_arch,
                                                                     monkeypatch, no_network):
    import open_clip.pretrained

    source = make_clip({**TINY_VIT, "quick_gelu": True}, seed=3)
    path = tmp_path / "weights.safetensors"
    source.save(path)
    mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    tags = {"openai_like": {"file": str(path), "quick_gelu": True, "mean": mean, "std": std}}
    monkeypatch.setitem(open_clip.pretrained._PRETRAINED, tiny_arch, tags)

    clip = ClipModel.from_pretrained(tiny_arch, "openai-like")
    assert clip.name == f"{tiny_arch}/openai-like"
    assert clip.config["quick_gelu"] is True
    assert any(isinstance(m, QuickGELU) for m in clip.model.modules())
    assert clip.preprocess.mean == mean and clip.preprocess.std == std
    tokens = ["a photo of a face"]
    assert torch.allclose(clip.encode_text(tokens), source.encode_text(tokens), atol=1e-6)
    plain = make_clip(TINY_VIT)
    assert not any(isinstance(m, QuickGELU) for m in plain.model.modules())


# --------------------------------------------------------------------------- local files


def _embeddings(clip: ClipModel) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        return clip.encode_images(smooth_images(2, 40, 40)), clip.encode_text(["a face"])


def _assert_same_model(a: ClipModel, b: ClipModel) -> None:
    for x, y in zip(_embeddings(a), _embeddings(b), strict=True):
        assert torch.allclose(x, y, atol=1e-6)
    assert a.content_hash == b.content_hash


@pytest.mark.parametrize("suffix", [".pt", ".bin", ".safetensors"])
def test_checkpoint_round_trip(tmp_path, tiny_arch, suffix):
    from safetensors.torch import save_file

    source = make_clip(seed=1)
    state = {k: v.clone().contiguous() for k, v in source.model.state_dict().items()}
    path = tmp_path / f"clip{suffix}"
    if suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save(state, path)
    loaded = ClipModel.from_checkpoint(tiny_arch, path)
    _assert_same_model(source, loaded)
    assert loaded.name == f"{tiny_arch}:clip{suffix}"


def test_a_pytorch_state_dict_named_safetensors_is_read_by_its_content(tmp_path, tiny_arch):
    # torch.load(path) sent it to safetensors, whose error came out unhandled
    source = make_clip(seed=1)
    path = tmp_path / "clip.safetensors"
    torch.save(source.model.state_dict(), path)
    _assert_same_model(source, ClipModel.from_checkpoint(tiny_arch, path))


def test_checkpoint_inside_a_training_container(tmp_path, tiny_arch):
    source = make_clip(seed=1)
    state = {f"module.{k}": v for k, v in source.model.state_dict().items()}
    path = tmp_path / "epoch_3.pt"
    torch.save({"epoch": 3, "state_dict": state}, path)
    _assert_same_model(source, ClipModel.from_checkpoint(tiny_arch, path))


def test_torchscript_archive_is_read_without_running_it(tmp_path, tiny_arch):
    source = make_clip(seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated, but OpenAI's files use it
        torch.jit.script(source.model).save(str(tmp_path / "ViT-tiny.pt"))
    path = tmp_path / "ViT-tiny.pt"
    assert set(read_weights(path)) >= set(source.model.state_dict())
    loaded = ClipModel.from_checkpoint(tiny_arch, path, quick_gelu=False)
    _assert_same_model(source, loaded)
    # OpenAI's TorchScript files are QuickGELU models, so that is the default for them.
    assert ClipModel.from_checkpoint(tiny_arch, path).config["quick_gelu"] is True


def test_a_torchscript_archive_is_imported_despite_its_attention_masks_infinities(
        tmp_path, tiny_arch):
    # The text tower's causal mask holds -inf, and TorchScript files (OpenAI's ViT-B-32.pt,
    # the zoo's own entry) store it: the import called every such file damaged.
    from editor.core.model_files import identify_model_file

    path = tmp_path / "ViT-tiny.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.script(make_clip(seed=2).model).save(str(path))
    assert torch.isinf(read_weights(path)["attn_mask"]).any()
    found = identify_model_file(path, clip_arch=tiny_arch)
    assert (found.kind, found.arch) == ("clip", tiny_arch)


def test_a_checkpoint_is_preprocessed_as_its_architectures_tags_agree(tmp_path, tiny_arch,
                                                                       monkeypatch):
    # A SigLIP (or PE, MobileCLIP) file was fed OpenAI's mean/std, which none of its
    # architecture's pretrained weights were trained with.
    import open_clip.pretrained

    source = make_clip(seed=1)
    path = tmp_path / "clip.pt"
    torch.save(source.model.state_dict(), path)
    siglip_like = {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5),
                   "interpolation": "bilinear", "resize_mode": "squash"}
    tags = {"a": {"file": "a.bin", **siglip_like}, "b": {"file": "b.bin", **siglip_like}}
    monkeypatch.setitem(open_clip.pretrained._PRETRAINED, tiny_arch, tags)
    loaded = ClipModel.from_checkpoint(tiny_arch, path)
    assert loaded.preprocess.mean == loaded.preprocess.std == (0.5, 0.5, 0.5)
    assert (loaded.preprocess.interpolation, loaded.preprocess.resize_mode) == (
        "bilinear", "squash")
    x = smooth_images(2, 40, 40)
    with torch.no_grad():
        assert torch.allclose(loaded.encode_images(x), source.model.encode_image(
            (torch.nn.functional.interpolate((x + 1) / 2, size=32, mode="bilinear",
                                             antialias=True) - 0.5) / 0.5, normalize=True),
            atol=1e-5)
    # Tags that differ leave nothing to go by: open_clip's defaults, as for a file.
    monkeypatch.setitem(open_clip.pretrained._PRETRAINED, tiny_arch,
                        {**tags, "c": {"file": "c.bin"}})
    assert ClipModel.from_checkpoint(tiny_arch, path).preprocess == source.preprocess


@pytest.mark.parametrize("key", ["logit_scale", "logit_bias"])
def test_a_logit_scalar_stored_as_a_vector_loads(tmp_path, monkeypatch, key):
    # open_clip's loader reshapes both; a SigLIP file whose logit_bias was a 1-element
    # vector was refused as weights "for another architecture".
    import open_clip.factory

    config = {**TINY_VIT, "init_logit_bias": -10.0}
    monkeypatch.setitem(open_clip.factory._MODEL_CONFIGS, "atelier-test-sigmoid", config)
    source = make_clip(config, seed=1)
    state = dict(source.model.state_dict())
    state[key] = state[key].reshape(1)
    path = tmp_path / "siglip.pt"
    torch.save(state, path)
    _assert_same_model(source, ClipModel.from_checkpoint("atelier-test-sigmoid", path))


def test_the_architecture_of_weights_is_found_from_their_names_and_shapes(tmp_path,
                                                                          tiny_arch):
    # An OpenAI-style TorchScript archive (attention masks stored beside the weights) and a
    # training container both name the one architecture they fit; other shapes name none.
    from editor.core.clip_model import check_architecture, matching_architectures

    source = make_clip(seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.script(source.model).save(str(tmp_path / "ViT-tiny.pt"))
    assert matching_architectures(read_weights(tmp_path / "ViT-tiny.pt")) == [tiny_arch]
    state = dict(source.model.state_dict())
    assert matching_architectures(state) == [tiny_arch]
    assert check_architecture(f"{tiny_arch}-quickgelu", state, "w") == f"{tiny_arch}-quickgelu"
    state["positional_embedding"] = state["positional_embedding"][:-1]
    assert matching_architectures(state) == []
    with pytest.raises(ClipError, match="1 with other shapes"):
        check_architecture(tiny_arch, state, "w")
    with pytest.raises(ClipError, match="unknown CLIP architecture 'no-such-arch'"):
        check_architecture("no-such-arch", state, "w")


class _Evil:
    """Unpickling this runs a shell command that creates `marker`."""

    def __init__(self, marker: str = "/nonexistent/atelier-marker"):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("content", [
    b"",
    b"not a checkpoint at all",
    b"PK\x03\x04 truncated zip",
    pickle.dumps({"w": _Evil()}, protocol=2),
], ids=["empty", "text", "broken-zip", "pickle-with-code"])
def test_corrupt_or_unsafe_files_are_clip_errors(tmp_path, tiny_arch, content):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(ClipError):
        ClipModel.from_checkpoint(tiny_arch, path)


def test_pickled_code_is_refused_not_run(tmp_path, tiny_arch):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"w": _Evil(str(marker))}, protocol=2))
    with pytest.raises(ClipError, match="never code") as info:
        ClipModel.from_checkpoint(tiny_arch, path)
    # what it asked for, never torch's advice to load it with weights_only=False
    assert "system" in str(info.value) and "weights_only" not in str(info.value)
    # The same inside something shaped like a TorchScript archive.
    archive = tmp_path / "evil-script.pt"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("evil/data.pkl", pickle.dumps(_Evil(str(marker)), protocol=2))
        z.writestr("evil/constants.pkl", pickle.dumps((), protocol=2))
    with pytest.raises(ClipError, match="not plain weights"):
        ClipModel.from_checkpoint(tiny_arch, archive)
    assert not marker.exists()


def _clip_like_state() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {"visual.proj": torch.randn(64, 32, generator=g),
            "token_embedding.weight": torch.randn(256, 64, generator=g)}


def test_a_damaged_torch_file_is_called_corrupt_not_code(tmp_path):
    """A zip whose head was lost still opens, but torch reads garbage for its pickle and
    (since torch 2.6) says weights_only in every refusal: not code, and no such advice."""
    good = tmp_path / "clip.pt"
    torch.save(_clip_like_state(), good)
    assert set(read_weights(good)) == {"visual.proj", "token_embedding.weight"}
    bad = tmp_path / "cut.pt"
    bad.write_bytes(good.read_bytes()[1000:])
    with pytest.raises(ClipError, match="truncated or corrupt: download or copy it again"
                       ) as info:
        read_weights(bad)
    text = str(info.value)
    assert "never code" not in text and "weights_only" not in text and "False" not in text


def test_a_damaged_legacy_clip_file_and_a_memory_bomb_are_refused_in_words(tmp_path):
    # a legacy (non-zip) file with one byte changed escaped as an AssertionError, and a
    # view repeating one number over 2**40 elements reached torch.isfinite
    good = tmp_path / "legacy.pt"
    torch.save(_clip_like_state(), good, _use_new_zipfile_serialization=False)
    data = bytearray(good.read_bytes())
    data[data.index(b"X\x07\x00\x00\x00storage") + 1] = 0  # 'storage' read as opcodes
    (tmp_path / "damaged.pt").write_bytes(bytes(data))
    with pytest.raises(ClipError, match="is not a readable PyTorch file"):
        read_weights(tmp_path / "damaged.pt")
    bomb = {**_clip_like_state(), "visual.conv1.weight": torch.zeros(1).expand(2**20, 2**20)}
    torch.save(bomb, tmp_path / "bomb.pt")
    with pytest.raises(ClipError, match="claims more data than the file holds"):
        read_weights(tmp_path / "bomb.pt")


def test_a_bit_flip_inside_a_torch_zip_is_called_damaged(tmp_path):
    import struct

    path = tmp_path / "clip.pt"
    torch.save(_clip_like_state(), path)
    with zipfile.ZipFile(path) as z:
        info = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    data = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26:
                                                    info.header_offset + 30])
    data[info.header_offset + 30 + name_len + extra_len] ^= 0x01  # a mantissa bit
    path.write_bytes(bytes(data))
    with pytest.raises(ClipError, match=r"damaged \(a checksum inside the file does not "
                                        r"match\): download or copy it again"):
        read_weights(path)


def test_cached_weights_are_found_without_the_network(tmp_path):
    from editor.core.clip_model import _cached_weights

    snapshot = tmp_path / "models--org--clip" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "open_clip_model.safetensors").write_bytes(b"x")
    (tmp_path / "models--org--clip" / "refs").mkdir()
    (tmp_path / "models--org--clip" / "refs" / "main").write_text("abc123")
    found = _cached_weights({"hf_hub": "org/clip/"}, str(tmp_path))
    assert found == str(snapshot / "open_clip_model.safetensors")
    assert _cached_weights({"hf_hub": "org/other/"}, str(tmp_path)) is None

    (tmp_path / "ViT-X.pt").write_bytes(b"x")
    url = "https://example.invalid/models/ViT-X.pt"
    assert _cached_weights({"url": url}, str(tmp_path)) == str(tmp_path / "ViT-X.pt")


def test_truncated_safetensors_is_a_clip_error(tmp_path, tiny_arch):
    path = tmp_path / "clip.safetensors"
    make_clip().save(path)
    path.write_bytes(path.read_bytes()[:-1000])
    with pytest.raises(ClipError):
        ClipModel.from_checkpoint(tiny_arch, path)


def test_weights_for_another_architecture_are_named(tmp_path, tiny_arch):
    other = make_clip({**TINY_VIT, "embed_dim": 16})
    path = tmp_path / "other.pt"
    torch.save(other.model.state_dict(), path)
    with pytest.raises(ClipError, match="do not fit.*other shapes"):
        ClipModel.from_checkpoint(tiny_arch, path)


def test_missing_file_and_missing_architecture(tmp_path):
    with pytest.raises(ClipError, match="not found"):
        ClipModel.from_checkpoint("ViT-B-32", tmp_path / "nope.pt")
    path = tmp_path / "state.pt"
    torch.save(make_clip().model.state_dict(), path)
    with pytest.raises(ClipError, match="which open_clip architecture"):
        ClipModel.from_checkpoint(None, path)


def test_save_and_load_keep_config_preprocessing_and_weights(tmp_path):
    config = {"model_cfg": TINY_RN, "preprocess_cfg": {"mean": [0.4, 0.5, 0.6]}}
    source = make_clip(config, seed=4)
    path = source.save(tmp_path / "demo-clip.safetensors")
    loaded = ClipModel.load(path)
    _assert_same_model(source, loaded)
    assert loaded.name == "tiny"
    assert loaded.preprocess == source.preprocess and loaded.preprocess.mean == (0.4, 0.5, 0.6)
    _assert_same_model(source, ClipModel.from_checkpoint(None, path))


def test_config_errors_are_clip_errors():
    with pytest.raises(ClipError, match="lacks 'vision_cfg'"):
        ClipModel.from_config({"embed_dim": 8, "text_cfg": TEXT_CFG})
    with pytest.raises(ClipError, match="invalid CLIP config"):
        ClipModel.from_config({**TINY_VIT, "no_such_option": 1})
    with pytest.raises(ClipError, match="do not fit"):
        ClipModel.from_config(TINY_VIT, state_dict={"nonsense": torch.zeros(1)})


# --------------------------------------------------------------------------- identity


def test_content_hash_is_stable_and_tracks_weights_and_activation():
    a, b = make_clip(seed=0), make_clip(seed=0)
    assert a.content_hash == b.content_hash
    assert len(a.content_hash) == 64
    assert make_clip(seed=1).content_hash != a.content_hash
    same_weights = ClipModel.from_config({**TINY_VIT, "quick_gelu": True},
                                         state_dict=a.model.state_dict())
    assert same_weights.content_hash != a.content_hash


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu_and_drops_cached_text(clip):
    x = smooth_images(2, 48, 48)
    with torch.no_grad():
        on_cpu = clip.encode_images(x)
    text_cpu = clip.text_embedding("a face")
    clip.to("cuda")
    assert clip.device.type == "cuda"
    with torch.no_grad():
        on_gpu = clip.encode_images(x)  # inputs follow the model
    text_gpu = clip.text_embedding("a face")
    assert text_gpu.device.type == "cuda"
    assert torch.allclose(on_cpu, on_gpu.cpu(), atol=1e-4)
    assert torch.allclose(text_cpu, text_gpu.cpu(), atol=1e-4)


def _saved_with_metadata(tmp_path, **changes):
    """A CLIP file saved by this program, with some of its metadata replaced."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    src = make_clip(seed=5).save(tmp_path / "src.safetensors")
    with safe_open(str(src), framework="pt") as f:
        meta = {**f.metadata(), **changes}
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    path = tmp_path / "changed.safetensors"
    save_file(tensors, str(path), metadata=meta)
    return path


@pytest.mark.parametrize("changes,match", [
    ({"config": "[1, 2]"}, "damaged CLIP metadata"),
    ({"config": '"hello"'}, "damaged CLIP metadata"),
    ({"preprocess": "[1]"}, "damaged CLIP metadata"),
    ({"config": json.dumps({**TINY_VIT, "vision_cfg": "big"})}, "must be objects"),
    ({"preprocess": json.dumps({"mean": "x"})}, "invalid CLIP preprocessing"),
])
def test_damaged_metadata_in_a_saved_clip_is_a_clip_error(tmp_path, changes, match):
    with pytest.raises(ClipError, match=match):
        ClipModel.load(_saved_with_metadata(tmp_path, **changes))


def test_a_small_clip_file_cannot_claim_a_huge_architecture(tmp_path, monkeypatch):
    """Names and shapes are checked on a model that holds no memory before the real build
    (a config claiming 48 layers of width 4096 used to allocate tens of GB first)."""
    import editor.core.clip_model as clip_model

    huge = {**TINY_VIT, "vision_cfg": {"image_size": 64, "layers": 48, "width": 4096,
                                       "patch_size": 32}}
    path = _saved_with_metadata(tmp_path, config=json.dumps(huge))
    real_build = clip_model._build_from_config

    def build(cfg):
        if torch.empty(0).device.type != "meta":
            raise AssertionError("a real model was built before the weights were checked")
        return real_build(cfg)

    monkeypatch.setattr(clip_model, "_build_from_config", build)
    with pytest.raises(ClipError, match="do not fit"):
        ClipModel.load(path)


def test_a_weights_file_without_an_architecture_is_read_first(tmp_path):
    png = tmp_path / "picture.pt"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    with pytest.raises(ClipError, match="not a weights file"):
        ClipModel.from_checkpoint(None, png)


def test_openai_files_numbers_beside_the_weights_are_not_taken_for_weights(tmp_path,
                                                                            tiny_arch):
    # OpenAI's TorchScript files keep input_resolution, context_length and vocab_size
    # beside the weights (its own loader deletes them): they were "3 unexpected" names,
    # so the weights fit no architecture.
    from editor.core.clip_model import matching_architectures

    # They mark OpenAI's weights (`torch.jit.load("ViT-B-32.pt").state_dict()` saved as it
    # is), trained with QuickGELU: such a file was loaded with GELU (other embeddings, and
    # nothing said so).
    source = make_clip({**TINY_VIT, "quick_gelu": True}, seed=3)
    state = dict(source.model.state_dict())
    state.update(input_resolution=torch.tensor(16), context_length=torch.tensor(77),
                 vocab_size=torch.tensor(49408))
    torch.save(state, tmp_path / "openai-like.pt")
    assert matching_architectures(state) == [tiny_arch]
    loaded = ClipModel.from_checkpoint(tiny_arch, tmp_path / "openai-like.pt")
    assert loaded.config["quick_gelu"] is True
    _assert_same_model(source, loaded)
    # a plain state dict says nothing of its activation: the architecture's is kept
    torch.save(source.model.state_dict(), tmp_path / "plain.pt")
    assert not ClipModel.from_checkpoint(tiny_arch, tmp_path / "plain.pt").config.get(
        "quick_gelu")


def test_weights_that_fit_several_architectures_are_not_given_one_by_guess(tmp_path,
                                                                           tiny_arch,
                                                                           monkeypatch):
    # convnext_base_w_320 weights were recorded as convnext_base_w (256 px input): twins
    # differ in settings the shapes do not show, so the first name was a guess.
    import open_clip.factory

    from editor.core.errors import CheckpointError
    from editor.core.model_files import identify_model_file

    twin = f"{tiny_arch}-320"
    monkeypatch.setitem(open_clip.factory._MODEL_CONFIGS, twin, dict(TINY_VIT))
    torch.save(make_clip(seed=4).model.state_dict(), tmp_path / "w.pt")
    with pytest.raises(CheckpointError, match=rf"fit 2 open_clip architectures \({tiny_arch}, "
                       rf"{twin}\).*--clip-arch {tiny_arch}"):
        identify_model_file(tmp_path / "w.pt")
    assert identify_model_file(tmp_path / "w.pt", clip_arch=twin).arch == twin


def test_an_import_cancelled_while_the_architecture_is_searched_stops_the_search(
        tmp_path, tiny_arch, monkeypatch):
    # The search for an unknown CLIP's architecture (up to half a minute for timm towers)
    # ran to its end before the cancel was seen.
    import open_clip.factory

    from editor.core import clip_model, zoo
    from editor.core.model_files import identify_model_file

    twin = f"{tiny_arch}-320"  # a second candidate the search must build
    monkeypatch.setitem(open_clip.factory._MODEL_CONFIGS, twin, dict(TINY_VIT))
    state = make_clip(seed=4).model.state_dict()
    torch.save(state, tmp_path / "w.pt")
    tried: list[str] = []
    fits = clip_model._fits_architecture

    def fits_and_count(arch, state):
        tried.append(arch)
        return fits(arch, state)

    monkeypatch.setattr(clip_model, "_fits_architecture", fits_and_count)
    assert clip_model.matching_architectures(state) == [tiny_arch, twin]
    tried.clear()
    with pytest.raises(zoo.ImportCancelled, match="nothing was installed"):
        zoo.import_file(tmp_path / "w.pt", identify=identify_model_file,
                        cancel=lambda: bool(tried))  # cancelled once the search is under way
    assert len(tried) == 1 and zoo.installed() == []


def test_a_registry_clip_is_checked_as_its_own_architecture(tmp_path, tiny_arch,
                                                             monkeypatch):
    # The import searched every architecture even for a CLIP the registry names, threw
    # the answer away, and refused one whose twin fits the same shapes (a user registry
    # listing convnext_base_w_320, say). The entry's architecture is now checked instead.
    import hashlib

    import open_clip.factory

    from editor.core import paths, zoo
    from editor.core.errors import AtelierError
    from editor.core.model_files import identify_model_file

    twin = f"{tiny_arch}-320"
    monkeypatch.setitem(open_clip.factory._MODEL_CONFIGS, twin, dict(TINY_VIT))
    weights = tmp_path / "w.pt"
    torch.save(make_clip(seed=4).model.state_dict(), weights)
    raw = {"name": "my-320", "kind": "clip", "format": "open_clip", "arch": twin,
           "url": "https://example.invalid/w.pt",
           "tag": "mine", "filename": "w.pt", "licence": "test", "description": "a test",
           "sha256": hashlib.sha256(weights.read_bytes()).hexdigest()}
    (paths.config_dir() / "zoo_registry.json").write_text(
        json.dumps({"version": 1, "entries": [raw]}), encoding="utf-8")
    model = zoo.import_file(weights, identify=identify_model_file)
    assert (model.entry, model.arch, model.verified) == ("my-320", twin, True)

    # weights of another architecture under the entry's checksum are refused by name
    other = tmp_path / "other.pt"
    torch.save(make_clip(TINY_RN, seed=5).model.state_dict(), other)
    raw.update(name="my-other", filename="other.pt",
               sha256=hashlib.sha256(other.read_bytes()).hexdigest())
    (paths.config_dir() / "zoo_registry.json").write_text(
        json.dumps({"version": 1, "entries": [raw]}), encoding="utf-8")
    with pytest.raises(AtelierError, match=f"not importing other.pt: .*{twin}"):
        zoo.import_file(other, identify=identify_model_file)
    assert zoo.installed_model("my-other") is None


@pytest.mark.parametrize("extra", [0, 1])
def test_a_prompt_is_called_cut_only_when_clip_leaves_part_of_it_out(clip, extra):
    # A prompt that just fitted its longest template was said to lose its end.
    tokenizer = clip.tokenizer

    def longest(text):  # tokens with start and end, in the template that makes the most
        return max(len(tokenizer.encode(t.replace("{}", text))) + 2 for t in IMAGENET_TEMPLATES)

    words = 1
    while longest(" ".join(["face"] * words)) < clip.context_length + extra:
        words += 1
    text = " ".join(["face"] * words)
    assert longest(text) == clip.context_length + extra
    assert clip.prompt_is_cut(text) is (extra > 0)


def test_a_pasted_page_is_read_as_far_as_clip_reads_without_tokenizing_all_of_it(clip,
                                                                                 monkeypatch):
    # A 400,000-character paste was tokenized whole in each of 79 templates (most of a
    # minute on the render worker) for the 77 tokens CLIP reads of it.
    from editor.core.prompt_templates import IMAGENET_TEMPLATES

    page = "a face with glasses, smiling and with red hair; " * 2000
    with torch.no_grad():
        whole = clip.encode_text([t.replace("{}", page.strip()) for t in IMAGENET_TEMPLATES])
    expected = whole.mean(dim=0) / whole.mean(dim=0).norm()
    tokenized: list[int] = []
    tokenize = clip.tokenize
    monkeypatch.setattr(clip, "tokenize", lambda prompts: (
        tokenized.append(max(map(len, prompts))), tokenize(prompts))[1])
    assert torch.equal(clip.text_embedding(page), expected)  # what CLIP reads is the same
    assert clip.prompt_is_cut(page)
    assert max(tokenized) < 2000  # not the whole page


def test_a_pasted_prompt_clip_reads_the_start_of_is_called_cut_without_every_template(
        clip, monkeypatch):
    # A 2,000-character paste (as long as readable_part leaves a prompt whole) was
    # tokenized in each of the 79 templates to say that its end is left out: 60 ms of the
    # window's thread on the demo CLIP, once per paste. The answer stays the templates'
    # one for prompts of every length around the context.
    tokenizer = clip.tokenizer

    def cut_in_a_template(text):
        return any(len(tokenizer.encode(t.replace("{}", text))) + 2 > clip.context_length
                   for t in IMAGENET_TEMPLATES)

    for words in range(1, clip.context_length + 4):
        text = " ".join(["glasses!"] + ["face"] * words + ["hair."])
        assert clip.prompt_is_cut(text) is cut_in_a_template(text), words
    page = ("a face with glasses, smiling and with red hair; " * 50)[:2000]
    encoded: list[int] = []
    encode = tokenizer.encode
    monkeypatch.setattr(tokenizer, "encode", lambda t: (encoded.append(len(t)), encode(t))[1])
    assert clip.prompt_is_cut(page)
    assert sum(n > 1000 for n in encoded) == 1  # the prompt once, not in every template


@pytest.mark.parametrize("space", ["\x0b", "\x1c"])
def test_words_the_tokenizer_joins_are_not_called_cut_by_their_count_alone(clip, space):
    # str.split() takes a vertical tab (PowerPoint's line break) or an information
    # separator for a space; the tokenizer's clean-up drops it and reads the words around
    # it as one. The shortcut through the middle words counted them apart and called a
    # prompt every template reads whole cut.
    for words in range(1, 2 * clip.context_length):
        text = space.join(["a"] * words)
        tokens = clip.tokenizer([t.replace("{}", text) for t in IMAGENET_TEMPLATES],
                                context_length=clip.context_length + 1)
        assert clip.prompt_is_cut(text) is bool((tokens[:, -1] != 0).any()), words


@pytest.mark.parametrize("letters", ["一二三四五六七八九十人大天日月山川田", "abcdefghij",
                                     "ab"])
def test_a_long_prompt_without_spaces_is_read_as_far_as_clip_reads(clip, letters,
                                                                   monkeypatch):
    # Chinese or Japanese text has no spaces: one word of 60,000 characters, whose byte-
    # pair merging held the window for 9.5 s (the cut only came at spaces)
    import random

    rng = random.Random(0)
    text = "".join(rng.choice(letters) for _ in range(3000))
    assert torch.equal(clip.tokenize([clip.readable_part(text)]), clip.tokenize([text]))
    assert torch.equal(clip.tokenize([f"a photo of {clip.readable_part(text)}."]),
                       clip.tokenize([f"a photo of {text}."]))
    encoded: list[int] = []
    encode = clip._tokenizer.encode
    monkeypatch.setattr(clip._tokenizer, "encode",
                        lambda t: (encoded.append(len(t)), encode(t))[1])
    tokenize = clip.tokenize
    monkeypatch.setattr(clip, "tokenize", lambda prompts: (
        encoded.append(max(map(len, prompts))), tokenize(prompts))[1])
    page = text * 20
    assert clip.prompt_is_cut(page)
    clip.text_embedding(page)
    assert max(encoded) < 3000  # not the whole page


def test_a_torchscript_pickle_cannot_rewrite_the_functions_it_may_call(tmp_path):
    # a BUILD on torch._utils._rebuild_tensor_v2 set attributes of the reader's own
    # function, for every later CLIP read in the process (helper-115, NVIDIA's reader)
    import pickle
    import zipfile

    import editor.core.clip_model as clip_model

    state = pickle.dumps((None, {"__kwdefaults__": {"poisoned": True}}), protocol=2)[2:-1]
    path = tmp_path / "poison.pt"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("poison/data.pkl",
                   b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n" + state + b"b0}.")
        z.writestr("poison/constants.pkl", pickle.dumps(()))
    with pytest.raises(ClipError, match="sets attributes of _rebuild_tensor"):
        read_weights(path)
    assert clip_model._rebuild_tensor.__kwdefaults__ is None


@pytest.mark.skipif(importlib.util.find_spec("transformers") is not None,
                    reason="transformers is installed: SigLIP's tokenizer can be made")
def test_weights_whose_tokenizer_needs_a_missing_package_are_refused_at_import(
        tmp_path, monkeypatch):
    # A SigLIP's weights were imported, then failed at first use: "could not create the
    # tokenizer (No module named 'transformers')"
    import open_clip.factory

    from editor.core.errors import CheckpointError
    from editor.core.model_files import identify_model_file

    tiny = {"embed_dim": 32, "init_logit_bias": -10.0,
            "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 64, "heads": 2,
                         "layers": 1},
            "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "patch_size": 8,
                           "head_width": 32}}
    monkeypatch.setitem(open_clip.factory._MODEL_CONFIGS, "Tiny-SigLIP", tiny)
    path = tmp_path / "siglip.pt"
    torch.save(open_clip.create_model("Tiny-SigLIP", pretrained=None).state_dict(), path)
    with pytest.raises(CheckpointError, match="needs the Python package transformers"):
        identify_model_file(path, clip_arch="Tiny-SigLIP")
    # the same weights under a name whose tokenizer is open_clip's own are fine
    monkeypatch.setitem(open_clip.factory._MODEL_CONFIGS, "Tiny-Plain", tiny)
    assert identify_model_file(path, clip_arch="Tiny-Plain").arch == "Tiny-Plain"


def test_the_window_imports_open_clip_only_when_a_clip_loads():
    # open_clip brings torchvision, timm and torch._dynamo (about 2 s on the 2-core CPU),
    # which the window imported before it showed; its render worker loads the CLIP later
    code = ("import sys, editor.ui.main_window; from editor.core import clip_model; "
            "print(sorted(m for m in ('open_clip', 'torchvision', 'timm') if m in sys.modules)); "
            "clip_model.ClipModel.from_config(" + repr(TINY_VIT) + ", name='tiny'); "
            "print(sorted(m for m in ('open_clip', 'torchvision') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:2] == ["[]", "['open_clip', 'torchvision']"]


def test_open_clip_and_torchvision_first_used_from_two_threads_both_import():
    # Imported on first use (above), open_clip and torchvision's transforms each import
    # torchvision: started by two threads at once they deadlocked in torchvision.ops, and
    # Python gave one thread a half-imported module (ImportError: StochasticDepth).
    code = ("import threading; from editor.core import clip_model as cm\n"
            "errors = []\n"
            "def use(get):\n"
            "    try: get()\n"
            "    except Exception as e: errors.append(repr(e))\n"
            "from editor.core.lazy_imports import import_heavy\n"
            "threads = [threading.Thread(target=use, args=(g,)) for g in (\n"
            "    lambda: cm.TF.InterpolationMode, lambda: cm.open_clip.SimpleTokenizer,\n"
            "    lambda: import_heavy('torchvision').models)]  # an inversion's VGG loss\n"
            "[t.start() for t in threads]; [t.join() for t in threads]\n"
            "print(errors)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
