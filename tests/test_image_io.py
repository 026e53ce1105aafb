"""Image files in and out: every bad input gives a clear ImageLoadError, odd modes come out as
sensible 8-bit RGB, huge files stay cheap, exports are atomic and carry their recipe."""

from __future__ import annotations

import io
import json
import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import ExifTags, Image, ImageFile, PngImagePlugin

from editor.core.errors import AtelierError, ImageExistsError, ImageLoadError, ImageSaveError
from editor.core.image_io import (
    RECIPE_KEY,
    center_crop_square,
    crop,
    load_image,
    looks_like_image,
    read_recipe,
    readable_image_suffixes,
    resize,
    save_animation,
    save_image,
)


def _noise(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _truncated(tmp_path: Path, name: str) -> Path:
    """A noisy (so incompressible) image cut in half: the header is fine, the data is not."""
    whole = tmp_path / f"whole_{name}"
    Image.fromarray(_noise(200, 300)).save(whole)
    data = whole.read_bytes()
    cut = tmp_path / name
    cut.write_bytes(data[: len(data) // 2])
    return cut


def _png_claiming_size(path: Path, width: int, height: int) -> Path:
    """A valid 1x1 PNG whose IHDR is patched (CRC fixed) to claim another size."""
    Image.new("RGB", (1, 1)).save(path)
    data = bytearray(path.read_bytes())
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    return path


def _make_bad(tmp_path: Path, kind: str) -> Path:
    if kind == "truncated_png":
        return _truncated(tmp_path, "cut.png")
    if kind == "truncated_jpeg":
        return _truncated(tmp_path, "cut.jpg")
    if kind == "bad_checksum":  # one bit flipped in a chunk's CRC
        path = tmp_path / "crc.png"
        save_image(path, _noise(8, 8), recipe={"t": "x"})
        data = bytearray(path.read_bytes())
        at = data.find(b"iTXt")
        data[at + 4 + int.from_bytes(data[at - 4:at], "big")] ^= 1
        path.write_bytes(bytes(data))
        return path
    path = tmp_path / {"empty": "empty.png", "random": "noise.png", "text": "notes.png",
                       "torch_file": "model.pt", "folder": "folder.png",
                       "missing": "missing.png"}[kind]
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "random":
        path.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, np.uint8).tobytes())
    elif kind == "text":
        path.write_text("this is not a picture\n")
    elif kind == "torch_file":  # torch.save writes a zip archive
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
    elif kind == "folder":
        path.mkdir()
    return path


@pytest.mark.parametrize("kind, words", [
    ("truncated_png", "truncated"),
    ("truncated_jpeg", "truncated"),
    ("empty", "empty"),
    ("random", "not an image"),
    ("text", "not an image"),
    ("torch_file", "not an image"),
    ("folder", "folder"),
    ("missing", "no such file"),
    ("bad_checksum", "a PNG file whose data is damaged"),  # was "not an image format"
])
def test_bad_input_gives_clear_one_line_error(tmp_path, kind, words):
    path = _make_bad(tmp_path, kind)
    with pytest.raises(ImageLoadError) as info:
        load_image(path)
    message = str(info.value)
    assert isinstance(info.value, AtelierError)
    assert path.name in message and words in message
    assert "\n" not in message


def test_truncated_image_refused_even_if_someone_allows_truncation(tmp_path, monkeypatch):
    path = _truncated(tmp_path, "cut.jpg")
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)  # another library did this
    with pytest.raises(ImageLoadError, match="truncated"):
        load_image(path)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # and we put it back as we found it


def test_a_truncated_picture_is_said_without_the_decoders_bookkeeping():
    # "the file is truncated (0 bytes not processed)" (helper-121): the count means nothing
    from editor.core.image_io import _describe_decode_error

    assert _describe_decode_error(OSError("image file is truncated (0 bytes not "
                                          "processed)")) == "the file is truncated"
    assert _describe_decode_error(OSError("image file is truncated")) == \
        "the file is truncated"


def test_a_text_chunk_too_large_to_read_is_named_not_called_corrupt(tmp_path):
    info = PngImagePlugin.PngInfo()
    info.add_itxt("Comment", "x" * (PngImagePlugin.MAX_TEXT_CHUNK + 1), zip=True)
    Image.new("RGB", (4, 4)).save(tmp_path / "notes.png", pnginfo=info)
    for read in (load_image, read_recipe):
        with pytest.raises(ImageLoadError) as caught:
            read(tmp_path / "notes.png")
        assert "metadata text is larger than the 1 MB in one chunk" in str(caught.value)
        assert "corrupt" not in str(caught.value)
    info = PngImagePlugin.PngInfo()  # many chunks, each within the limit, too much in all
    for i in range(PngImagePlugin.MAX_TEXT_MEMORY // PngImagePlugin.MAX_TEXT_CHUNK + 2):
        info.add_itxt(f"Note{i}", "x" * (PngImagePlugin.MAX_TEXT_CHUNK - 16), zip=True)
    Image.new("RGB", (4, 4)).save(tmp_path / "many.png", pnginfo=info)
    with pytest.raises(ImageLoadError, match="larger than the 64 MB in all"):
        load_image(tmp_path / "many.png")


def test_result_is_owned_contiguous_uint8(tmp_path):
    pixels = _noise(20, 30)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    loaded = load_image(tmp_path / "a.png")
    assert loaded.rgb.dtype == np.uint8 and loaded.rgb.flags.c_contiguous
    assert loaded.rgb.flags.owndata and loaded.rgb.flags.writeable
    np.testing.assert_array_equal(loaded.rgb, pixels)
    assert loaded.original_size == (30, 20) and loaded.notes == [] and loaded.format == "PNG"


def test_rgba_flattened_onto_background(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[0, 0, 3] = 255      # opaque red
    rgba[0, 1, 3] = 128      # half red
    path = tmp_path / "alpha.png"  # the rest fully transparent
    Image.fromarray(rgba, "RGBA").save(path)

    white = load_image(path)
    assert tuple(white.rgb[0, 0]) == (255, 0, 0)
    assert tuple(white.rgb[0, 2]) == (255, 255, 255)
    assert np.allclose(white.rgb[0, 1], (255, 127, 127), atol=1)
    assert "alpha flattened onto white" in white.notes

    black = load_image(path, background=(0, 0, 0))
    assert tuple(black.rgb[0, 2]) == (0, 0, 0)
    assert np.allclose(black.rgb[0, 1], (128, 0, 0), atol=1)


def test_opaque_alpha_is_dropped_without_a_note(tmp_path):
    Image.new("RGBA", (3, 3), (10, 20, 30, 255)).save(tmp_path / "opaque.png")
    loaded = load_image(tmp_path / "opaque.png")
    assert tuple(loaded.rgb[1, 1]) == (10, 20, 30) and loaded.notes == []


def test_palette_with_transparency(tmp_path):
    im = Image.new("P", (2, 1))
    im.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    im.putpixel((0, 0), 0)
    im.putpixel((1, 0), 1)
    im.save(tmp_path / "pal.png", transparency=1)
    loaded = load_image(tmp_path / "pal.png")
    assert tuple(loaded.rgb[0, 0]) == (255, 0, 0)
    assert tuple(loaded.rgb[0, 1]) == (255, 255, 255)  # the transparent green became white


@pytest.mark.parametrize("mode, key", [("RGB", (0, 0, 0)), ("L", 0)])
def test_colour_key_transparency_is_flattened_like_alpha(tmp_path, mode, key):
    # PNG optimisers write binary alpha as a tRNS colour key on RGB or grey pictures; it
    # was ignored, and a cut-out's transparent surroundings came out black.
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[2:6, 2:6] = (200, 150, 120)  # opaque; the rest is the (transparent) key colour
    path = tmp_path / "cut.png"
    Image.fromarray(rgb).convert(mode).save(path, transparency=key)
    opaque = np.array(Image.open(path).convert("RGB"))[3, 3]

    white = load_image(path)
    assert tuple(white.rgb[0, 0]) == (255, 255, 255)
    assert tuple(white.rgb[3, 3]) == tuple(opaque)
    assert "alpha flattened onto white" in white.notes
    assert tuple(load_image(path, background=(10, 20, 30)).rgb[0, 0]) == (10, 20, 30)


def _png_with_colour_key(path: Path, depth: int, colour_type: int, pixels: np.ndarray,
                         key: bytes) -> Path:
    """A PNG written by hand (Pillow writes no 16-bit RGB): big-endian samples, a tRNS key."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + \
            struct.pack(">I", zlib.crc32(kind + data))

    height, width = pixels.shape[:2]
    samples = pixels.astype(">u2" if depth == 16 else np.uint8).reshape(height, -1)
    raw = b"".join(b"\0" + row.tobytes() for row in samples)
    header = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"tRNS", key)
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return path


def test_16bit_colour_key_transparency_is_flattened(tmp_path, monkeypatch):
    import editor.core.image_io as image_io

    grey = np.array([[65535, 0], [0, 0], [1000, 32768]], np.uint16)  # keyed: the last row
    grey_path = _png_with_colour_key(tmp_path / "g16.png", 16, 0, grey, struct.pack(">H", 1000))
    colour = np.zeros((1, 2, 3), np.uint16)
    colour[0, 0] = (65535, 0, 0)  # keyed
    colour[0, 1] = (0, 65535, 0)
    colour_path = _png_with_colour_key(tmp_path / "rgb16.png", 16, 2, colour,
                                       struct.pack(">HHH", 65535, 0, 0))
    monkeypatch.setattr(image_io, "_STRIP_PIXELS", 2)  # one row a strip: the key is found
    g = load_image(grey_path)                          # in the last
    assert g.rgb[:, :, 0].tolist() == [[255, 0], [0, 0], [255, 128]]
    assert tuple(g.rgb[2, 0]) == (255, 255, 255)
    assert "16-bit converted to 8-bit" in g.notes and "alpha flattened onto white" in g.notes
    assert tuple(load_image(grey_path, background=(10, 20, 30)).rgb[2, 0]) == (10, 20, 30)
    c = load_image(colour_path, background=(10, 20, 30))
    assert c.rgb[0].tolist() == [[10, 20, 30], [0, 255, 0]]
    assert "alpha flattened onto #0a141e" in c.notes


def test_grayscale_and_one_bit(tmp_path):
    Image.new("L", (2, 2), 77).save(tmp_path / "gray.png")
    Image.new("1", (2, 2), 1).save(tmp_path / "bits.png")
    assert load_image(tmp_path / "gray.png").rgb.tolist() == [[[77] * 3] * 2] * 2
    assert load_image(tmp_path / "bits.png").rgb.min() == 255


def test_16bit_png_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 32768, 65535, 257]], np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    with Image.open(path) as im:
        assert im.mode == "I;16"
    loaded = load_image(path)
    assert loaded.rgb[0, :, 0].tolist() == [0, 128, 255, 1]
    assert "16-bit converted to 8-bit" in loaded.notes


def test_32bit_int_and_float_tiffs(tmp_path):
    Image.fromarray(np.array([[0, 65535]], np.int32)).save(tmp_path / "int.tif")
    Image.fromarray(np.array([[0.0, 0.5, 1.0]], np.float32)).save(tmp_path / "float.tif")
    Image.fromarray(np.array([[-5.0, 5.0]], np.float32)).save(tmp_path / "wide.tif")
    assert load_image(tmp_path / "int.tif").rgb[0, :, 0].tolist() == [0, 255]
    assert load_image(tmp_path / "float.tif").rgb[0, :, 0].tolist() == [0, 128, 255]
    wide = load_image(tmp_path / "wide.tif")
    assert wide.rgb[0, :, 0].tolist() == [0, 255] and "stretched" in wide.notes[0]


def test_deep_and_transparent_images_convert_alike_in_strips(tmp_path, monkeypatch):
    # Conversion runs strip by strip; the value range and the transparency note are
    # whole-image facts, so a picture must come out the same in 5-row strips as in one.
    import editor.core.image_io as image_io

    wide = np.zeros((20, 6), np.float32)
    wide[0, 0], wide[19, 5] = -3.0, 9.0  # the range spans the first and last strips
    wide[10, 2] = np.nan
    Image.fromarray(wide, "F").save(tmp_path / "wide.tif")
    ints = np.zeros((20, 6), np.int32)
    ints[19, 5] = 70000  # only the last strip leaves 16 bits
    Image.fromarray(ints, "I").save(tmp_path / "int.tif")
    rgba = np.full((20, 6, 4), 200, np.uint8)
    rgba[19, 5, 3] = 0  # one transparent pixel, in the last strip
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    names = ("wide.tif", "int.tif", "alpha.png")
    whole = [load_image(tmp_path / n) for n in names]
    monkeypatch.setattr(image_io, "_STRIP_PIXELS", 30)  # 5 rows of 6
    strips = [load_image(tmp_path / n) for n in names]
    for a, b in zip(whole, strips, strict=True):
        np.testing.assert_array_equal(a.rgb, b.rgb)
        assert a.notes == b.notes
    assert strips[0].rgb[0, 0, 0] == 0 and strips[0].rgb[19, 5, 0] == 255
    assert strips[0].rgb[0, 1, 0] == round(3 * 255 / 12)  # 0.0 on the -3..9 scale
    assert strips[0].notes[:2] == ["non-finite float pixels set to 0",
                                   "floating-point values -3..9 stretched to 8-bit"]
    assert "stretched" in strips[1].notes[0] and strips[1].rgb[19, 5, 0] == 255
    assert tuple(strips[2].rgb[19, 5]) == (255, 255, 255)
    assert "alpha flattened onto white" in strips[2].notes


def test_deep_images_are_converted_without_whole_image_temporaries(tmp_path, monkeypatch):
    # A 14000 px float TIFF peaked at 3.2 GB (a 32-bit integer one at 4.5 GB) from numpy
    # copies of the whole picture; strips keep numpy's share to a few strips' worth.
    import tracemalloc

    import editor.core.image_io as image_io

    values = np.linspace(-1, 2, 1000 * 1000, dtype=np.float32).reshape(1000, 1000)
    Image.fromarray(values, "F").save(tmp_path / "deep.tif")
    monkeypatch.setattr(image_io, "_STRIP_PIXELS", 50_000)
    tracemalloc.start()
    try:
        loaded = load_image(tmp_path / "deep.tif", max_side=100)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert loaded.rgb.shape == (100, 100, 3)
    assert peak < 2_000_000, f"numpy held {peak / 1e6:.1f} MB for a 4 MB float picture"


@pytest.mark.parametrize("progressive", [False, True])
def test_a_jpeg_missing_only_its_end_marker_opens(tmp_path, progressive):
    # Every viewer opens these; refusing them as "truncated" was wrong. A file that lacks
    # picture data is still refused, wherever it was cut.
    Image.fromarray(_noise(40, 56)).save(tmp_path / "whole.jpg", quality=90,
                                         progressive=progressive)
    data = (tmp_path / "whole.jpg").read_bytes()
    whole = load_image(tmp_path / "whole.jpg").rgb
    for cut in (1, 2):  # the marker's last byte, the whole marker
        (tmp_path / "open.jpg").write_bytes(data[:-cut])
        loaded = load_image(tmp_path / "open.jpg")
        np.testing.assert_array_equal(loaded.rgb, whole)
        assert loaded.notes == ["JPEG end marker missing (the picture data is complete)"]
    for cut in range(len(data) // 3, len(data) - 40, 211):
        (tmp_path / "cut.jpg").write_bytes(data[:cut])
        with pytest.raises(ImageLoadError, match="truncated"):
            load_image(tmp_path / "cut.jpg")


def test_the_readable_formats_are_known_by_name_and_by_content(tmp_path):
    suffixes = readable_image_suffixes()
    assert {".png", ".jpg", ".jfif", ".gif", ".webp", ".tiff", ".ppm"} <= set(suffixes)
    assert not {".eps", ".ps", ".h5", ".grib"} & set(suffixes)  # unsafe, or stubs only
    Image.fromarray(_noise(4, 4)).save(tmp_path / "no-extension", format="PNG")
    assert looks_like_image(tmp_path / "no-extension")
    (tmp_path / "notes.png").write_text("not a picture")
    assert not looks_like_image(tmp_path / "notes.png")
    (tmp_path / "doc.eps").write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 1 1\n")
    assert not looks_like_image(tmp_path / "doc.eps")


def test_mpeg_is_not_offered_as_an_image(tmp_path):
    # Pillow reads an MPEG video's header but decodes no frame: .mpg was in the "Open image"
    # filter, and a dropped video was taken for a picture and then failed
    assert not {".mpg", ".mpeg"} & set(readable_image_suffixes())
    header = b"\x00\x00\x01\xb3" + bytes([0x14, 0x00, 0xF0]) + b"\x13\xff\xff\xe0\x18"
    (tmp_path / "clip.mpg").write_bytes(header + bytes(200))
    assert not looks_like_image(tmp_path / "clip.mpg")
    with pytest.raises(ImageLoadError, match="not an image format"):
        load_image(tmp_path / "clip.mpg")


def test_cmyk_jpeg(tmp_path):
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg", quality=95)
    loaded = load_image(tmp_path / "cmyk.jpg")
    assert np.allclose(loaded.rgb[8, 8], (255, 0, 0), atol=8)
    assert "CMYK converted to RGB" in loaded.notes
    assert not any("profile" in note for note in loaded.notes)  # it carries none
    # one that carries a profile: not applied, and now said so (it was dropped unsaid)
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(
        tmp_path / "profiled.jpg", quality=95, icc_profile=b"\0" * 132)
    notes = load_image(tmp_path / "profiled.jpg").notes
    assert "its CMYK colour profile was not applied: colours may differ from a " \
        "colour-managed viewer's" in notes


def _icc_profile(description: str, space: bytes, tags: dict[bytes, bytes]) -> bytes:
    """A small ICC v2 display profile: `space` b"RGB " or b"GRAY", with its description and
    the given tags (type and data, as _icc_xyz and _icc_gamma make them)."""
    text = description.encode("ascii") + b"\0"
    # textDescriptionType: the ASCII text, then empty Unicode and ScriptCode parts
    desc = b"desc" + bytes(4) + struct.pack(">I", len(text)) + text + bytes(4 + 4 + 3 + 67)
    tags = {b"desc": desc, b"wtpt": _icc_xyz(0.9642, 1.0, 0.8249), **tags}
    table, body = b"", b""
    offset = 128 + 4 + 12 * len(tags)
    for sig, data in tags.items():
        data += bytes(-len(data) % 4)
        table += struct.pack(">4sII", sig, offset + len(body), len(data))
        body += data
    size = offset + len(body)
    header = (struct.pack(">I4sI4s4s4s", size, b"lcms", 0x02100000, b"mntr", space, b"XYZ ")
              + bytes(12) + b"acsp" + bytes(24) + struct.pack(">I", 0)
              + _icc_xyz(0.9642, 1.0, 0.8249)[8:] + bytes(48))
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body


def _icc_xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ " + bytes(4) + b"".join(struct.pack(">i", round(v * 65536)) for v in (x, y, z))


def _icc_gamma(gamma: float) -> bytes:
    return b"curv" + bytes(4) + struct.pack(">IH", 1, round(gamma * 256))


# Adobe RGB (1998): its primaries adapted to D50, as its profile stores them; gamma 563/256
_ADOBE_RGB = _icc_profile("Adobe RGB (1998)", b"RGB ", {
    b"rXYZ": _icc_xyz(0.6097, 0.3111, 0.0195), b"gXYZ": _icc_xyz(0.2053, 0.6257, 0.0609),
    b"bXYZ": _icc_xyz(0.1492, 0.0632, 0.7446), b"rTRC": _icc_gamma(2.19921875),
    b"gTRC": _icc_gamma(2.19921875), b"bTRC": _icc_gamma(2.19921875)})


def _colour_managed(pixels: np.ndarray, icc: bytes) -> np.ndarray:
    """What a colour-managed viewer shows: the pixels converted from `icc` to sRGB."""
    from PIL import ImageCms
    mode = "L" if pixels.ndim == 2 else "RGB"
    out = ImageCms.profileToProfile(
        Image.fromarray(pixels, mode), ImageCms.ImageCmsProfile(io.BytesIO(icc)),
        ImageCms.createProfile("sRGB"), renderingIntent=ImageCms.Intent.PERCEPTUAL,
        outputMode="RGB")
    return np.asarray(out)


@pytest.mark.parametrize("name", ["wide.png", "wide.jpg", "wide.webp"])
def test_an_embedded_colour_profile_is_converted_to_srgb(tmp_path, name):
    # An Adobe RGB (or Display P3) photo stores its colours in that space: read as sRGB
    # they came in desaturated (a strong green 40,160,60 shown as a duller one)
    pytest.importorskip("PIL.ImageCms")
    pixels = np.zeros((24, 32, 3), np.uint8)
    pixels[:8] = (40, 160, 60)
    pixels[8:16] = (200, 30, 30)
    pixels[16:] = np.linspace(0, 255, 32).astype(np.uint8)[:, None]  # a grey ramp
    Image.fromarray(pixels).save(tmp_path / name, icc_profile=_ADOBE_RGB, quality=100)
    with Image.open(tmp_path / name) as im:
        stored = np.asarray(im.convert("RGB"))  # what the file holds, decoded
    loaded = load_image(tmp_path / name)
    expected = _colour_managed(stored, _ADOBE_RGB)
    assert np.abs(loaded.rgb.astype(int) - expected).max() <= 1
    assert np.abs(loaded.rgb.astype(int) - stored).max() > 20  # it did change them
    assert tuple(loaded.rgb[0, 0]) != tuple(stored[0, 0])
    assert loaded.notes == ["colour profile 'Adobe RGB (1998)' converted to sRGB"]


def test_a_colour_profile_is_applied_after_the_downscale(tmp_path):
    pytest.importorskip("PIL.ImageCms")
    Image.new("RGB", (400, 300), (40, 160, 60)).save(tmp_path / "big.png",
                                                     icc_profile=_ADOBE_RGB)
    loaded = load_image(tmp_path / "big.png", max_area=100 * 75)
    assert loaded.rgb.shape == (75, 100, 3)
    expected = _colour_managed(np.full((1, 1, 3), (40, 160, 60), np.uint8), _ADOBE_RGB)
    assert np.abs(loaded.rgb.astype(int) - expected[0, 0]).max() <= 1
    assert "colour profile 'Adobe RGB (1998)' converted to sRGB" in loaded.notes


def test_a_grey_picture_with_a_grey_profile_is_converted(tmp_path):
    pytest.importorskip("PIL.ImageCms")
    grey_profile = _icc_profile("Gray Gamma 1.8", b"GRAY", {b"kTRC": _icc_gamma(1.8)})
    ramp = np.tile(np.arange(256, dtype=np.uint8), (4, 1))
    Image.fromarray(ramp, "L").save(tmp_path / "grey.png", icc_profile=grey_profile)
    loaded = load_image(tmp_path / "grey.png")
    assert np.abs(loaded.rgb.astype(int) - _colour_managed(ramp, grey_profile)).max() <= 1
    assert loaded.notes == ["colour profile 'Gray Gamma 1.8' converted to sRGB"]


def test_an_srgb_profile_changes_nothing(tmp_path):
    ImageCms = pytest.importorskip("PIL.ImageCms")
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    pixels = _noise(8, 8)
    Image.fromarray(pixels).save(tmp_path / "srgb.png", icc_profile=srgb)
    loaded = load_image(tmp_path / "srgb.png")
    np.testing.assert_array_equal(loaded.rgb, pixels)
    assert loaded.notes == []


@pytest.mark.parametrize("profile", [b"not a profile at all", _ADOBE_RGB[:200]],
                         ids=["garbage", "cut-short"])
def test_a_colour_profile_not_understood_keeps_the_pixels(tmp_path, profile):
    pixels = _noise(8, 8)
    Image.fromarray(pixels).save(tmp_path / "odd.png", icc_profile=profile)
    loaded = load_image(tmp_path / "odd.png")
    np.testing.assert_array_equal(loaded.rgb, pixels)
    assert len(loaded.notes) == 1 and "colour profile" in loaded.notes[0] \
        and "not understood" in loaded.notes[0]


def test_without_colour_management_a_profile_is_noted_not_fatal(tmp_path, monkeypatch):
    from editor.core import image_io
    monkeypatch.setattr(image_io, "ImageCms", None)  # a Pillow built without LittleCMS
    pixels = _noise(8, 8)
    Image.fromarray(pixels).save(tmp_path / "wide.png", icc_profile=_ADOBE_RGB)
    loaded = load_image(tmp_path / "wide.png")
    np.testing.assert_array_equal(loaded.rgb, pixels)
    assert loaded.notes == ["colour profile ignored (this Pillow has no colour management)"]


def test_exif_rotation_applied(tmp_path):
    stored = np.zeros((32, 64, 3), np.uint8)
    stored[..., 2] = 255
    stored[:16, :16] = (255, 0, 0)  # a red block at the stored top-left
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6  # display = stored turned 90 degrees clockwise
    Image.fromarray(stored).save(tmp_path / "rot.jpg", exif=exif, quality=95)

    loaded = load_image(tmp_path / "rot.jpg")
    assert loaded.rgb.shape == (64, 32, 3) and loaded.original_size == (32, 64)
    assert np.allclose(loaded.rgb[8, 24], (255, 0, 0), atol=24)  # now at the top-right
    assert np.allclose(loaded.rgb[8, 8], (0, 0, 255), atol=24)
    assert "EXIF rotation applied" in loaded.notes


def test_huge_jpeg_is_decoded_at_reduced_scale(tmp_path, monkeypatch):
    path = tmp_path / "huge.jpg"
    Image.new("RGB", (8000, 6000), (200, 100, 50)).save(path, quality=80)
    decoded_sizes = []
    real_load = ImageFile.ImageFile.load

    def spy_load(self):
        decoded_sizes.append(self.size)
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy_load)
    loaded = load_image(path, max_side=1000)
    assert loaded.rgb.shape == (750, 1000, 3) and loaded.original_size == (8000, 6000)
    assert decoded_sizes[0] == (1000, 750)  # never 48 MP in memory
    assert np.allclose(loaded.rgb[375, 500], (200, 100, 50), atol=3)
    assert "reduced scale" in loaded.notes[0]


def test_downscale_keeps_aspect(tmp_path):
    Image.fromarray(_noise(90, 300)).save(tmp_path / "wide.png")
    loaded = load_image(tmp_path / "wide.png", max_side=100)
    assert loaded.rgb.shape == (30, 100, 3)
    assert loaded.notes == ["downscaled from 300x90 to 100x30"]


def test_big_pictures_keep_an_area_not_a_side(tmp_path):
    # A panorama keeps its short side: with a 4096 px longest side, a 20000 x 400 strip
    # came out 82 px tall, too little for any square crop to feed a generator.
    Image.new("RGB", (20000, 400), (10, 20, 30)).save(tmp_path / "pano.png")
    pano = load_image(tmp_path / "pano.png")
    assert pano.rgb.shape == (400, 20000, 3) and pano.notes == []
    Image.new("RGB", (8000, 2000), (10, 20, 30)).save(tmp_path / "wide.png")
    wide = load_image(tmp_path / "wide.png", max_area=1000 * 250)
    assert wide.rgb.shape == (250, 1000, 3)
    assert wide.notes == ["downscaled from 8000x2000 to 1000x250"]
    assert load_image(tmp_path / "wide.png", max_side=400).rgb.shape == (100, 400, 3)


def test_decompression_bomb_refused_before_decoding(tmp_path, monkeypatch):
    bomb = _png_claiming_size(tmp_path / "bomb.png", 100_000, 100_000)
    decoded = []
    real_load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda im: decoded.append(im) or real_load(im))
    with pytest.raises(ImageLoadError, match="decompression bomb") as info:
        load_image(bomb)
    assert decoded == []  # refused from the header alone
    assert "bomb.png" in str(info.value) and "100000x100000" in str(info.value)

    Image.new("RGB", (100, 100)).save(tmp_path / "small.png")
    with pytest.raises(ImageLoadError, match="limit"):
        load_image(tmp_path / "small.png", max_pixels=1000)


def test_animated_gif_gives_first_frame(tmp_path):
    frames = [Image.new("RGB", (4, 4), c) for c in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    loaded = load_image(tmp_path / "anim.gif")
    assert tuple(loaded.rgb[0, 0]) == (255, 0, 0)
    assert any("first frame" in n for n in loaded.notes)


def test_a_phone_photo_with_a_second_picture_is_not_called_animated(tmp_path):
    # phones save MPO JPEGs (the photo, then a preview or depth map): Pillow calls them
    # animated, and each opened photo was noted "animated image: first frame used"
    photo, preview = Image.new("RGB", (16, 12), (200, 40, 0)), Image.new("RGB", (4, 3))
    photo.save(tmp_path / "phone.jpg", format="MPO", save_all=True, append_images=[preview])
    loaded = load_image(tmp_path / "phone.jpg")
    assert loaded.format == "MPO" and loaded.rgb.shape == (12, 16, 3)
    assert np.allclose(loaded.rgb, (200, 40, 0), atol=8) and loaded.notes == []


def test_a_multi_page_tiff_says_page_not_frame(tmp_path):
    pages = [Image.new("RGB", (6, 4), c) for c in ((10, 10, 10), (200, 200, 200))]
    pages[0].save(tmp_path / "pages.tiff", save_all=True, append_images=pages[1:])
    loaded = load_image(tmp_path / "pages.tiff")
    assert tuple(loaded.rgb[0, 0]) == (10, 10, 10)
    assert loaded.notes == ["multi-page image: first page used"]


# ----------------------------------------------------------------------- crops and resizes

def test_center_crop_square():
    wide, tall = _noise(10, 16), _noise(16, 10)
    np.testing.assert_array_equal(center_crop_square(wide), wide[:, 3:13])
    np.testing.assert_array_equal(center_crop_square(tall), tall[3:13])
    out = center_crop_square(wide)
    assert out.flags.c_contiguous and out.flags.owndata


def test_crop_clamps_and_refuses_empty():
    img = _noise(10, 20)
    np.testing.assert_array_equal(crop(img, (2, 3, 8, 9)), img[3:9, 2:8])
    assert crop(img, (-5, -5, 100, 100)).shape == (10, 20, 3)
    with pytest.raises(ValueError, match="leaves nothing"):
        crop(img, (25, 0, 30, 5))


def test_resize():
    img = np.full((40, 60, 3), 123, np.uint8)
    assert resize(img, 16).shape == (16, 16, 3)
    small = resize(img, (30, 20))
    assert small.shape == (20, 30, 3) and (small == 123).all()  # no ringing on flat colour
    tiny = _noise(2, 2)
    np.testing.assert_array_equal(resize(tiny, 4, "nearest"), tiny.repeat(2, 0).repeat(2, 1))
    with pytest.raises(ValueError):
        resize(img.astype(np.float32), 8)


# ----------------------------------------------------------------------------------- export

RECIPE = {"prompt": "笑顔 — smiling face 😀, café <b>&</b>", "strength": 2.5, "seed": 7}


def test_png_export_round_trips_pixels_and_unicode_recipe(tmp_path):
    pixels = _noise(8, 12)
    saved = save_image(tmp_path / "out.png", pixels, recipe=RECIPE)
    assert saved.format == "PNG" and saved.size == (12, 8) and saved.recipe_embedded
    np.testing.assert_array_equal(load_image(saved.path).rgb, pixels)
    assert json.loads(read_recipe(saved.path)) == RECIPE
    with Image.open(saved.path) as im:
        info = im.info
    assert info["Software"].startswith("Latent Atelier") and RECIPE_KEY in info


def test_png_without_recipe(tmp_path):
    saved = save_image(tmp_path / "plain.png", _noise(4, 4))
    assert not saved.recipe_embedded and read_recipe(saved.path) is None


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_with_trailing_text(path: Path, kind: bytes, data: bytes) -> Path:
    """A PNG whose text chunk comes after the pixels (just before IEND), as some tools
    write them."""
    Image.fromarray(_noise(16, 16)).save(path)
    png = path.read_bytes()
    end = png.rindex(b"IEND") - 4
    path.write_bytes(png[:end] + _chunk(kind, data) + png[end:])
    return path


_KEY = RECIPE_KEY.encode() + b"\0"
_TEXT = '{"t": "café"}'


@pytest.mark.parametrize("kind, data", [
    (b"tEXt", _KEY + _TEXT.encode("latin-1")),
    (b"zTXt", _KEY + b"\0" + zlib.compress(_TEXT.encode("latin-1"))),
    (b"iTXt", _KEY + b"\0\0" + b"\0\0" + _TEXT.encode()),
    (b"iTXt", _KEY + b"\1\0" + b"en\0Rezept\0" + zlib.compress(_TEXT.encode())),
], ids=["tEXt", "zTXt", "iTXt", "iTXt-compressed"])
def test_a_recipe_after_the_pixels_is_read_without_decoding_them(tmp_path, monkeypatch,
                                                                 kind, data):
    # Pillow reaches text after the image data only by decoding it all: 3.6 s before a
    # big photo opened in the window, then decoded again to be shown
    path = _png_with_trailing_text(tmp_path / "late.png", kind, data)

    def no_decoding(self):
        raise AssertionError("the pixels were decoded to find the recipe")

    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", no_decoding)
    assert read_recipe(path) == _TEXT
    comment = b"Comment" + data[len(_KEY) - 1:]  # the same text, not a recipe
    assert read_recipe(_png_with_trailing_text(tmp_path / "other.png", kind, comment)) is None


def test_a_png_of_two_different_recipes_is_damaged_not_either(tmp_path):
    from editor.core.errors import DamagedRecipeError

    # Pillow kept the last recipe chunk before the pixels and the trailing-chunk reader
    # the first after them: a tool that added its own recipe chose the picture replayed
    saved = save_image(tmp_path / "a.png", _noise(8, 8), recipe={"t": "ours"})
    png = saved.path.read_bytes()
    ours = png[png.index(b"iTXt") - 4:]
    ours = ours[:struct.unpack(">I", ours[:4])[0] + 12]
    theirs = _chunk(b"iTXt", _KEY + b"\0\0\0\0" + b'{"t": "theirs"}')
    for name, changed in [("before.png", png.replace(ours, ours + theirs)),
                          ("after.png", png[:-12] + theirs + png[-12:])]:
        (tmp_path / name).write_bytes(changed)
        with pytest.raises(DamagedRecipeError, match="holds 2 different recipes"):
            read_recipe(tmp_path / name)
    (tmp_path / "same.png").write_bytes(png[:-12] + ours + png[-12:])  # one recipe, twice
    assert read_recipe(tmp_path / "same.png") == '{"t": "ours"}'


def test_damage_on_the_way_to_a_trailing_recipe_is_reported(tmp_path):
    path = _png_with_trailing_text(tmp_path / "late.png", b"iTXt", _KEY + b"\0\0\0\0{}")
    png = bytearray(path.read_bytes())
    png[png.rindex(b"IEND") - 5] ^= 1  # the recipe chunk's checksum
    path.write_bytes(bytes(png))
    with pytest.raises(ImageLoadError, match="checksum in the recipe"):
        read_recipe(path)
    cut = _truncated(tmp_path, "cut.png")  # its pixels cut short: no recipe can follow
    with pytest.raises(ImageLoadError, match="truncated"):
        read_recipe(cut)
    with pytest.raises(ImageLoadError) as caught:
        read_recipe(cut)
    assert "ends inside an IDAT chunk" in str(caught.value)  # not b'IDAT'
    assert str(caught.value).count("truncated") == 1


def test_damage_messages_say_it_once_in_words(tmp_path):
    path = _png_with_trailing_text(tmp_path / "late.png", b"iTXt", _KEY + b"\0\0\0\0{}")
    png = bytearray(path.read_bytes())
    png[png.rindex(b"IEND") - 5] ^= 1
    path.write_bytes(bytes(png))
    with pytest.raises(ImageLoadError) as caught:
        read_recipe(path)
    assert "recipe's iTXt chunk" in str(caught.value)
    with pytest.raises(ImageLoadError) as caught:
        load_image(_truncated(tmp_path, "cut.png"))
    message = str(caught.value)
    assert "the file is truncated" in message and message.count("truncated") == 1


def test_a_png_without_its_end_chunk_is_read_like_its_pixels(tmp_path):
    # Pillow reads a PNG whose IEND chunk is missing (cut downloads, some writers): the
    # window refused it ("the PNG has no end chunk") while the CLI inverted it
    pixels = _noise(16, 16)
    Image.fromarray(pixels).save(tmp_path / "whole.png")
    png = (tmp_path / "whole.png").read_bytes()
    assert png.endswith(_chunk(b"IEND", b""))
    for cut in (12, 6):  # the whole end chunk, half of it
        (tmp_path / "noend.png").write_bytes(png[:-cut])
        np.testing.assert_array_equal(load_image(tmp_path / "noend.png").rgb, pixels)
        assert read_recipe(tmp_path / "noend.png") is None
    # a recipe after the pixels is still found; a chunk cut short after them is no recipe
    late = _png_with_trailing_text(tmp_path / "late.png", b"tEXt", _KEY + b'{"t": 1}')
    late_png = late.read_bytes()
    (tmp_path / "late_noend.png").write_bytes(late_png[:-12])
    assert read_recipe(tmp_path / "late_noend.png") == '{"t": 1}'
    (tmp_path / "note_cut.png").write_bytes(png[:-12] + _chunk(b"tEXt", b"Comment\0hi")[:-3])
    np.testing.assert_array_equal(load_image(tmp_path / "note_cut.png").rgb, pixels)
    assert read_recipe(tmp_path / "note_cut.png") is None


@pytest.mark.parametrize("name", ["out.jpg", "out.webp"])
def test_jpeg_and_webp_export_with_recipe(tmp_path, name):
    pixels = np.full((16, 24, 3), (30, 160, 220), np.uint8)
    recipe = json.dumps(RECIPE, ensure_ascii=False) + "\r\n"  # \r must survive XML
    saved = save_image(tmp_path / name, pixels, recipe=recipe, quality=90)
    assert saved.recipe_embedded
    loaded = load_image(saved.path)
    assert loaded.rgb.shape == (16, 24, 3)
    assert np.allclose(loaded.rgb, pixels, atol=6)
    assert read_recipe(saved.path) == recipe


@pytest.mark.parametrize("name", ["out.jpg", "out.webp", "out.png"])
def test_a_recipe_with_characters_xml_cannot_carry_is_still_embedded(tmp_path, name):
    # U+FFFE / U+FFFF in a prompt: JSON keeps them raw, XML refuses them, and the JPEG or
    # WebP went out without its recipe ("too large for a JPEG's metadata", of 1 KB)
    recipe = {"target": "face with sunglasses \uffff", "neutral": "a \\\ufffe face"}
    saved = save_image(tmp_path / name, _noise(8, 8), recipe=recipe)
    assert saved.recipe_embedded
    assert json.loads(read_recipe(saved.path)) == recipe


@pytest.mark.parametrize("name", ["out.jpg", "out.webp"])
def test_a_damaged_recipe_in_xmp_is_damaged_not_absent(tmp_path, name):
    from editor.core.errors import DamagedRecipeError

    # it read as "carries no Latent Atelier recipe" (a PNG's damaged recipe is damaged):
    # the window then inverted the pixels as a stranger's picture
    saved = save_image(tmp_path / name, _noise(8, 8), recipe={"t": "x"})
    data = saved.path.read_bytes()
    assert data.count(b"</atelier:recipe>") == 1
    saved.path.write_bytes(data.replace(b"</atelier:recipe>", b"</atelier:recipX>"))
    with pytest.raises(DamagedRecipeError, match="recipe in .* is damaged") as error:
        read_recipe(saved.path)
    assert error.value.why.startswith("its Latent Atelier recipe is damaged (the XMP")
    assert load_image(saved.path).rgb.shape == (8, 8, 3)  # the picture itself still opens


def test_a_jpeg_of_noise_like_pixels_is_written(tmp_path):
    # Pillow sizes the optimised JPEG pass's buffer from the pixel count: noise with a
    # large recipe broke it ("broken data stream when writing image file")
    saved = save_image(tmp_path / "noise.jpg", _noise(256, 256), recipe={"t": "x"},
                       quality=95)
    assert saved.recipe_embedded and read_recipe(saved.path) == '{"t": "x"}'
    assert load_image(saved.path).rgb.shape == (256, 256, 3)


def test_jpeg_recipe_too_big_for_a_marker_is_skipped(tmp_path):
    saved = save_image(tmp_path / "big.jpg", _noise(4, 4), recipe={"w": "x" * 70_000})
    assert saved.path.exists() and not saved.recipe_embedded
    assert read_recipe(saved.path) is None


def test_integer_upscale(tmp_path):
    pixels = _noise(5, 7)
    exact = save_image(tmp_path / "x4.png", pixels, scale=4, upscale_filter="nearest")
    assert exact.size == (28, 20)
    np.testing.assert_array_equal(load_image(exact.path).rgb, pixels.repeat(4, 0).repeat(4, 1))
    smooth = save_image(tmp_path / "x4s.png", pixels, scale=4)
    assert load_image(smooth.path).rgb.shape == (20, 28, 3)


def test_overwrite_refused_unless_asked(tmp_path):
    path = tmp_path / "out.png"
    path.write_bytes(b"precious")
    with pytest.raises(ImageExistsError, match="exists") as info:
        save_image(path, _noise(4, 4))
    assert isinstance(info.value, FileExistsError) and isinstance(info.value, ImageSaveError)
    assert path.read_bytes() == b"precious"
    save_image(path, _noise(4, 4), overwrite=True)
    assert load_image(path).rgb.shape == (4, 4, 3)


@pytest.mark.parametrize("hard_links", [True, False])
def test_a_file_made_while_an_export_was_written_is_kept(tmp_path, monkeypatch, hard_links):
    # the look for an existing file came before the sync and the rename, which replaced
    # whatever appeared meanwhile: two exports to one new name both "succeeded" (30 of 30
    # tries in helper-120's race), one file silently lost
    import errno

    import editor.core.paths as paths

    if not hard_links:  # FAT, some network mounts: a look just before the rename
        def no_links(*args):
            raise OSError(errno.EPERM, "Operation not permitted")

        monkeypatch.setattr(paths.os, "link", no_links)
    path = tmp_path / "out.png"
    sync = paths._fsync_file

    def another_writer_first(tmp):
        sync(tmp)
        path.write_bytes(b"the other export")

    monkeypatch.setattr(paths, "_fsync_file", another_writer_first)
    with pytest.raises(ImageExistsError, match="made meanwhile"):
        save_image(path, _noise(4, 4))
    assert path.read_bytes() == b"the other export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]  # no temporary left
    save_image(path, _noise(4, 4), overwrite=True)  # asked: replaced
    assert load_image(path).rgb.shape == (4, 4, 3)


def test_two_exports_to_one_new_name_at_once_keep_one_and_refuse_the_other(tmp_path):
    import threading

    path, barrier, outcomes = tmp_path / "same.png", threading.Barrier(2), []

    def export(value):
        barrier.wait()
        try:
            save_image(path, np.full((64, 64, 3), value, np.uint8))
            outcomes.append(("saved", value))
        except ImageExistsError:
            outcomes.append(("refused", value))

    for _ in range(5):
        path.unlink(missing_ok=True)
        outcomes.clear()
        threads = [threading.Thread(target=export, args=(v,)) for v in (10, 200)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        (saved,) = [v for what, v in outcomes if what == "saved"]
        assert len(outcomes) == 2 and int(load_image(path).rgb[0, 0, 0]) == saved


def _failing_encoder(im, fp, filename):
    fp.write(b"\x89PNG half an image")
    raise OSError("disk full")


def test_failed_export_leaves_nothing_behind(tmp_path, monkeypatch):
    monkeypatch.setitem(Image.SAVE, "PNG", _failing_encoder)
    with pytest.raises(ImageSaveError, match="disk full") as info:
        save_image(tmp_path / "out.png", _noise(4, 4))
    assert "out.png" in str(info.value)
    assert os.listdir(tmp_path) == []  # neither the export nor its temp file

    old = tmp_path / "old.png"
    old.write_bytes(b"previous export")
    with pytest.raises(ImageSaveError):
        save_image(old, _noise(4, 4), overwrite=True)
    assert old.read_bytes() == b"previous export" and os.listdir(tmp_path) == ["old.png"]


@pytest.mark.parametrize("fps, frame_ms", [(12, 80), (15, 70), (40, 20), (30, 30), (7, 140)])
def test_a_gif_frame_lasts_the_nearest_whole_hundredth(tmp_path, fps, frame_ms):
    # GIF counts in hundredths: Pillow cut 1000/fps down, so 12 fps played 80 ms frames
    # (the dialog promised 83) and 40 fps played as fast as 50
    from editor.core.image_io import gif_frame_ms

    assert gif_frame_ms(fps) == frame_ms
    frames = [np.full((4, 4, 3), v, np.uint8) for v in (0, 120)]
    saved = save_animation(tmp_path / "a.gif", frames, fps=fps)
    with Image.open(saved.path) as im:
        im.seek(1)
        assert im.info["duration"] == frame_ms


def test_export_argument_errors(tmp_path):
    with pytest.raises(ImageSaveError, match="extension"):
        save_image(tmp_path / "out.bmp", _noise(4, 4))
    with pytest.raises(ValueError):
        save_image(tmp_path / "out.png", np.zeros((4, 4), np.uint8))
    saved = save_image(tmp_path / "noext", _noise(4, 4), format="jpg")
    with Image.open(saved.path) as im:
        assert im.format == "JPEG"


@pytest.mark.parametrize("name, fmt", [("sweep.gif", "GIF"), ("sweep.webp", "WEBP")])
def test_animation_export(tmp_path, name, fmt):
    frames = [np.full((8, 8, 3), v, np.uint8) for v in (0, 80, 160, 240)]
    saved = save_animation(tmp_path / name, frames, fps=10)
    with Image.open(saved.path) as im:
        assert im.format == fmt and im.n_frames == 4 and im.info.get("loop") == 0
        im.seek(1)
        im.load()  # WebP reports a frame's duration once it is decoded
        assert im.info["duration"] == 100
    with pytest.raises(ImageExistsError):
        save_animation(tmp_path / name, frames, fps=10)


def test_read_recipe_of_non_image(tmp_path):
    path = _make_bad(tmp_path, "text")
    with pytest.raises(ImageLoadError, match="not an image"):
        read_recipe(path)


def test_an_unreadable_file_is_called_so_by_both_readers(tmp_path, monkeypatch):
    # read_recipe (which the window calls first) said "corrupt or unreadable
    # (PermissionError: ...)" where load_image says "permission denied"
    from editor.core import image_io
    save_image(tmp_path / "locked.png", _noise(4, 4), recipe={"t": 1})

    def refused(file, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(file))

    monkeypatch.setattr(image_io, "open", refused, raising=False)
    for read in (read_recipe, load_image):
        with pytest.raises(ImageLoadError) as caught:
            read(tmp_path / "locked.png")
        assert str(caught.value).endswith("locked.png': permission denied")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="needs file permissions that bind (root reads any file)")
def test_a_file_without_read_permission_is_called_so(tmp_path):
    path = tmp_path / "locked.png"
    save_image(path, _noise(4, 4), recipe={"t": 1})
    path.chmod(0)
    try:
        for read in (read_recipe, load_image):
            with pytest.raises(ImageLoadError, match="permission denied"):
                read(path)
    finally:
        path.chmod(0o644)


def test_a_failed_write_names_the_file_not_its_temporary(tmp_path, monkeypatch):
    import errno

    from editor.core import paths

    def refuse(_tmp, _dst):
        raise OSError(errno.EROFS, "Read-only file system", str(_tmp))

    monkeypatch.setattr(paths, "replace_file", refuse)
    monkeypatch.setattr(paths.os, "link", refuse)  # a new file is put in place by a link
    target = tmp_path / "x.png"
    with pytest.raises(ImageSaveError) as info:
        save_image(target, np.zeros((4, 4, 3), np.uint8))
    message = str(info.value)
    assert str(target) in message and "Read-only file system" in message
    assert ".tmp" not in message and list(tmp_path.iterdir()) == []


def test_overwriting_through_a_link_replaces_the_file_it_leads_to(tmp_path):
    # the link itself was replaced by the new file, and the file it led to stayed as it was
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "target.png"
    save_image(target, _noise(4, 4, seed=1))
    link = tmp_path / "link.png"
    link.symlink_to(target)
    save_image(link, _noise(4, 4, seed=2), recipe={"t": "new"}, overwrite=True)
    assert link.is_symlink() and read_recipe(target) == '{"t": "new"}'
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["link.png", "real", "target.png"]


def test_a_link_that_leads_nowhere_is_named(tmp_path):
    loop = tmp_path / "loop.png"
    loop.symlink_to(loop)
    with pytest.raises(ImageLoadError, match="link that leads nowhere"):
        load_image(loop)
    dangling = tmp_path / "gone.png"
    dangling.symlink_to(tmp_path / "missing.png")
    with pytest.raises(ImageLoadError, match="link that leads nowhere"):
        load_image(dangling)


@pytest.mark.parametrize("name", ["sweep.gif", "sweep.webp"])
def test_animation_frames_are_upscaled_as_the_encoder_takes_them(tmp_path, name):
    # Frames came in upscaled and all at once, and the write could be neither watched nor
    # stopped: a long GIF encode sat at "a few seconds left" and ignored Cancel.
    frames = [np.full((4, 4, 3), v, np.uint8) for v in (0, 80, 160)]
    frames += frames[-2:0:-1]  # a bounce: the same array again
    calls = []
    saved = save_animation(tmp_path / name, frames, fps=10, scale=3, upscale_filter="nearest",
                           progress=lambda done, total: calls.append((done, total)))
    assert calls == [(i, 4) for i in range(4)] and saved.size == (12, 12)
    with Image.open(saved.path) as im:
        assert im.size == (12, 12) and im.n_frames == 4
        shown = []
        for i in range(im.n_frames):  # each frame written where it belongs
            im.seek(i)
            shown.append(int(np.asarray(im.convert("RGB")).mean()))
    assert shown == pytest.approx([0, 80, 160, 80], abs=4)

    class Stop(Exception):
        pass

    def stop_at_the_third(done, total):
        if done == 2:
            raise Stop

    with pytest.raises(Stop):  # as it is, and nothing is left behind
        save_animation(tmp_path / ("again-" + name), frames, fps=10, progress=stop_at_the_third)
    assert sorted(os.listdir(tmp_path)) == [name]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
@pytest.mark.parametrize("name", ["picture.png", "sweep.gif"])
def test_an_export_into_a_pipe_writes_into_it_without_overwrite(tmp_path, name):
    # the command line lets a device or a pipe through without --overwrite (nothing is
    # replaced), but the export then refused it ("the file exists … pass --overwrite"),
    # and with --overwrite the encoder could not seek in it ("not seekable")
    import stat

    from tests.conftest import reading_fifo

    fifo = tmp_path / name
    os.mkfifo(fifo)
    frame = np.zeros((8, 8, 3), np.uint8)
    with reading_fifo(fifo) as got:
        if name.endswith(".gif"):
            save_animation(fifo, [frame, frame + 9], fps=10)
        else:
            save_image(fifo, frame)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and os.listdir(tmp_path) == [fifo.name]
    assert Image.open(io.BytesIO(got[0])).size == (8, 8)


def test_a_name_too_long_to_export_to_is_named_once(tmp_path):
    # "Cannot export to '日日…': [Errno 36] File name too long: '日日…'": the error's own
    # text named the 270-byte name a second time
    from editor.core.image_io import ImageSaveError, check_export_path

    path = tmp_path / ("日" * 90 + ".png")
    with pytest.raises(ImageSaveError) as caught:
        check_export_path(path)
    assert str(caught.value) == f"Cannot export to '{path}': File name too long"
