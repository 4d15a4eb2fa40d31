"""The API's door to an account: a token for a username and password."""

from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import Throttled, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import sign_in_limits


class TokenObtainView(ObtainAuthToken):
    """POST username and password: {"token": ...}; 400 when they are wrong, 429 while signing in is paused."""

    def post(self, request: Request, *args, **kwargs) -> Response:
        serializer = self.get_serializer(data=request.data)
        if not serializer.is_valid():
            # axes marks the request it refused (DRF's Request, which AxesMiddleware never sees).
            if sign_in_limits.is_paused(request):
                paused = Throttled(detail=sign_in_limits.paused_message())
                paused.wait = sign_in_limits.cool_down_seconds()
                raise paused
            raise ValidationError(serializer.errors)
        token, _ = Token.objects.get_or_create(user=serializer.validated_data["user"])
        return Response({"token": token.key})
