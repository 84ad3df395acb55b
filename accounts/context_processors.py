from .roles import Role, is_admin, is_manager, primary_role


def roles(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    role = primary_role(user)
    return {
        "user_is_manager": is_manager(user),
        "user_is_admin": is_admin(user),
        "user_role_label": Role(role).label if role else "",
    }
