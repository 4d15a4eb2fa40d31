"""Every API error is JSON with a clear `detail` (or DRF's per-field messages), never an HTML page."""

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.views import exception_handler as drf_exception_handler

from classifier import services


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The upload is too large."
    default_code = "too_large"


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"


class UnprocessableContent(APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "The request cannot be processed as it stands."
    default_code = "unprocessable"


class ServiceUnavailable(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The service is unavailable right now."
    default_code = "unavailable"


def exception_handler(exc, context):
    """DRF's handler, after turning the services' refusals into the HTTP errors they mean."""
    return drf_exception_handler(as_api_exception(exc), context)


def as_api_exception(exc: Exception) -> Exception:
    """The API error for a service's refusal, the one place that maps them; anything else as it is."""
    if isinstance(exc, RequestDataTooBig):
        return PayloadTooLarge(str(exc))
    if isinstance(exc, services.ImageRefused):
        return PayloadTooLarge(exc.message) if exc.too_large else ValidationError({"image": [exc.message]})
    if isinstance(exc, services.VideoRefused):
        return PayloadTooLarge(exc.message) if exc.too_large else ValidationError({"file": [exc.message]})
    if isinstance(exc, services.ActivationRefused | services.RetrainRefused | services.CancelRefused):
        return Conflict(str(exc))
    if isinstance(exc, services.IdempotencyKeyReused):
        return UnprocessableContent(str(exc))
    if isinstance(exc, services.MediaUnavailable):
        return ServiceUnavailable(str(exc))
    if isinstance(exc, services.ModelUnavailable):
        # Its message names server paths: those are for the log and the admin.
        return ServiceUnavailable("The expression model is not available right now.")
    return exc


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's 400 page (a request it refuses to read, such as too many parameters), or JSON under /api/."""
    if request.path.startswith("/api/"):
        detail = str(exception) if exception is not None and str(exception) else "Bad request."
        return JsonResponse({"detail": detail}, status=400)
    return defaults.bad_request(request, exception)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's 404 page, or JSON under /api/."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's 500 page, or JSON under /api/."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Something went wrong on our side."}, status=500)
    return defaults.server_error(request)
