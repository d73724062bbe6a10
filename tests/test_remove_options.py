"""Every option of `remove`, through the real worker, checked on the decoded result."""

from __future__ import annotations

import numpy as np
import pytest

from .images import decode, encode, subject_scene
from .workerproc import WorkerProcess

SCENE, TRUTH = subject_scene((300, 400))
SCENE_PNG = encode(SCENE)
SCENE_JPEG = encode(SCENE, "JPEG", quality=92)


def _ok(reply: dict) -> dict:
    assert reply["ok"] is True, reply.get("error")
    return reply


def test_default_is_transparent_png_at_input_size_when_small(worker: WorkerProcess) -> None:
    reply = _ok(worker.remove(SCENE_JPEG))
    out = decode(reply["image"])
    assert out.mode == "RGBA" and out.size == (300, 400)
    alpha = np.asarray(out.getchannel("A"))
    assert alpha[5, 5] < 10 and alpha[380, 150] > 245  # corner background, body subject


def test_max_size_bounds_the_longest_side_and_never_upscales(worker: WorkerProcess) -> None:
    small = _ok(worker.remove(SCENE_PNG, max_size=100))
    assert (small["meta"]["width"], small["meta"]["height"]) == (75, 100)
    assert decode(small["image"]).size == (75, 100)
    assert (small["meta"]["input_width"], small["meta"]["input_height"]) == (300, 400)
    same = _ok(worker.remove(SCENE_PNG, max_size=2000))
    assert decode(same["image"]).size == (300, 400)
    full = _ok(worker.remove(SCENE_PNG, max_size=0))
    assert decode(full["image"]).size == (300, 400)


@pytest.mark.parametrize("colour", ["#2255aa", [34, 85, 170], "2255AA"])
def test_bg_color_fills_the_background(worker: WorkerProcess, colour) -> None:
    out = decode(_ok(worker.remove(SCENE_PNG, bg_color=colour))["image"])
    assert out.mode == "RGB"
    px = np.asarray(out)
    assert np.abs(px[5, 5].astype(int) - [34, 85, 170]).max() <= 2  # background
    assert np.abs(px[380, 150].astype(int) - [40, 60, 160]).max() <= 6  # the subject's own colour


@pytest.mark.parametrize(
    ("fmt", "mime", "mode"),
    [("png", "image/png", "RGBA"), ("webp", "image/webp", "RGBA"), ("jpeg", "image/jpeg", "RGB")],
)
def test_formats(worker: WorkerProcess, fmt: str, mime: str, mode: str) -> None:
    reply = _ok(worker.remove(SCENE_PNG, format=fmt))
    out = decode(reply["image"])
    assert reply["mime"] == mime and out.format == fmt.upper() and out.mode == mode


def test_jpeg_without_bg_color_gets_white(worker: WorkerProcess) -> None:
    out = np.asarray(decode(_ok(worker.remove(SCENE_PNG, format="jpeg"))["image"]))
    assert out[5, 5].min() >= 245


def test_only_mask_is_grayscale_png_matching_the_subject(worker: WorkerProcess) -> None:
    reply = _ok(worker.remove(SCENE_PNG, only_mask=True, format="webp"))
    out = decode(reply["image"])
    assert reply["mime"] == "image/png" and out.mode == "L"
    mask = np.asarray(out) > 127
    assert np.logical_and(mask, TRUTH).sum() / np.logical_or(mask, TRUTH).sum() > 0.9


def test_refine_gives_a_clean_binary_core_with_a_feathered_edge(worker: WorkerProcess) -> None:
    raw = np.asarray(decode(_ok(worker.remove(SCENE_PNG, only_mask=True))["image"]))
    refined = np.asarray(decode(_ok(worker.remove(SCENE_PNG, only_mask=True, refine=True))["image"]))
    assert refined.shape == raw.shape
    # Feathered: soft values exist, but only along the edge; the core agrees with the raw mask.
    soft = np.logical_and(refined > 10, refined < 245).sum()
    assert 0 < soft < 0.05 * refined.size
    assert np.mean((refined > 127) == (raw > 127)) > 0.98


def test_trim_crops_to_the_subject_plus_padding(worker: WorkerProcess) -> None:
    tight = _ok(worker.remove(SCENE_PNG, trim=True))
    padded = _ok(worker.remove(SCENE_PNG, trim=True, padding=20))
    assert tight["meta"]["crop_mode"] == "trim"
    tw, th = tight["meta"]["width"], tight["meta"]["height"]
    assert tw < 300 and th < 400  # the head leaves room above, the body is narrower than the frame
    assert (padded["meta"]["width"], padded["meta"]["height"]) == (tw + 40, th + 40)
    left, top, right, bottom = tight["meta"]["crop_box"]
    assert 0 < top < 0.2 * 400 and 0 <= left < 0.2 * 300
    assert (right - left, bottom - top) == (tw, th)
    alpha = np.asarray(decode(padded["image"]).getchannel("A"))
    assert alpha[:10, :].max() < 10  # the 20 px margin above the head is transparent


def test_trim_with_bg_color_fills_the_padding(worker: WorkerProcess) -> None:
    out = np.asarray(decode(_ok(worker.remove(SCENE_PNG, trim=True, padding=30, bg_color="#ffffff"))["image"]))
    assert out[0, 0].min() >= 250


def test_options_are_validated(worker: WorkerProcess) -> None:
    cases = {
        "max_size": -1,
        "format": "gif",
        "bg_color": "blue",
        "only_mask": 1,
        "padding": 100000,
        "crop": "body",
        "preset": "nope",
        "colour": "#fff",
    }
    for key, value in cases.items():
        reply = worker.remove(SCENE_PNG, **{key: value})
        assert reply["ok"] is False and reply["error"]["code"] == "bad_request", (key, reply)
        assert repr(key)[1:-1] in reply["error"]["message"] or repr(value) in reply["error"]["message"]
    assert worker.request("remove", image=SCENE_PNG, options=[1, 2])["error"]["code"] == "bad_request"


def test_unknown_and_missing_models(spawn, tmp_path) -> None:
    from pyworker.models.store import find_weights

    # A model home holding only u2netp, whatever else this machine has fetched.
    (tmp_path / "u2netp.onnx").symlink_to(find_weights("u2netp"))
    w = spawn("--threads", "1", env={"U2NET_HOME": str(tmp_path)})
    assert w.ready["models_available"] == ["u2netp"]
    unknown = w.remove(SCENE_PNG, model="u3net")
    assert unknown["error"]["code"] == "model_unavailable" and "u2netp" in unknown["error"]["message"]
    missing = w.remove(SCENE_PNG, model="silueta")
    assert missing["error"]["code"] == "model_unavailable"
    assert "models install silueta" in missing["error"]["message"] and str(tmp_path) in missing["error"]["message"]
    assert _ok(w.remove(SCENE_PNG, model="u2netp"))["meta"]["model"] == "u2netp"
