"""Staff roles are Django groups. One place decides who may see and do what."""

from django.db.models import TextChoices
from django.utils.translation import gettext_lazy as _


class Role(TextChoices):
    COLLECTOR = "collector", _("Gestor de cobranza")
    MANAGER = "manager", _("Gerente")
    ADMIN = "admin", _("Administrador")


# Group names are stored in Spanish, the product's default language, and never translated
# at run time (they are data, not labels).
GROUP_NAMES = {
    Role.COLLECTOR: "Gestor de cobranza",
    Role.MANAGER: "Gerente",
    Role.ADMIN: "Administrador",
}
_ROLE_BY_GROUP = {name: role for role, name in GROUP_NAMES.items()}


def roles_of(user) -> frozenset[str]:
    """The user's roles, read once per request object and cached on it."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return frozenset()
    cached = getattr(user, "_morosos_roles", None)
    if cached is None:
        names = user.groups.values_list("name", flat=True)
        cached = frozenset(_ROLE_BY_GROUP[n] for n in names if n in _ROLE_BY_GROUP)
        if user.is_superuser:
            cached |= {Role.ADMIN}
        user._morosos_roles = cached
    return cached


def is_admin(user) -> bool:
    return Role.ADMIN in roles_of(user)


def is_manager(user) -> bool:
    """Managers and administrators see the whole portfolio."""
    return bool(roles_of(user) & {Role.MANAGER, Role.ADMIN})


def is_collector(user) -> bool:
    return Role.COLLECTOR in roles_of(user)


def is_staff_member(user) -> bool:
    return bool(roles_of(user))


def primary_role(user) -> str | None:
    roles = roles_of(user)
    for role in (Role.ADMIN, Role.MANAGER, Role.COLLECTOR):
        if role in roles:
            return role
    return None
