"""INT8 models (docs/models.md): derived at set-up to the recorded md5, masks close to FP32, precision in meta."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pyworker.models import MODELS, derive, store
from pyworker.models.quantize import CALIBRATION_DIR
from pyworker.models.registry import INT8, candidates

from .workerproc import REPO, WorkerProcess

SAMPLES = REPO / "samples"

# The derivation's pinned onnxruntime (1.32) has no CPython 3.10 wheel: there `models install` says the INT8
# files are not derived and FP32 serves (docs/models.md#python-310). Every other interpreter runs these tests.
pytestmark = pytest.mark.skipif(sys.version_info < (3, 11), reason="INT8 derivation needs CPython >= 3.11")


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty weights home holding only links to the FP32 files `make setup` installed."""
    real = store.model_home()
    monkeypatch.setenv("U2NET_HOME", str(tmp_path))
    for name in INT8:
        (tmp_path / f"{name}.onnx").symlink_to(real / f"{name}.onnx")
    return tmp_path


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(INT8))
def test_the_derived_file_has_the_recorded_md5_and_a_second_install_is_a_no_op(home: Path, name: str) -> None:
    path = derive.install_int8(name)
    assert path == home / f"{name}.int8.onnx"
    assert store.md5_of(path) == INT8[name].md5
    first = path.stat().st_mtime_ns
    assert derive.install_int8(name) == path and path.stat().st_mtime_ns == first


def test_install_derives_int8_where_the_name_asks_or_the_plain_name_runs_it(monkeypatch) -> None:
    monkeypatch.setattr(derive, "INT8_BY_DEFAULT", ())
    assert derive.install_plan(["u2netp", "modnet", "face-mesh"]) == [
        ("u2netp", False),
        ("modnet", False),
        ("face-mesh", False),
    ]
    assert derive.install_plan(["u2netp-int8", "u2netp"]) == [("u2netp", True)]
    monkeypatch.setattr(derive, "INT8_BY_DEFAULT", ("modnet",))
    assert derive.install_plan(["modnet"]) == [("modnet", True)]
    with pytest.raises(store.ModelStoreError, match="no INT8 derivation for 'u2net'"):
        derive.install_plan(["u2net-int8"])


def test_a_missing_int8_file_names_the_command_that_derives_it(home: Path) -> None:
    from pyworker.errors import WorkerError
    from pyworker.models.cache import SessionCache

    with pytest.raises(WorkerError, match=r"models install u2netp-int8$"):
        SessionCache(threads=1).check("u2netp-int8")
    SessionCache(threads=1).check("u2netp")  # its FP32 file is there


def test_a_derived_file_with_another_md5_is_not_installed(home: Path, monkeypatch) -> None:
    monkeypatch.setattr(INT8["u2netp"], "md5", "0" * 32)
    with pytest.raises(store.ModelStoreError, match=r"expected 0{32}"):
        derive.install_int8("u2netp")
    assert store.find_weights("u2netp.int8") is None


def test_the_calibration_photos_are_the_samples() -> None:
    """The package ships copies of samples/ (an installed wheel has no samples/): the same bytes."""
    for photo in CALIBRATION_DIR.glob("*.jpg"):
        assert photo.read_bytes() == (SAMPLES / photo.name).read_bytes(), photo.name


def _masks(name: str, photo: str) -> tuple[np.ndarray, np.ndarray]:
    rgb = Image.open(SAMPLES / photo).convert("RGB")
    fp32 = MODELS[name](store.find_weights(name), threads=2)
    int8 = INT8[name](store.find_weights(INT8[name].name), threads=2)
    return np.asarray(fp32.predict(rgb)), np.asarray(int8.predict(rgb))


def _iou_and_mad(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    fa, fb = a >= 128, b >= 128
    iou = float(np.logical_and(fa, fb).sum() / np.logical_or(fa, fb).sum())
    return iou, float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


# modnet is the portrait model: the thresholds of issue 20 on the samples that are portraits.
@pytest.mark.parametrize("photo", ["astronaut.jpg", "camera.jpg"])
def test_modnet_int8_alpha_stays_within_the_thresholds_on_portraits(photo: str) -> None:
    iou, mad = _iou_and_mad(*_masks("modnet", photo))
    assert iou >= 0.98 and mad <= 3.0, (photo, iou, mad)


# u2netp: 0.97 holds on the photos of people and objects; the cat (chelsea) is 0.91 (docs/models.md), which is
# why u2netp's plain name stays FP32. The bar on it guards against a recipe that gets worse.
@pytest.mark.parametrize(
    ("photo", "bar"), [("astronaut.jpg", 0.97), ("camera.jpg", 0.97), ("coffee.jpg", 0.97), ("chelsea.jpg", 0.90)]
)
def test_u2netp_int8_mask_against_fp32(photo: str, bar: float) -> None:
    iou, _ = _iou_and_mad(*_masks("u2netp", photo))
    assert iou >= bar, (photo, iou)


def test_plain_names_are_fp32_and_suffixes_choose() -> None:
    assert candidates("u2netp") == [MODELS["u2netp"]] and candidates("modnet") == [MODELS["modnet"]]
    assert candidates("u2netp-int8") == [INT8["u2netp"]] and candidates("modnet-fp32") == [MODELS["modnet"]]


def test_the_worker_reports_the_precision_it_ran() -> None:
    proc = WorkerProcess("--threads", "2", "--max-models", "3")
    try:
        photo = (SAMPLES / "astronaut.jpg").read_bytes()
        seen = {}
        for model in (None, "u2netp-int8", "u2netp-fp32", "modnet-int8"):
            reply = proc.remove(photo, model=model, max_size=128)
            assert reply["ok"] is True, reply
            seen[model] = (reply["meta"]["model"], reply["meta"]["precision"])
        assert seen == {
            None: ("u2netp", "fp32"),
            "u2netp-int8": ("u2netp-int8", "int8"),
            "u2netp-fp32": ("u2netp-fp32", "fp32"),
            "modnet-int8": ("modnet-int8", "int8"),
        }
        reply = proc.remove(photo, preset="avatar")
        assert reply["ok"] is True and (reply["meta"]["model"], reply["meta"]["precision"]) == ("modnet", "fp32")
        reply = proc.remove(photo, preset="avatar", model="modnet-int8")
        assert reply["ok"] is True and reply["meta"]["precision"] == "int8"
    finally:
        proc.close()
