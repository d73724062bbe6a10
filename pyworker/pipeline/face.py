"""Faces and their landmarks on onnxruntime: MediaPipe BlazeFace (boxes) and Face Mesh (468 points, the chin).

API (what pipeline/idphoto and the compliance report use):

- `Face`: one face in the pixel coordinates of the image it was found in. Fields `box` (left, top, right,
  bottom), `score` (0-1), `right_eye`, `left_eye` (the person's: `right_eye` is on the image's left), `nose`,
  `mouth_right`, `mouth_left`, all plain Python numbers; `mesh`: None, or a 468x2 float array (MediaPipe Face
  Mesh, same coordinates). Derived: `chin` (mesh point 152, the front of the chin; None without a mesh),
  `crown_hint` (point 10, the top of the forehead: a lower bound for the crown, not the crown), `roll_deg`
  (the eye line's angle, positive when the image-right eye is lower), `axis_roll_deg` (the same angle read
  from the mesh's midline, forehead to chin: a second estimate that shares no point with the eye line; None
  without a mesh), `eyes_mid`, `mouth_mid`, `eye_distance`, `height`, `landmarks`; `map(fn, box)`,
  `scaled(k)`, `rotated(degrees, centre)` move every point, mesh included; `to_wire(k)` for meta.
- `detect(rgb, refined=True) -> list[Face]`: every face, best score first, each refined (below); a detection
  the mesh calls no face is dropped. `refined=False`: the detector's box and five points only (no mesh; both
  mouth corners are BlazeFace's mouth centre): one run of a 256x256 network, whatever the image size.
- `refine(rgb, face) -> Face`: the face with its mesh, the eyes at the centres of the mesh's eye contours,
  nose and mouth corners from the mesh, the box the mesh's (forehead to chin, cheek to cheek). Three
  passes, each on a 192x192 crop turned so the previous pass's eyes are level, so a tilted head is measured
  upright; a face refined before starts from its mesh.
  Returns `face` unchanged (mesh None) when the mesh does not see a face there (presence < 0.5) or the eyes
  are under MIN_EYE_PX apart.
- `measure(rgb, near=None) -> Face | None`: detect + refine of one face of an image, for the report, run on
  the final output, independent of the estimate that placed the frame: the face whose eyes are nearest
  `near` (where the framed person's eyes should be; None when no face has its eyes within one of its eye
  distances of it: a neighbour is never measured in the person's place), or without `near` the largest.
- `eye_points(rgb, face)`: each eye's 16-point outline and 5 iris points from MediaPipe Iris (a 64x64 crop per
  eye, placed by the mesh's eye corners), the image's left eye first; None without a mesh.
- `loaded() -> bool`: whether this process has loaded the face models (lazily, by the first job that crops).

Why these models, and their figures: docs/id-photos.md#detector.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from .. import logs, memory
from ..errors import WorkerError
from ..models.blazeface import BlazeFace
from ..models.face_weights import DETECTOR, FACE_WEIGHTS, IRIS, MESH
from ..models.facemesh import FaceMesh
from ..models.irislandmark import IrisLandmark
from ..models.store import find_weights, install_command, model_home

Box = tuple[int, int, int, int]
Point = tuple[float, float]

LANDMARK_NAMES = ("right_eye", "left_eye", "nose", "mouth_right", "mouth_left")
# Face Mesh indices. Each eye's contour (16 points, lids and corners); its centre is the eye's.
RIGHT_EYE = (33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173)
LEFT_EYE = (263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398)
NOSE_TIP, MOUTH_RIGHT, MOUTH_LEFT, CHIN, FOREHEAD = 1, 61, 291, 152, 10
# The midline, forehead to chin, for the second roll estimate (points on the face's plane of symmetry).
MIDLINE = (10, 151, 9, 8, 168, 6, 197, 195, 5, 4, 1, 2, 164, 0, 17, 18, 200, 199, 175, 152)
# Refinement: the first crop is a square of CROP_SCALE x the detector's box, centred on it, turned by the
# detector's eyes; each next one CROP_SCALE x the previous mesh's extent (MediaPipe's own recipe: 1.5).
CROP_SCALE = 1.5
REFINE_PASSES = 3
MIN_PRESENCE = 0.5  # Face Mesh's own threshold for "a face is there"
MIN_EYE_PX = 8.0  # below this the mesh has ~2 px per eye: no landmark is worth keeping

_lock = threading.Lock()
_models: dict[str, Any] = {}


@dataclass(frozen=True)
class Face:
    """One face, in the pixel coordinates of the image it was found in (module docstring)."""

    box: Box  # left, top, right, bottom
    score: float  # 0-1
    right_eye: Point
    left_eye: Point
    nose: Point
    mouth_right: Point
    mouth_left: Point
    mesh: np.ndarray | None = field(default=None, compare=False, repr=False)  # 468x2, or None

    @property
    def eyes_mid(self) -> Point:
        return ((self.right_eye[0] + self.left_eye[0]) / 2, (self.right_eye[1] + self.left_eye[1]) / 2)

    @property
    def mouth_mid(self) -> Point:
        return ((self.mouth_right[0] + self.mouth_left[0]) / 2, (self.mouth_right[1] + self.mouth_left[1]) / 2)

    @property
    def eye_distance(self) -> float:
        return math.dist(self.right_eye, self.left_eye)

    @property
    def roll_deg(self) -> float:
        """Angle of the eye line from level, degrees; positive when the image-right eye is lower."""
        (x1, y1), (x2, y2) = self.right_eye, self.left_eye
        return math.degrees(math.atan2(y2 - y1, x2 - x1))

    @property
    def axis_roll_deg(self) -> float | None:
        """The roll read from the mesh's midline (forehead to chin) instead of the eyes; same sign."""
        if self.mesh is None:
            return None
        pts = self.mesh[list(MIDLINE)]
        centred = pts - pts.mean(axis=0)
        # The principal axis of the midline points, pointed from the forehead down to the chin.
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        dx, dy = vt[0]
        if dx * (pts[-1, 0] - pts[0, 0]) + dy * (pts[-1, 1] - pts[0, 1]) < 0:
            dx, dy = -dx, -dy
        return math.degrees(math.atan2(-float(dx), float(dy)))

    @property
    def chin(self) -> Point | None:
        """Mesh point 152: the front of the chin (a beard's chin lies inside the beard); None without a mesh."""
        return _point(self.mesh, CHIN)

    @property
    def crown_hint(self) -> Point | None:
        """Mesh point 10, the top of the forehead: the crown is above it. None without a mesh."""
        return _point(self.mesh, FOREHEAD)

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1]

    @property
    def landmarks(self) -> tuple[Point, Point, Point, Point, Point]:
        """The five points in LANDMARK_NAMES order (the fields' order)."""
        return (self.right_eye, self.left_eye, self.nose, self.mouth_right, self.mouth_left)

    def map(self, fn: Callable[[Point], Point], box: Box | None = None) -> Face:
        """This face with `fn` applied to each point (mesh included); the box is `box`, or kept when None."""
        mesh = None
        if self.mesh is not None:
            mesh = np.asarray([fn((float(x), float(y))) for x, y in self.mesh], dtype=np.float64)
        right_eye, left_eye, nose, mouth_right, mouth_left = (_plain(fn(pt)) for pt in self.landmarks)
        return Face(
            self.box if box is None else box, self.score, right_eye, left_eye, nose, mouth_right, mouth_left, mesh=mesh
        )

    def scaled(self, k: float) -> Face:
        x0, y0, x1, y1 = (round(v * k) for v in self.box)
        return self.map(lambda pt: (pt[0] * k, pt[1] * k), (x0, y0, x1, y1))

    def rotated(self, degrees: float, centre: Point) -> Face:
        """Where the points go when the image is turned as PIL's rotate(degrees, center=centre) does.

        The box is kept (the box of a turned box would be a guess); the head is measured from the landmarks.
        """
        t = math.radians(degrees)
        c, s = math.cos(t), math.sin(t)

        def turn(pt: Point) -> Point:
            dx, dy = pt[0] - centre[0], pt[1] - centre[1]
            return (centre[0] + dx * c + dy * s, centre[1] - dx * s + dy * c)

        return self.map(turn)

    def to_wire(self, k: float = 1.0) -> dict[str, Any]:
        """For meta: box and landmarks scaled by `k` (to input pixels); plain Python numbers only."""
        f = self.scaled(k)
        return {
            "box": [int(v) for v in f.box],
            "score": round(float(self.score), 3),
            "landmarks": {
                n: [round(float(x), 1), round(float(y), 1)]
                for n, (x, y) in zip(LANDMARK_NAMES, f.landmarks, strict=True)
            },
        }


def _plain(pt: Point) -> Point:
    return (float(pt[0]), float(pt[1]))


def _point(mesh: np.ndarray | None, index: int) -> Point | None:
    return None if mesh is None else (float(mesh[index, 0]), float(mesh[index, 1]))


def _model(spec_name: str, cls: type) -> Any:
    with _lock:
        model = _models.get(spec_name)
        if model is None:
            weights = find_weights(spec_name)
            if weights is None:
                # Every face model that is missing, in one command: a job needs them all.
                absent = " ".join(n for n in FACE_WEIGHTS if find_weights(n) is None)
                raise WorkerError(
                    "model_unavailable",
                    f"crop: 'face' needs the face models {absent}, not installed in {model_home()}; "
                    f"run: {install_command(absent)}",
                )
            model = _models[spec_name] = cls(weights)
            logs.log("info", "model_loaded", model=spec_name, path=str(weights), rss_mb=memory.rss_mb())
        return model


# Each eye's corners in the mesh, the image's left one first: the eye on the image's right is mirrored for the
# iris model (MediaPipe's iris_landmark_left_and_right graph).
EYE_CORNERS = ((33, 133, False), (362, 263, True))


def eye_points(rgb: Image.Image, face: Face) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """(16x2 outline, 5x2 iris) of each eye, the image's left eye first; None without a mesh (module docstring)."""
    if face.mesh is None:
        return None
    mesh = face.mesh
    model: IrisLandmark = _model(IRIS.name, IrisLandmark)
    rgb = rgb if rgb.mode == "RGB" else rgb.convert("RGB")

    def at(i: int) -> Point:
        return (float(mesh[i, 0]), float(mesh[i, 1]))

    return [model.run(rgb, at(a), at(b), mirror) for a, b, mirror in EYE_CORNERS]


def loaded() -> bool:
    """Whether this process has loaded a face model (for tests and stats)."""
    return bool(_models)


def detect(rgb: Image.Image, refined: bool = True) -> list[Face]:
    """Every face in `rgb`, best score first: refined (mesh and landmarks, module docstring), dropping what
    the mesh says is no face (a cup, a cat: the detector alone takes them at 0.6-0.8); `refined=False`: the
    detector's boxes and five points only."""
    detector: BlazeFace = _model(DETECTOR.name, BlazeFace)
    rgb = rgb if rgb.mode == "RGB" else rgb.convert("RGB")
    faces = []
    for d in detector.detect(rgb):
        box = (round(d.box[0]), round(d.box[1]), round(d.box[2]), round(d.box[3]))
        right_eye, left_eye, nose, mouth = d.keypoints[:4]
        raw = Face(box, round(d.score, 4), right_eye, left_eye, nose, mouth, mouth)
        found = _refined(rgb, raw) if refined and raw.eye_distance >= MIN_EYE_PX else raw
        if found is not None:
            faces.append(found)
    return faces


def _square(points: np.ndarray, degrees: float) -> tuple[Point, float]:
    """Centre and side of the square, turned by `degrees`, around `points` grown by CROP_SCALE."""
    t = math.radians(degrees)
    c, s = math.cos(t), math.sin(t)
    u = points[:, 0] * c + points[:, 1] * s  # along the turned x axis
    v = -points[:, 0] * s + points[:, 1] * c
    cu, cv = (u.min() + u.max()) / 2, (v.min() + v.max()) / 2
    side = CROP_SCALE * max(u.max() - u.min(), v.max() - v.min())
    return (float(cu * c - cv * s), float(cu * s + cv * c)), float(side)


def _eyes(mesh: np.ndarray) -> tuple[Point, Point]:
    right, left = mesh[list(RIGHT_EYE)].mean(axis=0), mesh[list(LEFT_EYE)].mean(axis=0)
    return (float(right[0]), float(right[1])), (float(left[0]), float(left[1]))


def refine(rgb: Image.Image, face: Face) -> Face:
    """`face` with its mesh and the landmarks read from it (module docstring); unchanged when none is found."""
    if face.eye_distance < MIN_EYE_PX:
        return face
    rgb = rgb if rgb.mode == "RGB" else rgb.convert("RGB")
    return _refined(rgb, face) or face


def _refined(rgb: Image.Image, face: Face) -> Face | None:
    """`face` refined, or None when the mesh sees no face there."""
    mesh_model: FaceMesh = _model(MESH.name, FaceMesh)
    if face.mesh is not None:  # refined before: start from its mesh
        degrees = face.roll_deg
        centre, side = _square(face.mesh, degrees)
    else:
        left, top, right, bottom = face.box
        side = CROP_SCALE * max(right - left, bottom - top)
        centre, degrees = ((left + right) / 2, (top + bottom) / 2), face.roll_deg
    mesh = None
    for _ in range(REFINE_PASSES):
        mesh, presence = mesh_model.run(rgb, centre, side, degrees)
        if presence < MIN_PRESENCE:
            return None
        right_eye, left_eye = _eyes(mesh)
        degrees = math.degrees(math.atan2(left_eye[1] - right_eye[1], left_eye[0] - right_eye[0]))
        centre, side = _square(mesh, degrees)
    assert mesh is not None
    right_eye, left_eye = _eyes(mesh)
    if math.dist(right_eye, left_eye) < MIN_EYE_PX:
        return None
    pts = {i: (float(mesh[i, 0]), float(mesh[i, 1])) for i in (NOSE_TIP, MOUTH_RIGHT, MOUTH_LEFT)}
    (x0, y0), (x1, y1) = mesh.min(axis=0), mesh.max(axis=0)
    box = (round(float(x0)), round(float(y0)), round(float(x1)), round(float(y1)))
    return Face(box, face.score, right_eye, left_eye, pts[NOSE_TIP], pts[MOUTH_RIGHT], pts[MOUTH_LEFT], mesh)


def measure(rgb: Image.Image, near: Point | None = None) -> Face | None:
    """The face of `rgb` whose eyes are nearest `near` (none within one eye distance: None), or without
    `near` the largest; refined. For measuring a final output from its own pixels."""
    faces = detect(rgb, refined=False)
    if near is not None:
        faces = [f for f in faces if math.dist(f.eyes_mid, near) <= f.eye_distance]
        if not faces:
            return None
        return refine(rgb, min(faces, key=lambda f: math.dist(f.eyes_mid, near)))
    if not faces:
        return None
    largest = max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
    return refine(rgb, largest)
