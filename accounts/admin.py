"""Django admin for every ledger model: for administrators, who configure.

Money and timeline rows are read-only here: they change only through the services, which
keep balances and the append-only history consistent.
"""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from .models import BusinessGroup, Client, Contact, Interaction, Invoice, Payment, PaymentAllocation, Segment
from .roles import is_admin


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    list_display = ("name", "code", "priority_weight", "position")
    prepopulated_fields = {"code": ("name",)}


@admin.register(BusinessGroup)
class BusinessGroupAdmin(admin.ModelAdmin):
    search_fields = ("name",)


class ContactInline(admin.TabularInline):
    model = Contact
    extra = 0
    fields = ("role", "name", "email", "phone", "whatsapp", "preferred_channel", "is_active")


@admin.register(Client)
class ClientAdmin(admin.ModelAdmin):
    list_display = ("legal_name", "tax_id", "segment", "collector", "status", "currency")
    list_filter = ("segment", "status", "collector", "country")
    search_fields = ("legal_name", "trade_name", "tax_id")
    autocomplete_fields = ("business_group",)
    inlines = [ContactInline]


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ("name", "client", "role", "email", "phone", "preferred_channel")
    list_filter = ("role", "preferred_channel")
    search_fields = ("name", "email", "client__legal_name")
    raw_id_fields = ("client",)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class AllocationInline(admin.TabularInline):
    model = PaymentAllocation
    extra = 0
    can_delete = False
    readonly_fields = ("invoice", "amount", "created_at")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdmin):
    list_display = (
        "number",
        "client",
        "issue_date",
        "due_date",
        "amount",
        "amount_paid",
        "open_balance",
        "currency",
        "status",
    )
    list_filter = ("status", "currency")
    search_fields = ("number", "external_ref", "client__legal_name")
    date_hierarchy = "due_date"


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = ("received_on", "client", "amount", "unallocated", "currency", "method", "reference")
    list_filter = ("method", "currency")
    search_fields = ("reference", "client__legal_name")
    inlines = [AllocationInline]


@admin.register(PaymentAllocation)
class PaymentAllocationAdmin(ReadOnlyAdmin):
    list_display = ("payment", "invoice", "amount")


@admin.register(Interaction)
class InteractionAdmin(ReadOnlyAdmin):
    list_display = ("occurred_at", "client", "kind", "direction", "outcome", "summary", "author")
    list_filter = ("kind", "direction", "outcome")
    search_fields = ("summary", "client__legal_name")
    raw_id_fields = ("client", "contact", "corrects")


def _administrators_only(request) -> bool:
    # The admin is where administrators configure; membership of the Administrador group
    # grants it, without having to keep Django's is_staff flag in sync by hand.
    return request.user.is_active and is_admin(request.user)


admin.site.has_permission = _administrators_only
admin.site.site_header = _("Morosos — administración")
admin.site.site_title = "Morosos"
