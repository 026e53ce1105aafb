"""Global directions computed by the official StyleCLIP code, imported as a model pack.

StyleCLIP's repository ships `fs3.npy` for FFHQ (and AFHQ cat/dog, StyleGAN-Human): its
channel relevance, which takes hours to a day of GPU time to compute. Its format, read
from the code that writes and reads it (global_directions/SingleChannel.py, MapTS.py):

- `fs3.npy`: a plain .npy array (channels, 512), float32 (float16 where it was made on a
  GPU), one unit CLIP ViT-B/32 image-space vector per style channel, from +/-5 sigma over
  100 base images at psi 0.7: the quantity our precompute computes, except that the
  script's loop leaves every channel it has done at its mean, so each row was measured
  on base images with all earlier rows' channels at their means. Rows run over the
  non-toRGB style layers in synthesis order (4x4 conv, then per resolution the upsampling
  conv and the second conv) and their channels in order; toRGB layers are skipped. The
  official script stops at 128 px (11 layers, 5,376 rows at 1024 px); a file of all
  layers has 6,048. The layer order and channel identity are those of a rosinality
  checkpoint (convert_weight.py permutes nothing), so row k is our k-th editable channel.
- `S_mean_std` (optional, not shipped: GetCode.py writes it): a pickle of [means, stds],
  two lists of one float32 array per style layer, toRGB layers included, over 100,000
  psi-0.7 samples. It is read with a restricted unpickler (numpy arrays only; nothing in
  the file is run). Without it, the statistics are computed as for our own packs (same
  psi), which is what the edits' sigma scaling needs.

An import is checked against the models before it is kept: a few of its channels are
computed again here (the exact relevance at a few base images, both ways) and compared.
A file made for another generator of the same shape (AFHQ's fs3 has FFHQ's 5,376 rows)
or with another CLIP agrees with nothing and is refused; `force` keeps it anyway. The
check renders 8 channels x 2 ways x 4 images x 2 signs: on the 2-core CPU with FFHQ 1024
and ViT-B/32 (8 x 8 x 2 renders, one way) it took 229 s, about 1.8 s per render + encode,
where the 5,376-channel precompute at 100 images would be over a million renders.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from editor.core.checkpoints import PICKLE_READ_ERRORS
from editor.core.errors import AtelierError, DirectionsFileError
from editor.core.generator import Generator
from editor.core.hashing import file_sha256
from editor.core.nvidia_pickle import RestrictedUnpickler
from editor.core.style_code import StyleCode, StyleLayerSpec, flat_offsets, layer_of

from . import precompute as pc
from .global_directions import (
    OFFICIAL_PSI,
    EtaClock,
    ImageTextEncoder,
    JobPhases,
    Progress,
    Relevance,
    StyleStats,
    WSampler,
    base_codes,
    relevance_for_layer,
    state_before,
    suggested_batch_size,
)

OFFICIAL_K_SIGMA, OFFICIAL_IMAGES = 5.0, 100
# Far above any real S_mean_std (FFHQ: 2 x 6,048 + 2 x 3,040 toRGB floats, 73 KB).
MAX_STATS_BYTES = 256 * 2**20
# The check: this many of the file's rows (one from each of as many stretches of them),
# each measured at this many base images of seeds of their own, twice (measure_agreement),
# and compared with the file's vectors by cosine. Measured on the demo pack, 3 draws of
# rows: a file of its 100-image vectors gives medians 0.75-0.80; one measured as
# StyleCLIP's script measures, 0.93-0.97; another channel's rows (a file of another
# generator of the same shape) -0.02-0.14, and a CLIP of the same shape with other
# weights -0.06-0.00. Half way is the bar for "made for these models".
VERIFY_CHANNELS, VERIFY_IMAGES, VERIFY_SEED = 8, 4, 77
MIN_AGREEMENT = 0.5
# A given S_mean_std against the generator's own statistics from this many samples (the
# estimates' own error: about 0.03 sigma on a mean, 2 % on a std). Another generator of the
# same shape was off by a median 0.90 sigma (stds 0.49-2.05x); statistics of untruncated
# samples where psi 0.7 is meant differ by 1/0.7 = 1.43x.
STATS_CHECK_SAMPLES, MAX_MEAN_SHIFT, MAX_STD_RATIO = 1000, 0.25, 1.25


class MismatchError(DirectionsFileError):
    """The file reads well but does not fit these models: its vectors do not agree with
    them (kind "channels"), or its S_mean_std does not describe the generator's style
    codes (kind "statistics", which would scale every edit wrongly)."""

    def __init__(self, message: str, kind: str):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Agreement:
    """How well the file's vectors match the relevance measured here, per checked row:
    measured on clean base images, and as StyleCLIP's script measures (measure_agreement).
    A row agrees as well as the better of the two."""

    clean: tuple[float, ...]
    held: tuple[float, ...]
    n_images: int

    @property
    def cosines(self) -> tuple[float, ...]:
        return tuple(max(a, b) for a, b in zip(self.clean, self.held, strict=True))

    @property
    def median(self) -> float:
        return float(np.median(self.cosines)) if self.cosines else float("nan")

    def passes(self) -> bool:
        return bool(self.cosines) and self.median >= MIN_AGREEMENT

    def to_dict(self) -> dict:
        return {"clean": list(self.clean), "held": list(self.held), "n_images": self.n_images}

    @classmethod
    def from_dict(cls, d: dict) -> Agreement:
        return cls(tuple(float(c) for c in d["clean"]), tuple(float(c) for c in d["held"]),
                   int(d["n_images"]))

    def describe(self) -> str:
        return (f"median cosine {self.median:.2f} over {len(self.cosines)} channels "
                f"re-measured at {self.n_images} images (min {min(self.cosines):.2f}; "
                f"medians on clean base images {np.median(self.clean):.2f}, as StyleCLIP's "
                f"script measures {np.median(self.held):.2f})")


# --------------------------------------------------------------------------- reading files


NPY_MAGIC = b"\x93NUMPY"


def _open_npy(path: Path) -> np.ndarray:
    """A .npy file memory-mapped (nothing big is read yet), or a clear refusal."""
    if path.is_dir():
        raise DirectionsFileError(f"{path.name} is a folder, not StyleCLIP's fs3.npy")
    try:
        with open(path, "rb") as f:
            head = f.read(len(NPY_MAGIC))
    except OSError as e:
        raise DirectionsFileError(f"{path.name} cannot be read ({e.strerror or e})") from e
    if head != NPY_MAGIC:
        what = ("empty" if not head else "a zip archive (.npz?)" if head.startswith(b"PK")
                else "a pickle (a torch .pt file?)" if head[:1] == b"\x80"
                else "not a .npy file")
        raise DirectionsFileError(
            f"{path.name} is {what}; StyleCLIP's fs3.npy is a plain .npy array")
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as e:
        if "Python objects" in str(e):
            raise DirectionsFileError(
                f"{path.name} holds Python objects, not numbers; it was not loaded and "
                f"nothing in it was run") from e
        if "greater than file size" in str(e):
            raise DirectionsFileError(f"{path.name} is truncated") from e
        raise DirectionsFileError(f"{path.name} is not a readable .npy array ({e})") from e
    except (OSError, EOFError, OverflowError, TypeError) as e:  # a damaged header
        raise DirectionsFileError(f"{path.name} is damaged ({e or type(e).__name__})") from e


def read_fs3(path: str | Path, specs: Sequence[StyleLayerSpec], clip_dims: int
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """StyleCLIP's channel relevance for these models: the flat style channels of its rows
    and the rows as float32 unit vectors. The shape is checked against the models before
    the data is read."""
    path = Path(path)
    array = open_fs3(path)
    channels = _fs3_shape_channels(path, array, specs, clip_dims)
    try:
        vectors = torch.from_numpy(np.array(array, dtype=np.float32))
    except (OSError, ValueError) as e:  # a truncated file fails when the map is read
        raise DirectionsFileError(f"{path.name} is truncated or damaged ({e})") from e
    if not bool(torch.isfinite(vectors).all()):
        raise DirectionsFileError(f"{path.name} holds NaN or infinite values")
    norms = vectors.norm(dim=1)
    if bool((norms < 1e-6).any()):
        raise DirectionsFileError(
            f"{path.name}: row {int((norms < 1e-6).nonzero()[0])} is all zeros; every row of "
            f"fs3.npy is a unit vector")
    return channels, F.normalize(vectors, dim=1)  # float16 rows are unit to their precision


def looks_like_fs3(path: str | Path, specs: Sequence[StyleLayerSpec],
                   clip_dims: int | None) -> bool:
    """Whether a .npy has fs3's shape for these models (a dropped file: a latent or the
    directions?); any width where no CLIP is known. Reads the header only."""
    path = Path(path)
    try:
        _fs3_shape_channels(path, open_fs3(path), specs, clip_dims)
    except DirectionsFileError:
        return False
    return True


def open_fs3(path: str | Path) -> np.ndarray:
    """A file with fs3.npy's form (a 2-D float .npy) memory-mapped, or DirectionsFileError
    saying why not; no models needed, so a wrong file is refused before they load."""
    path = Path(path)
    array = _open_npy(path)
    if array.ndim != 2 or not array.shape[0] or not array.shape[1]:
        raise DirectionsFileError(
            f"{path.name} has shape {tuple(array.shape)}; StyleCLIP's fs3.npy is (style "
            f"channels, CLIP dimensions), e.g. (5376, 512)")
    if array.dtype.kind != "f":
        raise DirectionsFileError(f"{path.name} holds {array.dtype} values, not floats")
    return array


def _fs3_shape_channels(path: Path, array: np.ndarray, specs: Sequence[StyleLayerSpec],
                        clip_dims: int | None) -> torch.Tensor:
    """fs3_channels of an array (from open_fs3) whose header fits these models (any width
    where no CLIP is known), or DirectionsFileError saying why not. Reads no data."""
    if clip_dims is not None and array.shape[1] != clip_dims:
        if array.shape[0] == clip_dims:  # not "holds 5376-dimensional CLIP vectors"
            try:
                fs3_channels(specs, array.shape[1])
            except DirectionsFileError:
                pass
            else:
                raise DirectionsFileError(
                    f"{path.name} has shape {tuple(array.shape)}, which is transposed: "
                    f"StyleCLIP's fs3.npy is (style channels, CLIP dimensions), "
                    f"{array.shape[::-1]} here")
        raise DirectionsFileError(
            f"{path.name} holds {array.shape[1]}-dimensional CLIP vectors; this CLIP "
            f"model's are {clip_dims}-dimensional (StyleCLIP's files are for ViT-B/32, 512)")
    return fs3_channels(specs, array.shape[0])


def companion_stats(fs3_path: str | Path) -> Path | None:
    """StyleCLIP's GetCode.py writes S_mean_std into the folder of its fs3.npy
    (npy/ffhq/): the statistics that go with the file, where they are there."""
    beside = Path(fs3_path).with_name("S_mean_std")
    return beside if beside.is_file() else None


def fs3_channels(specs: Sequence[StyleLayerSpec], rows: int) -> torch.Tensor:
    """Flat style-code indices of fs3's rows: the non-toRGB layers' channels in order,
    as many whole layers as the file covers."""
    offsets = flat_offsets(specs)
    chosen: list[torch.Tensor] = []
    covered, sizes = 0, []
    for i, spec in enumerate(specs):
        if spec.is_torgb or covered == rows:
            continue
        chosen.append(torch.arange(spec.channels) + offsets[i])
        covered += spec.channels
        sizes.append(covered)
    if covered != rows:
        raise DirectionsFileError(
            f"the file has {rows} rows, which is not a whole number of this generator's "
            f"style layers (it would take {', '.join(map(str, sizes[:12]))}"
            f"{', ...' if len(sizes) > 12 else ''} rows): it was made for another generator")
    return torch.cat(chosen)


def _safe_unpickle(data: bytes, name: str) -> object:
    try:
        return RestrictedUnpickler(io.BytesIO(data), name).load()
    except AtelierError:
        raise
    except PICKLE_READ_ERRORS as e:
        raise DirectionsFileError(
            f"{name} could not be read as StyleCLIP's S_mean_std pickle ({e or type(e).__name__})"
        ) from e


def read_style_mean_std(path: str | Path, specs: Sequence[StyleLayerSpec]) -> StyleStats:
    """StyleCLIP's S_mean_std ([means, stds], one array per style layer, toRGB included)
    as StyleStats over our flat style code. Its sample count is not in the file: 0."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_STATS_BYTES:
            raise DirectionsFileError(f"{path.name} is too large to be StyleCLIP's S_mean_std")
        data = path.read_bytes()
    except OSError as e:
        raise DirectionsFileError(f"{path.name} cannot be read ({e.strerror or e})") from e
    got = _safe_unpickle(data, path.name)
    if not (isinstance(got, list | tuple) and len(got) == 2
            and all(isinstance(part, list | tuple) for part in got)):
        raise DirectionsFileError(
            f"{path.name} is not StyleCLIP's S_mean_std: expected a pair of lists "
            f"[means, stds] of per-layer arrays")
    means, stds = got
    if means and all(isinstance(name, str) for name in means):  # GetCode.py's other pickle
        raise DirectionsFileError(
            f"{path.name} is StyleCLIP's S (layer names and the style codes of sampled "
            f"images), not S_mean_std ([means, stds]; GetCode.py --code_type s_mean_std)")
    if len(means) != len(specs) or len(stds) != len(specs):
        raise DirectionsFileError(
            f"{path.name} has {len(means)} style layers; this generator has {len(specs)} "
            f"(toRGB included): it was made for another generator")
    flat = []
    for part in (means, stds):
        layers = []
        for spec, values in zip(specs, part, strict=True):
            if not isinstance(values, np.ndarray) or values.dtype.kind != "f" \
                    or values.size != spec.channels:
                raise DirectionsFileError(
                    f"{path.name}: layer {spec.name} should hold {spec.channels} numbers, "
                    f"found {getattr(values, 'shape', type(values).__name__)}")
            layers.append(torch.from_numpy(np.asarray(values, dtype=np.float32).reshape(-1)))
        flat.append(torch.cat(layers))
    mean, std = flat
    if not (bool(torch.isfinite(mean).all()) and bool(torch.isfinite(std).all())):
        raise DirectionsFileError(f"{path.name} holds NaN or infinite values")
    if bool((std < 0).any()):
        raise DirectionsFileError(f"{path.name} holds negative standard deviations")
    return StyleStats(mean, std, 0)


# --------------------------------------------------------------------------- the checks


def statistics_mismatch(given: StyleStats, sampled: StyleStats) -> str | None:
    """How a file's statistics differ from the generator's own (sampled here), where they
    differ beyond sampling error; None where they fit. Medians over the channels."""
    std = sampled.std.float()
    varies = std > 1e-8
    shift = float(((given.mean.float() - sampled.mean.float()).abs()[varies]
                   / std[varies]).median())
    ratio = float((given.std.float()[varies].clamp_min(1e-12) / std[varies]).log().abs()
                  .median().exp())
    if shift <= MAX_MEAN_SHIFT and ratio <= MAX_STD_RATIO:
        return None
    return f"means off by a median {shift:.2f} sigma, standard deviations by {ratio:.2f}x"


def verify_rows(channels: torch.Tensor, n: int = VERIFY_CHANNELS, seed: int = 0) -> list[int]:
    """Which of the file's rows to measure again: one drawn from each of n equal stretches
    of them (drawn by `seed`, the file's own: a file cannot know which rows are looked at)."""
    rows = len(channels)
    n = min(n, rows)
    g = torch.Generator().manual_seed(seed)
    bounds = [round(i * rows / n) for i in range(n + 1)]
    return [a + int(torch.randint(b - a, (1,), generator=g)) for a, b in
            zip(bounds[:-1], bounds[1:], strict=True)]


def _held_at_mean(codes: StyleCode, stats: StyleStats, flat: torch.Tensor) -> StyleCode:
    """The codes with these flat channels set to their means."""
    values = codes.flat().clone()
    values[:, flat] = stats.mean[flat].to(values)
    return StyleCode.from_flat(codes.specs, values)


def measure_agreement(gen: Generator, clip: ImageTextEncoder, stats: StyleStats,
                      channels: torch.Tensor, vectors: torch.Tensor, rows: Sequence[int],
                      n_images: int = VERIFY_IMAGES, psi: float = OFFICIAL_PSI,
                      sample_w: WSampler | None = None, batch_size: int | None = None
                      ) -> Iterator[Progress | Agreement]:
    """Recompute the relevance of some rows (exactly, at n_images base images of our own)
    and compare, each row measured twice: on the base images as they are, and as
    StyleCLIP's SingleChannel.py measures it, with every earlier row's channel held at its
    mean (its loop leaves each channel it has done at the mean; a file may have been made
    either way). Progress per row, then the Agreement."""
    specs = gen.style_specs
    offsets = flat_offsets(specs)
    codes = base_codes(gen, n_images, VERIFY_SEED, psi, sample_w)
    batch_size = batch_size or suggested_batch_size(gen)
    clock = EtaClock(0, len(rows))
    found: dict[bool, list[float]] = {False: [], True: []}
    for done, row in enumerate(rows, start=1):
        flat = int(channels[row])
        layer = layer_of(offsets, flat)
        for held in (False, True):
            base = _held_at_mean(codes, stats, channels[:row]) if held else codes
            measured = relevance_for_layer(gen, clip, base, stats, layer, [flat - offsets[layer]],
                                           OFFICIAL_K_SIGMA, state_before(gen, base, layer),
                                           batch_size)[0]
            found[held].append(float(measured @ vectors[row].to(measured)))
        yield clock.progress(done, f"checking the file: channel {done}/{len(rows)} "
                                   f"({specs[layer].name})")
    yield Agreement(tuple(found[False]), tuple(found[True]), n_images)


# --------------------------------------------------------------------------- the import job


def import_styleclip_pack(
    gen: Generator, clip: ImageTextEncoder, gen_hash: str, clip_hash: str,
    fs3_path: str | Path, mean_std_path: str | Path | None = None, *,
    clip_dims: int, stats_samples: int = 10_000, psi: float = OFFICIAL_PSI,
    sample_w: WSampler | None = None, sampler: str | None = None, root: Path | None = None,
    cancel: pc.CancelToken = None, force: bool = False,
    verify_channels: int = VERIFY_CHANNELS,
) -> Iterator[Progress | pc.PackData]:
    """A job: read and check the files, measure the agreement, keep the pack in the cache
    (imported_pack_cache). Yields Progress, then the PackData (info["agreement"] is the
    check's Agreement.to_dict()). Raises DirectionsFileError for a file that does not fit
    these models (MismatchError where only the check fails)."""
    t0 = time.monotonic()
    fs3_path = Path(fs3_path)
    specs = gen.style_specs
    channels, vectors = read_fs3(fs3_path, specs, clip_dims)
    digest = file_sha256(fs3_path)
    sampler = pc.sampler_name(sample_w, sampler)
    phases = JobPhases({"style statistics": (STATS_CHECK_SAMPLES if mean_std_path is not None
                                             else stats_samples) * pc.STATS_RENDERS,
                        "check": 2 * verify_channels * VERIFY_IMAGES * pc.RELEVANCE_RENDERS},
                       guessed={"style statistics"})
    stats_off = None
    if mean_std_path is not None:
        stats = read_style_mean_std(mean_std_path, specs)
        sampled = yield from pc.sampled_stats(gen, STATS_CHECK_SAMPLES, psi, sample_w,
                                              cancel, phases, seed=VERIFY_SEED)
        stats_off = statistics_mismatch(stats, sampled)
        if stats_off and not force:
            raise MismatchError(
                f"{Path(mean_std_path).name} does not describe this generator's style codes "
                f"({stats_off}): it was made for another generator or at another truncation "
                f"than psi {psi:g}. Nothing was imported", "statistics")
    else:
        stats = yield from pc.style_stats_job(gen, gen_hash, stats_samples, psi, sample_w,
                                              sampler, root, cancel, phases)
    agreement, mismatches = None, []
    if stats_off:
        mismatches.append(f"statistics: {stats_off}")
    if verify_channels > 0:
        rows = verify_rows(channels, verify_channels, seed=int(digest[:15], 16))
        for item in measure_agreement(gen, clip, stats, channels, vectors, rows, psi=psi,
                                      sample_w=sample_w):
            if isinstance(item, Agreement):
                agreement = item
            else:
                yield phases.report("check", item)
                if pc.is_cancelled(cancel):
                    raise pc.Cancelled("import cancelled; nothing was kept")
        assert agreement is not None
        if not agreement.passes() and not force:
            raise MismatchError(
                f"{fs3_path.name} does not match this generator and CLIP "
                f"({agreement.describe()}; the same models give about 0.85, others about "
                f"0): it was made for another generator or with another CLIP. It was not "
                f"imported", "channels")
        if not agreement.passes():
            mismatches.append(f"channels: {agreement.describe()}")
    info = {"generator": gen_hash, "clip": clip_hash, "sampler": sampler,
            "stats_samples": stats.n_samples,
            "stats_from": Path(mean_std_path).name if mean_std_path else "computed",
            "relevance": {"imported": fs3_path.name, "sha256": digest,
                          "n_images": OFFICIAL_IMAGES, "k_sigma": OFFICIAL_K_SIGMA,
                          "psi": OFFICIAL_PSI},
            "agreement": agreement.to_dict() if agreement else None,
            "forced": mismatches,  # what did not fit and was kept because of force
            "seconds": round(time.monotonic() - t0, 1)}
    relevance = Relevance(channels, vectors, dict(info["relevance"]))
    entry = pc.imported_pack_cache(gen_hash, clip_hash, root)
    tensors = {**stats.to_dict(), **relevance.to_dict()}
    # not "computed again next time": an import is not redone unasked. Said by the caller
    # (the CLI's error, the window's box), not logged as well: the CLI printed it twice
    error = pc.try_save_checked(entry, tensors, info, "imported global directions",
                                warn=False, then=None)
    yield pc.PackData(stats, relevance, pc.imported_key(entry, tensors), info,
                      save_error=error)
