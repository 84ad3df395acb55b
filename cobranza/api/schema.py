"""drf-spectacular settings for this API's schema views. The enum names live in the project
settings (SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]), where `check --deploy` sees them too."""

from django.conf import settings

SCHEMA_SETTINGS = {"ENUM_NAME_OVERRIDES": settings.SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]}
