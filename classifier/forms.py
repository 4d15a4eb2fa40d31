"""Page forms: they describe the fields; the services decide what is stored."""

from django import forms
from django.conf import settings

from classifier import videos
from classifier.images import upload_limits_text
from classifier.models import Capture, Expression


class CaptureForm(forms.Form):
    image = forms.FileField(
        label="Photo",
        widget=forms.ClearableFileInput(attrs={"accept": "image/*"}),
    )
    source = forms.ChoiceField(
        choices=Capture.SENT_SOURCES, initial=Capture.Source.UPLOAD, required=False, widget=forms.HiddenInput
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        limits = upload_limits_text(
            max_bytes=settings.EMOTIONSITE_MAX_UPLOAD_BYTES,
            max_pixels=settings.EMOTIONSITE_MAX_PIXELS,
            max_decoded_bytes=settings.EMOTIONSITE_MAX_DECODED_BYTES,
        )
        self.fields["image"].help_text = f"{limits}."

    def clean_source(self) -> str:
        return self.cleaned_data.get("source") or Capture.Source.UPLOAD


class ReviewForm(forms.Form):
    """The true expression of a face; empty withdraws the review."""

    true_label = forms.ChoiceField(choices=[("", "not reviewed"), *Expression.choices], required=False)


class QueueReviewForm(forms.Form):
    """A review from the queue: the true expression, or "right" for the prediction."""

    RIGHT = "right"
    true_label = forms.ChoiceField(choices=[(RIGHT, "right"), *Expression.choices])


class CaptureFilterForm(forms.Form):
    STATES = {
        "": ("All review states", {}),
        "unreviewed": ("Not reviewed", {"reviewed": False}),
        "reviewed": ("Reviewed", {"reviewed": True}),
        "right": ("Reviewed right", {"correct": True}),
        "wrong": ("Reviewed wrong", {"correct": False}),
    }

    label = forms.ChoiceField(
        label="Predicted expression", choices=[("", "All expressions"), *Expression.choices], required=False
    )
    state = forms.ChoiceField(
        label="Review", choices=[(key, text) for key, (text, _) in STATES.items()], required=False
    )

    def filters(self) -> dict:
        """Keyword arguments for selectors.capture_list; invalid choices filter nothing."""
        if not self.is_valid():
            return {}
        return {"label": self.cleaned_data["label"] or None, **self.STATES[self.cleaned_data["state"]][1]}


class VideoForm(forms.Form):
    file = forms.FileField(
        label="Video",
        widget=forms.ClearableFileInput(attrs={"accept": "video/mp4,video/webm,video/quicktime,.mp4,.m4v,.webm,.mov"}),
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        limits = settings.EMOTIONSITE_VIDEO
        self.fields["file"].help_text = (
            videos.upload_limits_text(
                max_bytes=limits.max_bytes, max_seconds=limits.max_seconds, max_pixels=limits.max_pixels
            )
            + "."
        )
        lowest, highest = limits.min_samples_per_second, limits.max_samples_per_second
        self.fields["samples_per_second"] = forms.FloatField(
            label="Frames read per second",
            initial=f"{limits.samples_per_second:g}",
            required=False,  # left empty: the default rate, as in the API
            min_value=lowest,
            max_value=highest,
            widget=forms.NumberInput(attrs={"step": "0.5"}),
            help_text=f"From {lowest:g} to {highest:g}: more follows quicker changes, and takes longer to read.",
        )
