"""`{% capture_result capture %}`: the photo with its face boxes, probability bars and review buttons."""

from dataclasses import dataclass

from django import template

from classifier.models import Capture, Face
from ml.labels import EXPRESSIONS

register = template.Library()


@dataclass(frozen=True)
class Bar:
    label: str
    percent: str  # for CSS, never localised: "37.125"
    percent_text: str  # for people: "37"


class FaceGeometry:
    """A face, with its box in percent of the image (CSS-positioned over the photo) and its bars."""

    def __init__(self, face: Face, capture: Capture):
        self.face = face
        self.left = _percent(face.box_x, capture.width)
        self.top = _percent(face.box_y, capture.height)
        self.width = _percent(face.box_width, capture.width)
        self.height = _percent(face.box_height, capture.height)
        self.confidence_percent = round(face.confidence * 100)
        self.tag_placement = _tag_placement(face, capture)
        self.bars = [
            Bar(label, f"{probability * 100:.3f}", f"{probability * 100:.0f}")
            for label, probability in ((label, face.probabilities.get(label, 0.0)) for label in EXPRESSIONS)
        ]
        self.other_labels = [label for label in EXPRESSIONS if label != face.predicted_label]

    def __getattr__(self, name: str):
        return getattr(self.face, name)


# A face's tag reads rightwards from its box's top-left corner, just above the box. So that it stays on the
# photo, a box whose centre is right of the middle carries it from its right corner, reading leftwards, and a
# box starting less than TAG_INSIDE_BELOW of the photo's width from its top carries it inside, along its top
# edge. The tag is about 19 px high; a photo is shown at least 240 px wide, whatever its shape.
TAG_INSIDE_BELOW = 0.08


def _tag_placement(face: Face, capture: Capture) -> str:
    """The face tag's CSS classes beyond `face-tag`: "face-tag-leftwards", "face-tag-inside", both or none."""
    classes = []
    if face.box_x + face.box_width / 2 > capture.width / 2:
        classes.append("face-tag-leftwards")
    if face.box_y < TAG_INSIDE_BELOW * capture.width:
        classes.append("face-tag-inside")
    return " ".join(classes)


def _percent(part: int, whole: int) -> str:
    """A CSS percentage, never localised."""
    return f"{100 * part / whole:.3f}" if whole else "0"


@register.inclusion_tag("classifier/_capture_result.html", takes_context=True)
def capture_result(context: template.Context, capture: Capture) -> dict:
    return {
        "csrf_token": context.get("csrf_token"),
        "capture": capture,
        "whole_image": capture.whole_image,
        "faces": [FaceGeometry(face, capture) for face in capture.faces.all()],
    }
