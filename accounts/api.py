"""The API's door to an account: a token for a username and password."""

from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.exceptions import Throttled, ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import services, sign_in_limits


class TokenScheme(KnoxTokenScheme):
    """The schema's name for token authentication stays the one it had before knox: "tokenAuth"."""

    name = "tokenAuth"
    priority = 1


class TokenObtainView(APIView):
    """A new API token for a username and password, for the header `Authorization: Token <token>`.

    Each request makes a token of its own, shown this once: only its hash is stored. The ten newest of an
    account work; its account page lists, renews and revokes them. Changing the password renews them.
    """

    authentication_classes = []
    permission_classes = [AllowAny]
    serializer_class = AuthTokenSerializer

    @extend_schema(
        request=AuthTokenSerializer,
        responses={
            200: inline_serializer("AuthToken", {"token": serializers.CharField(read_only=True)}),
            400: OpenApiResponse(description="Wrong username or password."),
            429: OpenApiResponse(description="Too many failed sign-ins for the account or from the address."),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = AuthTokenSerializer(data=request.data, context={"request": request})
        if not serializer.is_valid():
            # axes marks the request it refused (DRF's Request, which AxesMiddleware never sees).
            if sign_in_limits.is_paused(request):
                paused = Throttled(detail=sign_in_limits.paused_message())
                paused.wait = sign_in_limits.cool_down_seconds()
                raise paused
            raise ValidationError(serializer.errors)
        return Response({"token": services.api_token_create(user=serializer.validated_data["user"])})
