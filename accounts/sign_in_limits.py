"""Brute-force limits on signing in, counted by django-axes: where an attempt comes from, and what a person
who is paused is told. The counting, the pause and its cool-down are axes' (settings AXES_*)."""

import ipaddress
import math

from axes.helpers import get_cool_off
from django.conf import settings
from django.http import HttpRequest, HttpResponse


def client_address(request: HttpRequest) -> str:
    """The address an attempt came from: the connection's, or, with EMOTIONSITE_PROXY_COUNT reverse proxies
    in front, the one the outermost proxy saw, which is its entry in X-Forwarded-For counted from the right.
    Entries further left are whatever the client sent, so they never count."""
    if settings.EMOTIONSITE_PROXY_COUNT:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        if len(forwarded) >= settings.EMOTIONSITE_PROXY_COUNT:
            candidate = forwarded[-settings.EMOTIONSITE_PROXY_COUNT]
            try:
                return str(ipaddress.ip_address(candidate))
            except ValueError:
                pass  # a proxy that wrote no address: fall back on the connection's
    return request.META.get("REMOTE_ADDR", "")


def is_paused(request) -> bool:
    """Whether axes refused this request's sign-in (or counted it as the one that pauses)."""
    return bool(getattr(request, "axes_locked_out", False))


def cool_down_seconds() -> int:
    return math.ceil(get_cool_off().total_seconds())


def paused_message() -> str:
    minutes = math.ceil(cool_down_seconds() / 60)
    return (
        "Too many failed sign-ins for this account or from this address: signing in is paused. "
        f"Try again in {minutes} minute{'s' if minutes != 1 else ''}."
    )


def paused_response(request: HttpRequest, original_response: HttpResponse | None, credentials: dict) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: the sign-in page as the view drew it, with the pause as its form message (see
    forms.PauseMessage), as a 429; anything else, the message alone."""
    if original_response is not None and original_response.status_code == 200:
        response = original_response
    else:
        response = HttpResponse(paused_message(), content_type="text/plain; charset=utf-8")
    response.status_code = 429
    response["Retry-After"] = str(cool_down_seconds())
    return response
