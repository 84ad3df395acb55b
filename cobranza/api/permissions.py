"""Who may use the API: the same role rules as the browser (accounts.roles)."""

from rest_framework.permissions import SAFE_METHODS, BasePermission

from accounts.roles import is_manager, is_staff_member


class IsStaffMember(BasePermission):
    """Logged in (token or session) and with a staff role; anyone else gets 401/403."""

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and is_staff_member(request.user))


class IsManager(IsStaffMember):
    def has_permission(self, request, view) -> bool:
        return super().has_permission(request, view) and is_manager(request.user)


class ManagerWrites(IsStaffMember):
    """Any staff member reads; only managers write (client master data, invoices)."""

    def has_permission(self, request, view) -> bool:
        if not super().has_permission(request, view):
            return False
        return request.method in SAFE_METHODS or is_manager(request.user)
