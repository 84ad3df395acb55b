"""The API's JSON parser: DRF's, reading the body with the project's one JSON reader
(``accounts.utils.parse_json``), so that a body nested deeply enough to exhaust the recursion
limit is a 400 like any other malformed JSON, not a 500."""

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from accounts.utils import parse_json


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            return parse_json(stream.read().decode(encoding))
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
