"""Serializers: read shapes, and input shapes whose validated data feed the services.

Input serializers never save: the views pass ``validated_data`` to the service functions.
Related objects are looked up among those the requesting user may see, so a collector naming
another collector's client gets a field error, as if it did not exist.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.utils.translation import gettext as _
from rest_framework import serializers

from accounts.models import (
    Client,
    Contact,
    Interaction,
    Invoice,
    Payment,
    PaymentAllocation,
    Segment,
)
from accounts.selectors import clients_visible_to, contacts_visible_to, invoices_visible_to
from cobranza.models import (
    CollectorTask,
    Commitment,
    Dispute,
    DisputeReason,
    DisputeResolution,
    Installment,
    Notice,
    Policy,
    PolicyStep,
)

EARLIEST_CONTACT = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
POSITIVE = {"max_digits": 14, "decimal_places": 2, "min_value": Decimal("0.01")}


class ShownTextsMixin:
    """Texts the system wrote (accounts.texts) go out in the request's language; their code
    and parameters go with them (``<field>_code``, ``<field>_params``, read-only) for programs
    that would rather not parse words (docs/domain.md#texts)."""

    shown_texts: tuple[str, ...] = ()

    def to_representation(self, instance):
        data = super().to_representation(instance)
        for field in self.shown_texts:
            if field in data:
                data[field] = getattr(instance, f"{field}_text")
        return data


class VisibleRelatedField(serializers.PrimaryKeyRelatedField):
    """A primary key among the objects the requesting user may see."""

    def __init__(self, *, visible, **kwargs):
        self.visible = visible
        kwargs.setdefault("queryset", Client.objects.none())  # replaced per request
        super().__init__(**kwargs)

    def get_queryset(self):
        return self.visible(self.context["request"].user)


def _client_field(**kwargs):
    return VisibleRelatedField(visible=clients_visible_to, **kwargs)


def _invoices_field(**kwargs):
    return VisibleRelatedField(visible=invoices_visible_to, many=True, **kwargs)


# --- ledger ------------------------------------------------------------------------------


class SegmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Segment
        fields = ["id", "code", "name", "description", "priority_weight", "position"]


class ClientSerializer(serializers.ModelSerializer):
    segment = serializers.SlugRelatedField(slug_field="code", queryset=Segment.objects.all())
    collector = serializers.PrimaryKeyRelatedField(
        queryset=get_user_model().objects.filter(is_active=True), allow_null=True, required=False
    )

    class Meta:
        model = Client
        fields = [
            "id",
            "legal_name",
            "trade_name",
            "tax_id",
            "kind",
            "segment",
            "collector",
            "credit_limit",
            "payment_terms_days",
            "currency",
            "language",
            "time_zone",
            "country",
            "client_since",
            "status",
            "address",
            "notes",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]
        # Uniqueness and format are the service's job (full_clean): one error path.
        validators = []
        extra_kwargs = {"tax_id": {"validators": []}}


class ContactSerializer(serializers.ModelSerializer):
    client = _client_field()

    class Meta:
        model = Contact
        fields = [
            "id",
            "client",
            "role",
            "name",
            "position",
            "email",
            "phone",
            "whatsapp",
            "preferred_channel",
            "opt_out_email",
            "opt_out_sms",
            "opt_out_whatsapp",
            "opt_out_phone",
            "opt_out_letter",
            "is_active",
            "notes",
            "created_at",
        ]
        read_only_fields = ["created_at"]


class InvoiceSerializer(serializers.ModelSerializer):
    client = _client_field()
    amount = serializers.DecimalField(**POSITIVE)
    due_date = serializers.DateField(required=False)
    currency = serializers.CharField(max_length=3, required=False)
    # A generated column: declared, or it would be typed as a float.
    open_balance = serializers.DecimalField(max_digits=14, decimal_places=2, read_only=True)

    class Meta:
        model = Invoice
        fields = [
            "id",
            "number",
            "client",
            "issue_date",
            "due_date",
            "currency",
            "amount",
            "amount_paid",
            "open_balance",
            "status",
            "external_ref",
            "description",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["amount_paid", "open_balance", "status", "created_at", "updated_at"]
        # The number is a natural key: the view answers a known number itself.
        extra_kwargs = {"number": {"validators": []}}

    def validate(self, attrs):
        # The database constraint would report this without a field; name the field.
        if attrs.get("due_date") and attrs.get("issue_date") and attrs["due_date"] < attrs["issue_date"]:
            raise serializers.ValidationError(
                {"due_date": [_("El vencimiento no puede ser anterior a la fecha de emisión.")]}
            )
        return attrs


class InvoiceStatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Invoice.Status.choices)
    reason = serializers.CharField(max_length=500)


class AllocationSerializer(serializers.ModelSerializer):
    class Meta:
        model = PaymentAllocation
        fields = ["invoice", "amount"]


class AllocationInputSerializer(serializers.Serializer):
    invoice = serializers.IntegerField(min_value=1)
    amount = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=Decimal("0.00"))


class PaymentSerializer(serializers.ModelSerializer):
    client = _client_field()
    amount = serializers.DecimalField(**POSITIVE)
    currency = serializers.CharField(max_length=3, required=False)
    allocations = AllocationSerializer(many=True, read_only=True)

    class Meta:
        model = Payment
        fields = [
            "id",
            "client",
            "received_on",
            "amount",
            "currency",
            "method",
            "reference",
            "unallocated",
            "notes",
            "allocations",
            "created_at",
        ]
        read_only_fields = ["unallocated", "created_at"]
        validators = []
        extra_kwargs = {"reference": {"validators": []}}


class PaymentInputSerializer(PaymentSerializer):
    """Without ``allocations`` the money goes to the oldest open invoices; an explicit list
    (possibly empty) applies just those amounts."""

    allocations = AllocationInputSerializer(many=True, required=False)


class InteractionSerializer(ShownTextsMixin, serializers.ModelSerializer):
    shown_texts = ("summary",)
    client = _client_field()
    contact = VisibleRelatedField(visible=contacts_visible_to, required=False, allow_null=True)
    invoices = _invoices_field(required=False)

    class Meta:
        model = Interaction
        fields = [
            "id",
            "client",
            "kind",
            "direction",
            "outcome",
            "contact",
            "summary",
            "summary_code",
            "summary_params",
            "body",
            "author",
            "occurred_at",
            "nonpayment_reason",
            "next_action_on",
            "invoices",
            "created_at",
        ]
        read_only_fields = ["author", "created_at"]
        extra_kwargs = {"occurred_at": {"required": False}}

    def validate_occurred_at(self, value):
        # Before 1970 is a typo, and before time zones were standard the local offset has seconds
        # (Mexico City's -06:36:36 until 1922), which an RFC 3339 date-time cannot carry.
        if value is not None and value < EARLIEST_CONTACT:
            raise serializers.ValidationError(_("La fecha y hora no puede ser anterior a 1970."))
        return value


# --- collections -------------------------------------------------------------------------


class PolicyStepSerializer(serializers.ModelSerializer):
    class Meta:
        model = PolicyStep
        fields = [
            "id",
            "position",
            "name",
            "offset_days",
            "channel",
            "template",
            "tone",
            "min_overdue_amount",
            "requires_approval",
            "is_active",
        ]


class PolicySerializer(serializers.ModelSerializer):
    segment = serializers.SlugRelatedField(slug_field="code", read_only=True)
    steps = PolicyStepSerializer(many=True, read_only=True)

    class Meta:
        model = Policy
        fields = ["id", "name", "description", "segment", "profile", "tolerance", "is_active", "steps", "updated_at"]


class NoticeSerializer(ShownTextsMixin, serializers.ModelSerializer):
    shown_texts = ("reason",)

    class Meta:
        model = Notice
        fields = [
            "id",
            "client",
            "step",
            "channel",
            "planned_for",
            "scheduled_at",
            "status",
            "contact",
            "recipient",
            "language",
            "subject",
            "attempts",
            "sent_at",
            "reason",
            "reason_code",
            "reason_params",
            "invoices",
        ]


class InstallmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Installment
        fields = ["number", "due_on", "amount", "status", "covered"]


class InstallmentInputSerializer(serializers.Serializer):
    due_on = serializers.DateField()
    amount = serializers.DecimalField(**POSITIVE)


class CommitmentSerializer(serializers.ModelSerializer):
    client = _client_field()
    invoices = _invoices_field(required=False)
    contact = VisibleRelatedField(visible=contacts_visible_to, required=False, allow_null=True)
    installments = InstallmentSerializer(many=True, read_only=True)

    class Meta:
        model = Commitment
        fields = [
            "id",
            "client",
            "kind",
            "status",
            "currency",
            "total",
            "made_on",
            "invoices",
            "contact",
            "grace_days",
            "missed_allowed",
            "missed_count",
            "paid_amount",
            "notes",
            "installments",
            "created_by",
            "created_at",
            "resolved_on",
        ]
        read_only_fields = [
            "kind",
            "status",
            "currency",
            "total",
            "made_on",
            "missed_count",
            "paid_amount",
            "created_by",
            "created_at",
            "resolved_on",
        ]


class CommitmentInputSerializer(CommitmentSerializer):
    installments = InstallmentInputSerializer(many=True, allow_empty=False)
    grace_days = serializers.IntegerField(min_value=0, max_value=60, required=False)
    missed_allowed = serializers.IntegerField(min_value=0, max_value=24, required=False)


class DisputeSerializer(serializers.ModelSerializer):
    client = _client_field()
    invoices = _invoices_field(allow_empty=False)
    reason = serializers.ChoiceField(choices=DisputeReason.choices)
    # Blank while the dispute is open: declared, or the schema's enum would leave "" out.
    resolution = serializers.ChoiceField(choices=DisputeResolution.choices, allow_blank=True, read_only=True)

    class Meta:
        model = Dispute
        fields = [
            "id",
            "client",
            "invoices",
            "reason",
            "description",
            "owner",
            "status",
            "opened_on",
            "opened_by",
            "resolution",
            "resolution_amount",
            "resolution_notes",
            "resolved_on",
        ]
        read_only_fields = [
            "owner",
            "status",
            "opened_on",
            "opened_by",
            "resolution",
            "resolution_amount",
            "resolution_notes",
            "resolved_on",
        ]


class TaskSerializer(ShownTextsMixin, serializers.ModelSerializer):
    shown_texts = ("title",)

    class Meta:
        model = CollectorTask
        fields = [
            "id",
            "client",
            "kind",
            "title",
            "title_code",
            "title_params",
            "assigned_to",
            "due_on",
            "status",
            "notice",
            "commitment",
            "dispute",
            "created_at",
            "completed_at",
            "completed_by",
        ]


class TaskCompleteSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class ErrorSerializer(serializers.Serializer):
    """Validation errors: field name → list of messages (``non_field_errors`` for the rest)."""

    detail = serializers.CharField(required=False)
