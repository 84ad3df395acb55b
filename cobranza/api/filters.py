"""Query-string filters (django-filter). Date ranges take ``<field>_after``/``<field>_before``."""

import django_filters as filters

from accounts.models import Client, Contact, Interaction, Invoice, Payment
from cobranza.models import CollectorTask, Commitment, Dispute, Notice


class ClientFilter(filters.FilterSet):
    segment = filters.CharFilter(field_name="segment__code")

    class Meta:
        model = Client
        fields = ["segment", "collector", "status", "currency", "country", "tax_id"]


class ContactFilter(filters.FilterSet):
    class Meta:
        model = Contact
        fields = ["client", "role", "is_active"]


class InvoiceFilter(filters.FilterSet):
    due_date = filters.DateFromToRangeFilter()
    issue_date = filters.DateFromToRangeFilter()
    segment = filters.CharFilter(field_name="client__segment__code")
    collector = filters.NumberFilter(field_name="client__collector")

    class Meta:
        model = Invoice
        fields = ["client", "status", "currency", "number", "due_date", "issue_date", "segment", "collector"]


class PaymentFilter(filters.FilterSet):
    received_on = filters.DateFromToRangeFilter()

    class Meta:
        model = Payment
        fields = ["client", "currency", "method", "reference", "received_on"]


class InteractionFilter(filters.FilterSet):
    occurred_at = filters.DateFromToRangeFilter()

    class Meta:
        model = Interaction
        fields = ["client", "kind", "direction", "outcome", "author", "occurred_at"]


class NoticeFilter(filters.FilterSet):
    planned_for = filters.DateFromToRangeFilter()

    class Meta:
        model = Notice
        fields = ["client", "status", "channel", "planned_for"]


class CommitmentFilter(filters.FilterSet):
    class Meta:
        model = Commitment
        fields = ["client", "status"]


class DisputeFilter(filters.FilterSet):
    class Meta:
        model = Dispute
        fields = ["client", "status", "reason", "owner"]


class TaskFilter(filters.FilterSet):
    due_on = filters.DateFromToRangeFilter()

    class Meta:
        model = CollectorTask
        fields = ["client", "status", "kind", "assigned_to", "due_on"]
