"""``Idempotency-Key`` for API writes.

The first successful (2xx) response to a POST carrying the header is stored; a retry with
the same key, user, method and path and the same body gets the stored status and body back
without running the write again. The same key with a different body is a 422. Error
responses are not kept (the row is dropped), so a corrected request may reuse the key.
"""

from __future__ import annotations

import functools
import hashlib
import json

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from rest_framework import status
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from cobranza.models import IdempotencyKey

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255


def _request_hash(request) -> str:
    data = request.data
    if hasattr(data, "lists"):  # form-encoded or multipart QueryDict
        data = {k: v for k, v in data.lists()}
    canonical = json.dumps(data, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _error(detail: str, code: int) -> Response:
    return Response({"idempotency_key": [detail]}, status=code)


def idempotent(view_method):
    """Decorate a viewset method that handles a POST."""

    @functools.wraps(view_method)
    def wrapper(self, request, *args, **kwargs):
        key = request.headers.get(HEADER, "").strip()
        if not key:
            return view_method(self, request, *args, **kwargs)
        if len(key) > MAX_KEY_LENGTH:
            return _error(_("La clave de idempotencia es demasiado larga."), status.HTTP_400_BAD_REQUEST)
        fingerprint = _request_hash(request)
        lookup = {"user": request.user, "key": key, "method": request.method, "path": request.path[:255]}
        try:
            with transaction.atomic():
                record, created = IdempotencyKey.objects.get_or_create(**lookup, defaults={"request_hash": fingerprint})
        except IntegrityError:  # a concurrent first request inserted it between get and create
            record, created = IdempotencyKey.objects.get(**lookup), False
        if not created:
            if record.request_hash != fingerprint:
                return _error(
                    _("Esta clave de idempotencia ya se usó con otro contenido. Use una clave nueva."),
                    status.HTTP_422_UNPROCESSABLE_ENTITY,
                )
            if record.status_code is None:
                return _error(
                    _("Una petición con esta clave de idempotencia aún se está procesando."),
                    status.HTTP_409_CONFLICT,
                )
            response = Response(record.response_body, status=record.status_code)
            response["Idempotent-Replayed"] = "true"
            return response
        try:
            response = view_method(self, request, *args, **kwargs)
        except Exception as exc:
            response = self.handle_exception(exc)
        if 200 <= response.status_code < 300:
            # Store what the client got, as JSON (decimals and dates already strings).
            body = json.loads(JSONRenderer().render(response.data) or b"null")
            IdempotencyKey.objects.filter(pk=record.pk).update(status_code=response.status_code, response_body=body)
        else:
            IdempotencyKey.objects.filter(pk=record.pk).delete()
        return response

    return wrapper
