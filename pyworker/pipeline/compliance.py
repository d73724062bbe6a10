"""The compliance report of an ID photo (meta.compliance; docs/id-photos.md#compliance).

Every check has a value, the accepted value or range, and a verdict; `strict`
turns a failing report into the error not_compliant (failing_summary names
what failed).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from .face import Face
from .framing import CROWN_PLAUSIBLE, MAX_ROLL_DEG, MIN_FACE_COVERAGE, Box, Framed, Head, chin_of, scan_crown
from .placement import MAX_CUT
from .presets import RGB

# Compliance thresholds that are not per preset (docs/id-photos.md#compliance).
MAX_RESIDUAL_ROLL = 3.0  # degrees; standards say "eyes level" with no figure; 3° is below what people notice
# Two estimates of the roll on the output (the eye line, the face's midline forehead to chin) further apart
# than this: one of them is wrong, so the report cannot say the head is level (issue 18's figure).
MAX_ROLL_DISAGREEMENT = 2.0
MAX_UPSCALE = 1.5  # output pixels per source pixel (the figure; above it the print looks soft)
MIN_BG_UNIFORMITY = 0.95  # share of the border strip that is plain background
BG_STRIP = 0.08  # without a face: the top strip checked, share of the frame height
# Semi-axes (horizontal, vertical) of the ellipse around the head, in head heights:
# the head is about 0.75 as wide as tall, hair wider still; 10 % slack vertically.
BG_HEAD_ELLIPSE = (0.55, 0.55)
BG_TOLERANCE = 12  # grey levels from the background colour that still count as background


def _check(name: str, value: Any, accepted: Any, passed: bool, note: str | None = None) -> dict[str, Any]:
    check = {"name": name, "value": value, "accepted": accepted, "passed": bool(passed)}
    if note:
        check["note"] = note
    return check


def _in(value: float, lo: float, hi: float) -> bool:
    return lo <= value <= hi


def _background_uniformity(composed: Image.Image, bg: RGB | None, head: Head | None, box: Box) -> float:
    """Share of the background zone that is plain background colour (or transparent).

    The zone is every pixel above the mouth (halfway from the eyes to the chin:
    lower, shoulders and a collar may rise) and outside an ellipse around the
    head (BG_HEAD_ELLIPSE x head height): where a passport photo shows only the
    backdrop. Fringes the mask kept (a flag, a tripod, a doorframe) lower it.
    Without a face, the top BG_STRIP of the frame.
    """
    w, h = composed.size
    arr = np.asarray(composed)
    if head is None:
        zone = np.zeros((h, w), bool)
        zone[: max(1, round(BG_STRIP * h))] = True
    else:
        k = h / max(1, box[3] - box[1])  # working -> output pixels
        cx, cy = (head.eyes[0] - box[0]) * k, ((head.crown + head.chin) / 2 - box[1]) * k
        size = (head.chin - head.crown) * k
        ax, ay = BG_HEAD_ELLIPSE[0] * size, BG_HEAD_ELLIPSE[1] * size
        yy, xx = np.mgrid[0:h, 0:w]
        outside = ((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2 > 1
        zone = outside & (yy < ((head.eyes[1] + head.chin) / 2 - box[1]) * k)
    px = arr[zone].astype(np.int16)
    if px.size == 0:
        return 1.0
    if composed.mode == "L":  # only_mask: the mask itself, background is 0
        plain = px <= BG_TOLERANCE
    elif composed.mode == "RGBA" and bg is None:
        plain = px[:, 3] <= BG_TOLERANCE
    else:
        colour = np.asarray(bg if bg is not None else (255, 255, 255), dtype=np.int16)
        plain = (np.abs(px[:, :3] - colour) <= BG_TOLERANCE).all(axis=1)
    return float(plain.mean())


def measure_output(face: Face | None, mask: Image.Image) -> dict[str, Any] | None:
    """The head as the final output shows it (output pixels), from landmarks run on the output itself.

    `face`: face.measure(output), independent of the estimate that placed the frame; `mask`: the output's
    mask. None when the output shows no face with a mesh. `crown` is None when the mask gives none (the head
    runs into the output's top) or an implausible one (the mask merged with something above the head).
    """
    if face is None or face.mesh is None:
        return None
    ex, ey = face.eyes_mid
    chin, _ = chin_of(face)
    crown = scan_crown(mask, None, (ex, ey), face.eye_distance)
    lo, hi = CROWN_PLAUSIBLE
    plausible = crown is not None and lo * (chin - ey) <= ey - crown <= hi * (chin - ey)
    axis = face.axis_roll_deg
    return {
        "eyes": [round(ex, 1), round(ey, 1)],
        "chin": round(chin, 1),
        "crown": round(crown, 1) if plausible and crown is not None else None,
        "crown_cut": crown is None,
        "roll": float(round(face.roll_deg, 2)),
        "axis_roll": None if axis is None else float(round(axis, 2)),
    }


def _roll_check(framed: Framed, out: dict[str, Any] | None) -> dict[str, Any]:
    limit = [-MAX_RESIDUAL_ROLL, MAX_RESIDUAL_ROLL]
    if framed.measured_roll is None:
        return _check("roll", None, limit, False, "no face")
    if framed.turned:
        return _check("roll", None, limit, False, "the face is turned away: not frontal, roll not measured")
    if abs(framed.measured_roll) > MAX_ROLL_DEG:
        note = f"not straightened: the eye line is {framed.measured_roll:.1f}° off, beyond ±{MAX_ROLL_DEG:.0f}°"
        return _check("roll", float(round(framed.measured_roll, 1)), limit, False, note)
    turned = f"straightened by {framed.roll_deg:.1f}°" if framed.straightened else None
    if out is None:
        return _check("roll", None, limit, False, _join(turned, "no landmarks on the output: roll not measured"))
    roll, axis = out["roll"], out["axis_roll"]
    if axis is None:
        return _check("roll", float(round(roll, 1)), limit, False, _join(turned, "one estimate only: not confirmed"))
    if abs(roll - axis) > MAX_ROLL_DISAGREEMENT:
        note = f"two estimates disagree: eye line {roll:.1f}°, face midline {axis:.1f}°; check the photo by eye"
        return _check("roll", float(round(roll, 1)), limit, False, _join(turned, note))
    return _check("roll", float(round(roll, 1)), limit, abs(roll) <= MAX_RESIDUAL_ROLL, turned)


# Why the eye line or the crown's room misses its range when a frame with it right exists: that frame would
# cross the photo's edge where the person is (placement.Placement.traded), so the photo is what to change.
TRADED_NOTE = {
    "bottom": "in range only in a frame reaching below the photo: take one with more room below the shoulders",
    "sides": "in range only in a frame reaching past the photo's sides: take one with room beside the shoulders",
}


def _explain_trade(checks: list[dict[str, Any]], edge: str, crown_in_photo: bool) -> None:
    for c in checks:
        if not c["passed"] and (c["name"] == "eye_line" or (c["name"] == "crown_visible" and crown_in_photo)):
            c["note"] = _join(c.get("note"), TRADED_NOTE[edge])


def _join(*notes: str | None) -> str | None:
    return "; ".join(n for n in notes if n) or None


def compliance(
    framed: Framed,
    composed: Image.Image,
    bg: RGB | None,
    fell_back: tuple[str, str] | None = None,
    out: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The report of meta.compliance: every check with its value, accepted range and verdict.

    Geometry is measured on the final output (`out`: measure_output of it); a value that cannot be measured
    is null and fails. `fell_back`: (portrait model, model used) when no face was found and the general
    model made the mask.
    """
    p = framed.framing
    x0, y0, x1, y1 = framed.crop_box
    frame_h = max(1, y1 - y0)
    out_h = framed.out_size[1]
    checks = []
    head = framed.head
    head_range = [round(v, 3) for v in p.head_range]
    note: str | None  # each check's note, or none
    if head is None:
        checks.append(_check("head_height", None, head_range, False, "no face"))
        checks.append(_check("eye_line", None, list(p.eye_range), False, "no face"))
    elif out is None:
        note = "no face landmarks found on the output: not measured"
        checks.append(_check("head_height", None, head_range, False, note))
        checks.append(_check("eye_line", None, list(p.eye_range), False, note))
    else:
        h = composed.size[1]
        if not head.crown_visible:
            checks.append(_check("head_height", None, head_range, False, "the photo cuts the top of the head"))
        elif out["crown"] is None:
            note = (
                "the frame cuts the top of the head" if out["crown_cut"] else "the crown cannot be told from the mask"
            )
            checks.append(_check("head_height", None, head_range, False, note))
        else:
            share = (out["chin"] - out["crown"]) / h
            checks.append(_check("head_height", float(round(share, 3)), head_range, _in(share, *p.head_range)))
        eye = out["eyes"][1] / h
        checks.append(_check("eye_line", float(round(eye, 3)), list(p.eye_range), _in(eye, *p.eye_range)))
    checks.append(_roll_check(framed, out))
    if head is None:
        checks.append(_check("crown_visible", None, True, False, "no face"))
    elif not head.crown_visible:
        checks.append(_check("crown_visible", False, True, False, "the photo cuts the top of the head"))
    elif out is None or out["crown"] is None:
        cut = out is not None and out["crown_cut"]
        note = "the frame cuts the top of the head" if cut else "the crown cannot be measured on the output"
        checks.append(_check("crown_visible", False if cut else None, True, False, note))
    else:
        room = out["crown"] / composed.size[1]
        inside = bool(room >= p.top_margin - 0.5 / composed.size[1])  # plain types only (a NumPy bool killed 0.3.0)
        note = f"room above the crown {100 * room:.1f} %" + (
            "" if inside else f", less than {100 * p.top_margin:.0f} %"
        )
        checks.append(_check("crown_visible", inside, True, inside, note))
    if framed.traded and head is not None:
        _explain_trade(checks, framed.traded, head.crown_visible)
    if framed.mode == "face":
        cut = float(round(framed.cut, 3))
        note = None
        if cut > MAX_CUT:
            note = (
                "the photo ends above the shoulders: take one that shows the shoulders with room below them"
                if framed.cut_bottom
                else "the photo ends beside the shoulders: take one with room on both sides of them"
            )
        checks.append(_check("photo_edges", cut, [0, MAX_CUT], cut <= MAX_CUT, note))
    note = None
    if fell_back is not None:
        note = f"no face found: the mask is the general model {fell_back[1]}'s, not the portrait model {fell_back[0]}'s"
    checks.append(_check("faces", int(framed.faces_in_subject), 1, framed.faces_in_subject == 1, note))
    coverage = float(round(framed.face_coverage, 2))
    checks.append(_check("face_in_subject", coverage, [MIN_FACE_COVERAGE, 1.0], coverage >= MIN_FACE_COVERAGE))
    upscale = out_h / frame_h
    note = f"upscaled {upscale:.1f}x from a {x1 - x0}x{frame_h} px region" if upscale > MAX_UPSCALE else None
    checks.append(_check("upscale", float(round(upscale, 2)), [0, MAX_UPSCALE], upscale <= MAX_UPSCALE, note))
    uniform = _background_uniformity(composed, bg, head, framed.crop_box)
    checks.append(
        _check("background", float(round(uniform, 3)), [MIN_BG_UNIFORMITY, 1.0], uniform >= MIN_BG_UNIFORMITY)
    )
    checks.extend(framed.face_checks)
    report = {"preset": p.name, "passed": bool(all(c["passed"] for c in checks)), "checks": checks}
    if out is not None:
        report["measured"] = {k: v for k, v in out.items() if k != "crown_cut"}
    return report


def failing_summary(report: dict[str, Any]) -> str:
    """'head_height 0.81 (accepted 0.644-0.756); upscale 3.6 (accepted 0-1.5)' for the not_compliant message."""
    parts = []
    for c in report["checks"]:
        if c["passed"]:
            continue
        acc = c["accepted"]
        if isinstance(acc, list):  # [lo, None]: at least lo (a measure without a natural maximum)
            acc_text = f"{acc[0]}-{acc[1]}" if acc[1] is not None else f">= {acc[0]}"
            if acc[1] is not None and acc[0] < 0:  # a signed range (roll, yaw): "-8.0 to 8.0", not "-8.0-8.0"
                acc_text = f"{acc[0]} to {acc[1]}"
        else:
            acc_text = str(acc).lower()
        value = (
            "null" if c["value"] is None else str(c["value"]).lower() if isinstance(c["value"], bool) else c["value"]
        )
        note = f", {c['note']}" if c.get("note") else ""
        parts.append(f"{c['name']} {value} (accepted {acc_text}{note})")
    return "; ".join(parts)
