"""REST API v1. Reads go through the visibility selectors; writes call the service
functions with ``by=request.user`` — nothing here saves a domain model.

Errors: every validation problem is a 400 ``{"field": ["message"], ...}``, including the
services' ``django.core.exceptions.ValidationError`` (mapped by ``api_exception_handler``);
``PermissionDenied`` from a service is a 403; another collector's object is a 404.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Prefetch
from django.http import JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler

from accounts import services
from accounts.models import Interaction, Payment, PaymentAllocation, Segment
from accounts.selectors import clients_visible_to, contacts_visible_to, invoices_visible_to
from cobranza.models import CollectorTask, Commitment, CommitmentKind, Dispute, Notice, Policy
from cobranza.worklist import services as worklist_services
from cobranza.workspace import services as workspace_services

from . import filters, serializers
from .idempotency import idempotent
from .pagination import StrictLimitOffsetPagination
from .permissions import IsManager, IsStaffMember, ManagerWrites


def _message_dict(exc: DjangoValidationError) -> dict[str, list[str]]:
    if hasattr(exc, "error_dict"):
        return {
            ("non_field_errors" if field == NON_FIELD_ERRORS else field): [str(m) for m in messages]
            for field, messages in exc.message_dict.items()
        }
    return {"non_field_errors": [str(m) for m in exc.messages]}


@csrf_exempt  # it changes nothing: a POST with a session cookie gets the JSON 404 too, not the CSRF page
@login_not_required  # a 404 for everyone: it reveals nothing, and API clients are not browsers
def api_not_found(request, *args, **kwargs):
    """Any /api/ path that no route matches (``/api/v1/clients/abc/``, a typo): the API's JSON
    404 instead of the site's HTML page. Meant as the last pattern of cobranza/api/urls.py
    (``re_path(r"^.*$", views.api_not_found, name="not-found")``); it reveals nothing, so it
    needs no login."""
    return JsonResponse({"detail": str(NotFound.default_detail)}, status=status.HTTP_404_NOT_FOUND)


def api_exception_handler(exc, context):
    """DRF's handler, plus the services' Django ValidationError as a structured 400."""
    if isinstance(exc, DjangoValidationError):
        exc = ValidationError(_message_dict(exc))
    return exception_handler(exc, context)


class ApiViewSet(viewsets.GenericViewSet):
    permission_classes = [IsStaffMember]
    pagination_class = StrictLimitOffsetPagination
    lookup_value_converter = "int"  # /clients/abc/ is a 404, not a lookup error

    def get_exception_handler(self):
        return api_exception_handler

    def _input(self, serializer_class, **kwargs):
        serializer = serializer_class(data=self.request.data, context=self.get_serializer_context(), **kwargs)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def _output(self, instance, code=status.HTTP_200_OK):
        return Response(self.get_serializer(instance).data, status=code)


class ReadOnlyApiViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    pass


# --- ledger ------------------------------------------------------------------------------


class SegmentViewSet(ReadOnlyApiViewSet):
    serializer_class = serializers.SegmentSerializer
    queryset = Segment.objects.all()
    ordering_fields = ["position", "name", "code"]
    filterset_fields = ["code"]


@extend_schema_view(
    create=extend_schema(responses={201: serializers.ClientSerializer}),
    update=extend_schema(responses={200: serializers.ClientSerializer}),
)
class ClientViewSet(ReadOnlyApiViewSet, mixins.CreateModelMixin, mixins.UpdateModelMixin):
    """Clients the user works: all for managers, their own for a collector. Writes: managers."""

    serializer_class = serializers.ClientSerializer
    permission_classes = [ManagerWrites]
    filterset_class = filters.ClientFilter
    ordering_fields = ["legal_name", "created_at", "updated_at", "credit_limit", "id"]

    def get_queryset(self):
        return clients_visible_to(self.request.user).select_related("segment")

    @idempotent
    def create(self, request, *args, **kwargs):
        data = self._input(serializers.ClientSerializer)
        client = services.client_create(by=request.user, **data)
        return self._output(client, status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        client = self.get_object()
        serializer = self.get_serializer(client, data=request.data, partial=kwargs.pop("partial", False))
        serializer.is_valid(raise_exception=True)
        client = services.client_update(by=request.user, client=client, **serializer.validated_data)
        return self._output(client)


@extend_schema_view(
    create=extend_schema(responses={201: serializers.ContactSerializer}),
)
class ContactViewSet(ReadOnlyApiViewSet, mixins.CreateModelMixin, mixins.UpdateModelMixin):
    serializer_class = serializers.ContactSerializer
    filterset_class = filters.ContactFilter
    ordering_fields = ["name", "created_at", "id"]

    def get_queryset(self):
        return contacts_visible_to(self.request.user).order_by("client_id", "role", "name", "id")

    @idempotent
    def create(self, request, *args, **kwargs):
        data = dict(self._input(serializers.ContactSerializer))
        contact = services.contact_create(by=request.user, client=data.pop("client"), **data)
        return self._output(contact, status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        contact = self.get_object()
        serializer = self.get_serializer(contact, data=request.data, partial=kwargs.pop("partial", False))
        serializer.is_valid(raise_exception=True)
        changes = dict(serializer.validated_data)
        client = changes.pop("client", contact.client)
        if client.pk != contact.client_id:
            raise ValidationError({"client": [_("Un contacto no puede cambiar de cliente.")]})
        contact = services.contact_update(by=request.user, contact=contact, **changes)
        return self._output(contact)


INVOICE_COMPARED = ("client", "issue_date", "due_date", "amount", "currency", "external_ref", "description")


@extend_schema_view(
    create=extend_schema(
        description=(
            "Alta de factura (gerentes). El folio (`number`) es clave natural: si ya existe con los "
            "mismos datos se devuelve la existente (200); si existe con otros datos, 409."
        ),
        responses={
            201: serializers.InvoiceSerializer,
            200: serializers.InvoiceSerializer,
            409: OpenApiResponse(description="El folio ya existe con otros datos."),
        },
    )
)
class InvoiceViewSet(ReadOnlyApiViewSet, mixins.CreateModelMixin):
    serializer_class = serializers.InvoiceSerializer
    permission_classes = [ManagerWrites]
    filterset_class = filters.InvoiceFilter
    ordering_fields = ["due_date", "issue_date", "amount", "open_balance", "number", "id"]

    def get_queryset(self):
        return invoices_visible_to(self.request.user)

    @idempotent
    def create(self, request, *args, **kwargs):
        data = dict(self._input(serializers.InvoiceSerializer))
        number = data["number"].strip()
        existing = invoices_visible_to(request.user).filter(number=number).first()
        if existing is not None:
            return self._same_invoice(existing, data)
        invoice = services.invoice_create(by=request.user, **data)
        return self._output(invoice, status.HTTP_201_CREATED)

    def _same_invoice(self, existing, data):
        wanted = {
            **data,
            "due_date": data.get("due_date") or existing.due_date,
            "currency": (data.get("currency") or data["client"].currency).upper(),
            "external_ref": data.get("external_ref", "").strip(),
            "description": data.get("description", "").strip(),
        }
        different = sorted(f for f in INVOICE_COMPARED if getattr(existing, f) != wanted[f])
        if not different:
            return self._output(existing, status.HTTP_200_OK)
        message = _("Ya existe una factura con este folio y otros datos (%(fields)s).") % {
            "fields": ", ".join(different)
        }
        return Response({"number": [message], "existing_id": existing.pk}, status=status.HTTP_409_CONFLICT)

    @extend_schema(request=serializers.InvoiceStatusSerializer, responses={200: serializers.InvoiceSerializer})
    @action(detail=True, methods=["post"], url_path="status", url_name="set-status", permission_classes=[IsManager])
    @idempotent
    def set_status(self, request, pk=None):
        invoice = self.get_object()
        data = self._input(serializers.InvoiceStatusSerializer)
        invoice = services.invoice_set_status(by=request.user, invoice=invoice, **data)
        return self._output(invoice)


@extend_schema_view(
    create=extend_schema(
        description=(
            "Registra un pago. La referencia es clave natural: repetir un pago con la misma referencia "
            "(mismo cliente, importe y moneda) devuelve el existente (200) sin registrar otro."
        ),
        request=serializers.PaymentInputSerializer,
        responses={201: serializers.PaymentSerializer, 200: serializers.PaymentSerializer},
    )
)
class PaymentViewSet(ReadOnlyApiViewSet, mixins.CreateModelMixin):
    serializer_class = serializers.PaymentSerializer
    filterset_class = filters.PaymentFilter
    ordering_fields = ["received_on", "amount", "created_at", "id"]

    def get_queryset(self):
        return Payment.objects.filter(client__in=clients_visible_to(self.request.user).values("pk")).prefetch_related(
            Prefetch("allocations", queryset=PaymentAllocation.objects.order_by("id"))
        )

    @idempotent
    def create(self, request, *args, **kwargs):
        data = dict(self._input(serializers.PaymentInputSerializer))
        allocations = data.pop("allocations", None)
        if allocations is not None:
            allocations = [services.AllocationRequest(invoice_id=a["invoice"], amount=a["amount"]) for a in allocations]
        payment = services.payment_record(by=request.user, allocations=allocations, **data)
        created = getattr(payment, "created", True)
        payment = self.get_queryset().get(pk=payment.pk)  # with its allocations
        return self._output(payment, status.HTTP_201_CREATED if created else status.HTTP_200_OK)


@extend_schema_view(create=extend_schema(responses={201: serializers.InteractionSerializer}))
class InteractionViewSet(ReadOnlyApiViewSet, mixins.CreateModelMixin):
    """The client timeline (append-only: create logs a new entry)."""

    serializer_class = serializers.InteractionSerializer
    filterset_class = filters.InteractionFilter
    ordering_fields = ["occurred_at", "created_at", "id"]

    def get_queryset(self):
        return Interaction.objects.filter(
            client__in=clients_visible_to(self.request.user).values("pk")
        ).prefetch_related("invoices")

    @idempotent
    def create(self, request, *args, **kwargs):
        data = dict(self._input(serializers.InteractionSerializer))
        entry = services.interaction_log(by=request.user, **data)
        return self._output(entry, status.HTTP_201_CREATED)


# --- collections -------------------------------------------------------------------------


class PolicyViewSet(ReadOnlyApiViewSet):
    """Dunning ladders with their steps: managers only, like the policy pages."""

    serializer_class = serializers.PolicySerializer
    permission_classes = [IsManager]
    queryset = Policy.objects.select_related("segment").prefetch_related("steps")
    ordering_fields = ["name", "id"]
    filterset_fields = ["is_active", "profile"]


class NoticeViewSet(ReadOnlyApiViewSet):
    serializer_class = serializers.NoticeSerializer
    filterset_class = filters.NoticeFilter
    ordering_fields = ["planned_for", "scheduled_at", "sent_at", "id"]

    def get_queryset(self):
        return Notice.objects.filter(client__in=clients_visible_to(self.request.user).values("pk")).prefetch_related(
            "invoices"
        )


class _CommitmentViewSet(ReadOnlyApiViewSet, mixins.CreateModelMixin):
    kind: str = ""
    serializer_class = serializers.CommitmentSerializer
    filterset_class = filters.CommitmentFilter
    ordering_fields = ["made_on", "total", "id"]

    def get_queryset(self):
        return (
            Commitment.objects.filter(kind=self.kind, client__in=clients_visible_to(self.request.user).values("pk"))
            .prefetch_related("invoices", "installments")
            .order_by("-made_on", "-id")
        )

    @idempotent
    def create(self, request, *args, **kwargs):
        data = dict(self._input(serializers.CommitmentInputSerializer))
        installments = [(row["due_on"], row["amount"]) for row in data.pop("installments")]
        commitment = workspace_services.commitment_create(
            by=request.user,
            kind=self.kind,
            installments=installments,
            client=data["client"],
            invoices=data.get("invoices") or None,
            contact=data.get("contact"),
            grace_days=data.get("grace_days"),
            missed_allowed=data.get("missed_allowed"),
            notes=data.get("notes", ""),
        )
        return self._output(self.get_queryset().get(pk=commitment.pk), status.HTTP_201_CREATED)


_commitment_create_schema = extend_schema(
    request=serializers.CommitmentInputSerializer, responses={201: serializers.CommitmentSerializer}
)


@extend_schema_view(create=_commitment_create_schema)
class PromiseViewSet(_CommitmentViewSet):
    """Promises to pay (one or several dates)."""

    kind = CommitmentKind.PROMISE


@extend_schema_view(create=_commitment_create_schema)
class PaymentPlanViewSet(_CommitmentViewSet):
    """Payment plans (installments)."""

    kind = CommitmentKind.PLAN


@extend_schema_view(create=extend_schema(responses={201: serializers.DisputeSerializer}))
class DisputeViewSet(ReadOnlyApiViewSet, mixins.CreateModelMixin):
    serializer_class = serializers.DisputeSerializer
    filterset_class = filters.DisputeFilter
    ordering_fields = ["opened_on", "id"]

    def get_queryset(self):
        return (
            Dispute.objects.filter(client__in=clients_visible_to(self.request.user).values("pk"))
            .prefetch_related("invoices")
            .order_by("-opened_on", "-id")
        )

    @idempotent
    def create(self, request, *args, **kwargs):
        data = self._input(serializers.DisputeSerializer)
        dispute = workspace_services.dispute_open(
            by=request.user,
            client=data["client"],
            invoices=list(data["invoices"]),
            reason=data["reason"],
            description=data["description"],
        )
        return self._output(self.get_queryset().get(pk=dispute.pk), status.HTTP_201_CREATED)


class TaskViewSet(ReadOnlyApiViewSet):
    serializer_class = serializers.TaskSerializer
    filterset_class = filters.TaskFilter
    ordering_fields = ["due_on", "created_at", "id"]

    def get_queryset(self):
        return CollectorTask.objects.filter(client__in=clients_visible_to(self.request.user).values("pk"))

    @extend_schema(request=serializers.TaskCompleteSerializer, responses={200: serializers.TaskSerializer})
    @action(detail=True, methods=["post"], url_path="complete", url_name="complete")
    @idempotent
    def complete(self, request, pk=None):
        task = self.get_object()
        data = self._input(serializers.TaskCompleteSerializer)
        task = worklist_services.task_complete(by=request.user, task=task, note=data.get("note", ""))
        return self._output(task)
