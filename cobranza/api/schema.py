"""drf-spectacular settings for this API's schema views. The enum names live in the project
settings (SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]), where `check --deploy` sees them too.

drf-spectacular documents only the success responses. ``document_errors`` adds the error
answers every operation can give (the shapes in the module docstring of ``views``), and the
``Idempotency-Key`` header every POST honours, so that a client generated from the schema —
or a fuzzer checking responses against it (tests/fuzz/) — knows the whole contract.
"""

from django.conf import settings

ERROR_COMPONENTS = {
    "ErrorDetail": {
        "type": "object",
        "description": "Sin autenticar, sin permiso o no encontrado: un mensaje.",
        "properties": {"detail": {"type": "string"}},
        "required": ["detail"],
    },
    "ValidationErrors": {
        "type": "object",
        "description": (
            "Errores de validación por campo: nombre del campo → lista de mensajes "
            "(``non_field_errors`` para el resto). Las entradas anidadas (aplicaciones, parcialidades) "
            "se anidan igual."
        ),
        "additionalProperties": {},
    },
}

_DETAIL = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorDetail"}}}
_FIELDS = {"application/json": {"schema": {"$ref": "#/components/schemas/ValidationErrors"}}}

IDEMPOTENCY_HEADER = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "description": (
        "Repetir un POST con la misma clave y el mismo cuerpo devuelve la primera respuesta sin "
        "volver a escribir; la misma clave con otro cuerpo es un 422, y un reintento mientras la "
        "primera sigue en curso, un 409."
    ),
    "schema": {"type": "string", "maxLength": 255},
}


def _add(responses: dict, code: str, description: str, content: dict) -> None:
    responses.setdefault(code, {"description": description, "content": content})
    responses[code].setdefault("content", content)


def document_errors(result, generator, request, public):
    """Postprocessing hook: error responses and the idempotency header on every operation."""
    result.setdefault("components", {}).setdefault("schemas", {}).update(ERROR_COMPONENTS)
    for path, methods in result.get("paths", {}).items():
        for method, operation in methods.items():
            responses = operation.setdefault("responses", {})
            # Invalid filters, ordering or pagination parameters are 400s too.
            _add(responses, "400", "Datos no válidos: errores por campo.", _FIELDS)
            _add(responses, "401", "Sin autenticar.", _DETAIL)
            _add(responses, "403", "Autenticado, pero sin el rol que pide esta operación.", _DETAIL)
            if "{" in path:
                _add(responses, "404", "No existe, o este usuario no puede verlo.", _DETAIL)
            if method == "post":
                _add(responses, "409", "Una petición con esta Idempotency-Key sigue en curso.", _FIELDS)
                _add(responses, "422", "Esta Idempotency-Key ya se usó con otro cuerpo.", _FIELDS)
                parameters = operation.setdefault("parameters", [])
                if not any(p.get("name") == IDEMPOTENCY_HEADER["name"] for p in parameters):
                    parameters.append(dict(IDEMPOTENCY_HEADER))
    return result


SCHEMA_SETTINGS = {
    "ENUM_NAME_OVERRIDES": settings.SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"],
    "POSTPROCESSING_HOOKS": [
        *settings.SPECTACULAR_SETTINGS.get("POSTPROCESSING_HOOKS", ["drf_spectacular.hooks.postprocess_schema_enums"]),
        "cobranza.api.schema.document_errors",
    ],
}
