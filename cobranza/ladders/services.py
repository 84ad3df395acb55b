"""Writes of the collections set-up: dunning policies, their ladders and message templates.

Same conventions as ``accounts.services``: ``<noun>_<verb>``, keyword-only arguments, the
acting user as ``by`` (a manager or an administrator), one transaction per call, and
``ValidationError`` keyed by field so a form shows each problem next to its input.

Database constraints stay the guarantee (unique position and offset + channel per policy,
message steps need a template); these functions check them first, under a lock on the
policy row, so the user reads a sentence instead of a 500, and still translate an
``IntegrityError`` into the same field errors should two requests race past the lock.

Nothing here writes to a client's timeline: this is configuration, not an event of an
account. ``Policy.updated_at`` moves with every change to a policy or its ladder.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max, ProtectedError
from django.utils.text import slugify
from django.utils.translation import gettext as _

from accounts import audit, clock
from accounts.models import ZERO, Language, Segment
from accounts.roles import is_admin
from accounts.services import ensure_manager
from cobranza.engine import messaging
from cobranza.ladders.selectors import CatchUp, catch_up_preview
from cobranza.models import (
    MESSAGE_CHANNELS,
    MessageTemplate,
    MessageTemplateText,
    Notice,
    NoticeItem,
    Policy,
    PolicyStep,
    StepChannel,
    Tone,
)

POLICY_FIELDS = (
    "name",
    "description",
    "segment",
    "profile",
    "tolerance",
    "is_active",
    # docs/domain.md#portal-limits
    "portal_promise_max_days",
    "portal_promise_min_share",
    "portal_plan_max_installments",
    "min_days_between_contacts",
    "min_days_between_escalations",
    # docs/domain.md#replies
    "reply_pause_days",
)
STEP_FIELDS = (
    "position",
    "name",
    "offset_days",
    "channel",
    "template",
    "tone",
    "min_overdue_amount",
    "requires_approval",
    "is_active",
)
# Positions are small numbers people read; the ceiling leaves room to park a step while
# swapping two (see ``step_move``) far below PositiveSmallIntegerField's limit.
MAX_POSITION = 999
# SMS and WhatsApp carry no subject; a letter prints it as its heading; an email needs one.
SUBJECT_CHANNELS = (StepChannel.EMAIL, StepChannel.LETTER)


def _channel_label(value: str) -> str:
    try:
        return str(StepChannel(value).label)
    except ValueError:
        return value


def _merge(errors: dict[str, list], exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, messages in exc.message_dict.items():
            errors.setdefault(field, []).extend(m for m in messages if m not in errors.get(field, []))
    else:
        errors.setdefault(NON_FIELD_ERRORS, []).extend(exc.messages)


def _touch(policy: Policy) -> None:
    policy.updated_at = clock.now()
    Policy.objects.filter(pk=policy.pk).update(updated_at=policy.updated_at)


def _locked_policy(policy: Policy) -> Policy:
    """The policy row, locked until the end of the transaction: ladder edits of one policy
    happen one at a time, so the uniqueness checks below are reliable."""
    return Policy.objects.select_for_update().get(pk=policy.pk)


def _constraint_name(exc: IntegrityError) -> str:
    diag = getattr(exc.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None) or str(exc)


# --- policies ------------------------------------------------------------------------------


def _policy_errors(policy: Policy) -> None:
    errors: dict[str, list] = {}
    try:
        policy.full_clean(validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        _merge(errors, exc)
    if policy.name and Policy.objects.filter(name__iexact=policy.name).exclude(pk=policy.pk).exists():
        errors.setdefault("name", []).append(_("Ya existe una política con este nombre."))
    if policy.profile:
        taken = Policy.objects.filter(profile=policy.profile).exclude(pk=policy.pk).first()
        if taken is not None:
            errors.setdefault("profile", []).append(
                _("El perfil «%(profile)s» ya tiene la política «%(policy)s»: cada perfil tiene una sola.")
                % {"profile": policy.get_profile_display(), "policy": taken.name}
            )
    if policy.segment_id is not None:
        other = Policy.objects.filter(segment_id=policy.segment_id).exclude(pk=policy.pk).first()
        if other is not None:
            errors.setdefault("segment", []).append(
                _("El segmento «%(segment)s» ya sigue la política «%(policy)s»: cada segmento tiene una sola.")
                % {"segment": policy.segment, "policy": other.name}
            )
    if policy.tolerance is not None and policy.tolerance < 0 and "tolerance" not in errors:
        errors["tolerance"] = [_("El saldo mínimo no puede ser negativo.")]
    # The floor of one ladder step per client per day (docs/domain.md#pacing).
    for field in ("min_days_between_contacts", "min_days_between_escalations"):
        value = getattr(policy, field)
        if value is not None and value < 1 and field not in errors:
            errors[field] = [_("Al menos 1 día: nunca más de un aviso por día a un cliente.")]
    if errors:
        raise ValidationError(errors)


def _save_policy(policy: Policy, **kwargs) -> None:
    try:
        with transaction.atomic():
            policy.save(**kwargs)
    except IntegrityError as exc:
        name = _constraint_name(exc)
        if "segment" in name:
            raise ValidationError({"segment": _("Este segmento ya tiene una política.")}) from exc
        if "profile" in name:
            raise ValidationError({"profile": _("Este perfil ya tiene una política.")}) from exc
        if "tolerance" in name:
            raise ValidationError({"tolerance": _("El saldo mínimo no puede ser negativo.")}) from exc
        if "portal_share" in name:
            raise ValidationError({"portal_promise_min_share": _("Indique un porcentaje entre 0 y 100.")}) from exc
        if "portal_installments" in name:
            raise ValidationError({"portal_plan_max_installments": _("Un plan tiene al menos 2 cuotas.")}) from exc
        if "contact_days" in name or "escalation_days" in name:
            field = "min_days_between_contacts" if "contact_days" in name else "min_days_between_escalations"
            raise ValidationError({field: _("Al menos 1 día: nunca más de un aviso por día a un cliente.")}) from exc
        raise ValidationError({"name": _("Ya existe una política con este nombre.")}) from exc


def policy_create(
    *,
    by: AbstractBaseUser | None,
    name: str,
    segment: Segment | None = None,
    description: str = "",
    tolerance: Decimal = Decimal("1.00"),
    is_active: bool = True,
    profile: str = "",
    min_days_between_contacts: int = 1,
    min_days_between_escalations: int = 7,
    **portal_limits,
) -> Policy:
    """A new ladder, empty: steps are added with ``step_create``. ``portal_limits``: the
    ``portal_*`` fields (docs/domain.md#portal-limits) and ``reply_pause_days``; left out, the model's defaults."""
    ensure_manager(by)
    unknown = set(portal_limits) - {f for f in POLICY_FIELDS if f.startswith("portal_") or f == "reply_pause_days"}
    if unknown:
        raise TypeError(f"policy_create got unknown fields: {sorted(unknown)}")
    policy = Policy(
        name=(name or "").strip(),
        description=(description or "").strip(),
        segment=segment,
        profile=profile or "",
        tolerance=tolerance,
        is_active=is_active,
        min_days_between_contacts=min_days_between_contacts,
        min_days_between_escalations=min_days_between_escalations,
        updated_at=clock.now(),
        **portal_limits,
    )
    _policy_errors(policy)
    with transaction.atomic():
        _save_policy(policy)
    return policy


def policy_update(*, by: AbstractBaseUser | None, policy: Policy, **changes) -> Policy:
    """Change a policy's own fields (``POLICY_FIELDS``); the ladder has its own functions."""
    ensure_manager(by)
    unknown = set(changes) - set(POLICY_FIELDS)
    if unknown:
        raise TypeError(f"policy_update got unknown fields: {sorted(unknown)}")
    for field in ("name", "description"):
        if field in changes:
            changes[field] = (changes[field] or "").strip()
    changed = [field for field, value in changes.items() if getattr(policy, field) != value]
    if not changed:
        return policy
    with transaction.atomic():
        policy = _locked_policy(policy)
        for field in changed:
            setattr(policy, field, changes[field])
        _policy_errors(policy)
        policy.updated_at = clock.now()
        _save_policy(policy, update_fields=[*changed, "updated_at"])
    return policy


# --- steps ---------------------------------------------------------------------------------


def _step_errors(step: PolicyStep) -> None:
    """Field errors for a step, the database constraints included (policy already locked)."""
    errors: dict[str, list] = {}
    try:
        step.full_clean(exclude=["policy"], validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        _merge(errors, exc)
    if step.position is not None and "position" not in errors:
        if not 1 <= step.position <= MAX_POSITION:
            errors["position"] = [
                _("La posición debe estar entre 1 y %(max)d.") % {"max": MAX_POSITION},
            ]
        else:
            other = PolicyStep.objects.filter(policy=step.policy, position=step.position).exclude(pk=step.pk).first()
            if other is not None:
                errors["position"] = [
                    _(
                        "La posición %(position)d ya la ocupa el paso «%(name)s». "
                        "Elija otra o use las flechas para reordenar."
                    )
                    % {"position": step.position, "name": other.name}
                ]
    if step.offset_days is not None and step.channel and "offset_days" not in errors and "channel" not in errors:
        other = (
            PolicyStep.objects.filter(policy=step.policy, offset_days=step.offset_days, channel=step.channel)
            .exclude(pk=step.pk)
            .first()
        )
        if other is not None:
            errors["offset_days"] = [
                _("El paso «%(name)s» ya envía por %(channel)s ese mismo día. Cambie los días o el canal.")
                % {"name": other.name, "channel": _channel_label(step.channel)}
            ]
    if step.channel in MESSAGE_CHANNELS and "template" not in errors:
        if step.template is None:
            errors["template"] = [
                _("Un paso por %(channel)s envía un mensaje: elija su plantilla.")
                % {"channel": _channel_label(step.channel)}
            ]
        elif step.template.channel != step.channel:
            errors["template"] = [
                _("La plantilla «%(template)s» es para %(template_channel)s; este paso envía por %(channel)s.")
                % {
                    "template": step.template.name,
                    "template_channel": _channel_label(step.template.channel),
                    "channel": _channel_label(step.channel),
                }
            ]
    if step.min_overdue_amount is not None and step.min_overdue_amount < 0 and "min_overdue_amount" not in errors:
        errors["min_overdue_amount"] = [_("El importe vencido mínimo no puede ser negativo.")]
    if errors:
        raise ValidationError(errors)


STEP_CONSTRAINT_FIELDS = {
    "step_position_unique": "position",
    "step_offset_channel_unique": "offset_days",
    "step_message_needs_template": "template",
    "step_min_overdue_gte_0": "min_overdue_amount",
    "step_channel_valid": "channel",
}


def _save_step(step: PolicyStep, **kwargs) -> None:
    try:
        with transaction.atomic():
            step.save(**kwargs)
    except IntegrityError as exc:
        name = _constraint_name(exc)
        field = next((f for constraint, f in STEP_CONSTRAINT_FIELDS.items() if constraint in name), NON_FIELD_ERRORS)
        raise ValidationError({field: _("Otro cambio a esta escalera chocó con este; revise el valor.")}) from exc


def _normalize_step(step: PolicyStep) -> None:
    step.name = (step.name or "").strip()
    # Tasks (a call, a review, a hand-off) send no message: a template there means nothing.
    if step.channel not in MESSAGE_CHANNELS:
        step.template = None


def next_position(policy: Policy) -> int:
    top = PolicyStep.objects.filter(policy=policy).aggregate(top=Max("position"))["top"]
    return (top or 0) + 1


def step_create(
    *,
    by: AbstractBaseUser | None,
    policy: Policy,
    name: str,
    offset_days: int,
    channel: str,
    template: MessageTemplate | None = None,
    tone: str = Tone.COURTEOUS,
    min_overdue_amount: Decimal = ZERO,
    requires_approval: bool = False,
    is_active: bool = True,
    position: int | None = None,
) -> PolicyStep:
    """Add a step to a ladder; without ``position`` it goes last."""
    ensure_manager(by)
    with transaction.atomic():
        policy = _locked_policy(policy)
        step = PolicyStep(
            policy=policy,
            position=position if position is not None else next_position(policy),
            name=name,
            offset_days=offset_days,
            channel=channel,
            template=template,
            tone=tone,
            min_overdue_amount=min_overdue_amount,
            requires_approval=requires_approval,
            is_active=is_active,
            # A new step does not sweep in the invoices already past its day (docs/domain.md#pacing).
            applies_from=clock.localdate(),
        )
        _normalize_step(step)
        _step_errors(step)
        _save_step(step)
        _touch(policy)
    return step


def step_update(*, by: AbstractBaseUser | None, step: PolicyStep, **changes) -> PolicyStep:
    """Change a step (``STEP_FIELDS``). Moving it is ``step_move``; a new ``position`` must be free."""
    ensure_manager(by)
    unknown = set(changes) - set(STEP_FIELDS)
    if unknown:
        raise TypeError(f"step_update got unknown fields: {sorted(unknown)}")
    with transaction.atomic():
        policy = _locked_policy(step.policy)
        fresh = PolicyStep.objects.select_related("template").get(pk=step.pk)
        moved_days = "offset_days" in changes and changes["offset_days"] != fresh.offset_days
        reactivated = changes.get("is_active") and not fresh.is_active
        for field, value in changes.items():
            setattr(fresh, field, value)
        if moved_days or reactivated:
            # Invoices already past the step's new day are not swept in (docs/domain.md#pacing).
            fresh.applies_from = clock.localdate()
            fresh.catch_up_confirmed_by = None
            fresh.catch_up_confirmed_at = None
        _normalize_step(fresh)
        _step_errors(fresh)
        _save_step(
            fresh,
            update_fields=[*STEP_FIELDS, "applies_from", "catch_up_confirmed_by", "catch_up_confirmed_at"],
        )
        _touch(policy)
    fresh.policy = policy
    return fresh


def _compact_positions(policy: Policy) -> None:
    """Renumber a ladder 1..n in its current order. Two statements, because PostgreSQL
    checks the (policy, position) unique constraint row by row: park every step above
    the current maximum first, then give each its final number."""
    rows = list(PolicyStep.objects.filter(policy=policy).order_by("position").values_list("pk", "position"))
    if [position for _pk, position in rows] == list(range(1, len(rows) + 1)):
        return
    parking = max(position for _pk, position in rows) + 1
    before = audit.snapshot(PolicyStep.objects.filter(policy=policy))
    for index, (pk, _position) in enumerate(rows):
        PolicyStep.objects.filter(pk=pk).update(position=parking + index)
    for index, (pk, _position) in enumerate(rows, start=1):
        PolicyStep.objects.filter(pk=pk).update(position=index)
    audit.log_updates(by=None, before=before, after=PolicyStep.objects.filter(policy=policy))


class StepRemoval(enum.StrEnum):
    DELETED = "deleted"
    DEACTIVATED = "deactivated"
    ALREADY_INACTIVE = "already_inactive"


def step_has_notices(step: PolicyStep) -> bool:
    return Notice.objects.filter(step=step).exists() or NoticeItem.objects.filter(step=step).exists()


def step_delete(*, by: AbstractBaseUser | None, step: PolicyStep) -> StepRemoval:
    """Delete a step. One that already produced notices stays, deactivated: the notices
    and the clients' timelines point at it, and the planner must keep knowing which
    invoices reached it. The remaining steps are renumbered 1..n."""
    ensure_manager(by)
    with transaction.atomic():
        policy = _locked_policy(step.policy)
        step = PolicyStep.objects.get(pk=step.pk)
        outcome = None
        if not step_has_notices(step):
            try:
                with transaction.atomic():
                    step.delete()
                outcome = StepRemoval.DELETED
            except (ProtectedError, IntegrityError):
                outcome = None  # a notice arrived meanwhile: keep the step, as below
        if outcome is None:
            if not step.is_active:
                return StepRemoval.ALREADY_INACTIVE
            step.is_active = False
            step.save(update_fields=["is_active"])
            outcome = StepRemoval.DEACTIVATED
        else:
            _compact_positions(policy)
        _touch(policy)
    return outcome


def step_move(*, by: AbstractBaseUser | None, step: PolicyStep, direction: str) -> bool:
    """Swap a step with its neighbour above (``"up"``) or below (``"down"``).
    False when it is already first or last."""
    ensure_manager(by)
    if direction not in ("up", "down"):
        raise ValidationError({"direction": _("Dirección no válida.")})
    with transaction.atomic():
        policy = _locked_policy(step.policy)
        step = PolicyStep.objects.get(pk=step.pk)
        siblings = PolicyStep.objects.filter(policy=policy)
        if direction == "up":
            neighbour = siblings.filter(position__lt=step.position).order_by("-position").first()
        else:
            neighbour = siblings.filter(position__gt=step.position).order_by("position").first()
        if neighbour is None:
            return False
        mine, theirs = step.position, neighbour.position
        # The unique (policy, position) constraint is checked row by row: park one step on a
        # free position before the swap. The policy lock keeps that position free.
        parking = siblings.aggregate(top=Max("position"))["top"] + 1
        before = audit.snapshot([step, neighbour])
        PolicyStep.objects.filter(pk=step.pk).update(position=parking)
        PolicyStep.objects.filter(pk=neighbour.pk).update(position=mine)
        PolicyStep.objects.filter(pk=step.pk).update(position=theirs)
        audit.log_updates(by=by, before=before, after=PolicyStep.objects.filter(pk__in=[step.pk, neighbour.pk]))
        _touch(policy)
    return True


# --- catch-up of a new or edited step (docs/domain.md#pacing) ----------------------------


def step_catch_up_confirm(*, by: AbstractBaseUser | None, step: PolicyStep, expected: CatchUp) -> PolicyStep:
    """An administrator lets a new or edited step reach the invoices already past its day:
    ``applies_from`` is cleared and who confirmed, and when, is recorded. ``expected`` is what
    the confirmation page stated (``ladders.selectors.catch_up_preview``); when the planner
    would now do something else, nothing changes and the error says the new figures."""
    if by is not None and not is_admin(by):
        raise PermissionDenied(_("Solo un administrador puede confirmar una puesta al día."))
    with transaction.atomic():
        _locked_policy(step.policy)
        fresh = PolicyStep.objects.select_related("policy").get(pk=step.pk)
        if fresh.applies_from is None:
            raise ValidationError({NON_FIELD_ERRORS: _("Este paso ya se aplica a todas las facturas.")})
        current = catch_up_preview(fresh)
        if not current.same_figures(expected):
            raise ValidationError(
                {
                    NON_FIELD_ERRORS: _(
                        "Las cifras cambiaron mientras decidía: ahora serían %(notices)d avisos. Revíselas y "
                        "confirme de nuevo."
                    )
                    % {"notices": current.notices}
                }
            )
        fresh.applies_from = None
        fresh.catch_up_confirmed_by = by
        fresh.catch_up_confirmed_at = clock.now()
        fresh.save(update_fields=["applies_from", "catch_up_confirmed_by", "catch_up_confirmed_at"])
        _touch(fresh.policy)
    return fresh


# --- message templates ---------------------------------------------------------------------


@dataclass(frozen=True)
class TextDraft:
    """One language's text of a template, as typed."""

    subject: str = ""
    body: str = ""

    @property
    def is_blank(self) -> bool:
        return not (self.subject or "").strip() and not (self.body or "").strip()


def _unique_code(name: str) -> str:
    base = slugify(name)[:50].strip("-") or "plantilla"
    code, n = base, 2
    while MessageTemplate.objects.filter(code=code).exists():
        code, n = f"{base}-{n}", n + 1
    return code


def template_save(
    *,
    by: AbstractBaseUser | None,
    template: MessageTemplate | None = None,
    name: str,
    channel: str,
    tone: str = Tone.COURTEOUS,
    is_active: bool = True,
    texts: Mapping[str, TextDraft],
) -> MessageTemplate:
    """Create (``template=None``) or change a message template and its texts.

    Spanish is the fallback language and is required; another language left blank has no
    text (its clients get the Spanish one). Every text is checked with
    ``messaging.validate_template_text``; its errors come back keyed ``"<language>.subject"``
    and ``"<language>.body"``, like ``messaging.validate_template``."""
    ensure_manager(by)
    errors: dict[str, list] = {}
    drafts = {}
    for language in Language.values:
        draft = texts.get(language) or TextDraft()
        if channel not in SUBJECT_CHANNELS:
            draft = TextDraft(subject="", body=draft.body)
        drafts[language] = draft

    with transaction.atomic():
        if template is not None:
            template = MessageTemplate.objects.select_for_update().get(pk=template.pk)
            previous_channel = template.channel
        else:
            template = MessageTemplate(code=_unique_code(name or ""))
            previous_channel = None
        template.name = (name or "").strip()
        template.channel = channel
        template.tone = tone
        template.is_active = is_active
        template.updated_at = clock.now()
        try:
            template.full_clean(exclude=["code"], validate_unique=False, validate_constraints=False)
        except ValidationError as exc:
            _merge(errors, exc)

        if previous_channel is not None and channel != previous_channel and "channel" not in errors:
            others = list(
                template.steps.exclude(channel=channel).select_related("policy").order_by("policy__name", "position")
            )
            if others:
                errors["channel"] = [
                    _("La usan pasos que envían por %(channel)s (%(steps)s): cambie primero esos pasos.")
                    % {
                        "channel": _channel_label(previous_channel),
                        "steps": ", ".join(f"{s.policy.name} · {s.position}. {s.name}" for s in others[:5]),
                    }
                ]

        for language, draft in drafts.items():
            if language != messaging.FALLBACK_LANGUAGE and draft.is_blank:
                continue
            try:
                messaging.validate_template_text(
                    channel=channel if channel in MESSAGE_CHANNELS else StepChannel.EMAIL,
                    subject=draft.subject,
                    body=draft.body,
                    language=language,
                )
            except ValidationError as exc:
                for key, messages in exc.message_dict.items():
                    errors[f"{language}.{key}"] = messages
        if errors:
            raise ValidationError(errors)

        try:
            with transaction.atomic():
                template.save()
        except IntegrityError as exc:  # another template took the same code meanwhile
            message = _("Ya existe una plantilla con un nombre igual; cambie el nombre.")
            raise ValidationError({"name": message}) from exc
        existing = {t.language: t for t in MessageTemplateText.objects.filter(template=template)}
        for language, draft in drafts.items():
            text = existing.get(language)
            if language != messaging.FALLBACK_LANGUAGE and draft.is_blank:
                if text is not None:
                    text.delete()
                continue
            if text is None:
                MessageTemplateText.objects.create(
                    template=template, language=language, subject=draft.subject, body=draft.body
                )
            elif (text.subject, text.body) != (draft.subject, draft.body):
                text.subject, text.body = draft.subject, draft.body
                text.save(update_fields=["subject", "body"])
    return template
