"""Pagination that refuses what it cannot honour.

DRF's ``LimitOffsetPagination`` silently replaces a non-numeric or negative ``limit`` or
``offset`` with its default, so a client with a bug gets the first page and never knows; an
unbounded ``limit`` asks PostgreSQL for a LIMIT beyond bigint (a 500). Here both are a 400 with
the parameter as the field, and the OpenAPI schema states the bounds.
"""

from __future__ import annotations

from django.utils.translation import gettext as _
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination

MAX_LIMIT = 500


class StrictLimitOffsetPagination(LimitOffsetPagination):
    max_limit = MAX_LIMIT

    def _read(self, request, name: str, *, minimum: int, maximum: int | None, default: int) -> int:
        raw = request.query_params.get(name)
        if raw is None:
            return default
        value = raw.strip()
        if not value.isdigit() or not value.isascii() or len(value) > 18:
            raise ValidationError({name: [_("Debe ser un número entero, sin signo.")]})
        number = int(value)
        if number < minimum or (maximum is not None and number > maximum):
            if maximum is None:
                message = _("Debe ser al menos %(min)d.") % {"min": minimum}
            else:
                message = _("Debe estar entre %(min)d y %(max)d.") % {"min": minimum, "max": maximum}
            raise ValidationError({name: [message]})
        return number

    def get_limit(self, request):
        return self._read(
            request, self.limit_query_param, minimum=1, maximum=self.max_limit, default=self.default_limit
        )

    def get_offset(self, request):
        return self._read(request, self.offset_query_param, minimum=0, maximum=None, default=0)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        bounds = {
            self.limit_query_param: {"minimum": 1, "maximum": self.max_limit},
            # An offset beyond 18 digits is refused as not a number (it would overflow bigint).
            self.offset_query_param: {"minimum": 0, "maximum": 10**18 - 1},
        }
        for parameter in parameters:
            parameter["schema"].update(bounds.get(parameter["name"], {}))
        return parameters
