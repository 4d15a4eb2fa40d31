"""Request parsers: DRF's, hardened."""

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, with a body nested too deeply refused as a 400.

    Python's json module recurses once per level, so a body nested a few thousand levels deep exhausts
    the stack (a RecursionError, which DRF would let out as a 500). Nothing the API takes is nested
    more than a few levels.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("The JSON is nested too deeply.") from None
