"""Forms of the import pages: the upload, and the column mapping (their header for each of
our fields) when no saved mapping is chosen."""

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.models import Segment
from cobranza.imports import services as imports
from cobranza.models import ImportKind, ImportMapping

MAX_UPLOAD_BYTES = 50 * 1024 * 1024


class ImportUploadForm(forms.Form):
    kind = forms.ChoiceField(label=_("Qué contiene"), choices=ImportKind.choices)
    file = forms.FileField(label=_("Archivo (CSV o XLSX)"))
    mapping = forms.ModelChoiceField(
        label=_("Mapeo guardado"),
        queryset=ImportMapping.objects.order_by("name"),
        required=False,
        empty_label=_("— Definir las columnas después de subir —"),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if not upload.name.lower().endswith((".csv", ".txt", ".xlsx")):
            raise forms.ValidationError(_("Suba un archivo CSV o XLSX."))
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(_("El archivo supera los 50 MB."))
        # Read once here, within the limits (rows, cells, an XLSX's uncompressed size): a file
        # over them is refused on this field, and the job keeps what its pages need.
        try:
            self.file_facts = imports.file_facts(upload.read(), name=upload.name)
        except imports.ImportRejected as exc:
            raise forms.ValidationError([e["reason"] for e in exc.errors]) from exc
        finally:
            upload.seek(0)
        return upload

    def clean(self):
        data = super().clean()
        mapping = data.get("mapping")
        if mapping and data.get("kind") and mapping.kind != data["kind"]:
            self.add_error("mapping", _("Ese mapeo es para otro tipo de importación."))
        return data


class MappingForm(forms.Form):
    """One select per field of ours, listing their headers."""

    date_format = forms.ChoiceField(
        label=_("Formato de fecha"),
        choices=[
            ("auto", _("Detectar (sólo si no es ambiguo)")),
            ("%d/%m/%Y", _("día/mes/año")),
            ("%m/%d/%Y", _("mes/día/año")),
            ("%Y-%m-%d", _("año-mes-día (ISO)")),
        ],
    )
    decimal_separator = forms.ChoiceField(
        label=_("Separador decimal"), choices=[(".", _("punto (1,234.56)")), (",", _("coma (1.234,56)"))]
    )
    encoding = forms.ChoiceField(
        label=_("Codificación"), choices=[("auto", _("Detectar")), ("utf-8", "UTF-8"), ("latin-1", "Latin-1")]
    )
    ignore_unmapped = forms.BooleanField(label=_("Ignorar las columnas que no asigne"), required=False, initial=True)
    save_as = forms.CharField(label=_("Guardar el mapeo como (origen)"), max_length=120, required=False)

    def __init__(self, *args, kind: str, headers: list[str], initial: dict | None = None, **kwargs):
        super().__init__(*args, initial=initial, **kwargs)
        self.kind = kind
        guess = imports.guess_columns(kind, headers)
        choices = [("", _("— sin asignar —"))] + [(h, h) for h in headers if h]
        self.field_names = []
        for spec in imports.fields_for(kind):
            name = f"col_{spec.name}"
            self.fields[name] = forms.ChoiceField(
                label=spec.label, choices=choices, required=spec.required, initial=guess.get(spec.name, "")
            )
            self.field_names.append(name)

        if kind in (ImportKind.INVOICES, ImportKind.LEDGER):
            # The clients the file names that do not exist (always created by the ledger kind).
            clients = (initial or {}).get("clients") or {}
            if kind == ImportKind.INVOICES:
                self.fields["create_clients"] = forms.BooleanField(
                    label=_("Crear los clientes que faltan"), required=False, initial=clients.get("create", False)
                )
            self.fields["segment"] = segment_field(initial=clients.get("segment"), required=False)

    def columns(self) -> dict:
        cols = {name[4:]: value for name, value in self.cleaned_data.items() if name.startswith("col_") and value}
        if self.cleaned_data.get("ignore_unmapped"):
            cols[imports.IGNORE_KEY] = "*"
        return cols

    def mapping_fields(self):
        return [self[name] for name in self.field_names]

    def clients(self) -> dict | None:
        """The choice about missing clients, for the job (None: the kind has none)."""
        if "segment" not in self.fields:
            return None
        create = self.kind == ImportKind.LEDGER or self.cleaned_data.get("create_clients", False)
        return imports.clients_choice(create=create, segment=self.cleaned_data["segment"])


def segment_field(*, initial: str | None = None, required: bool = True) -> forms.ChoiceField:
    """The segment the clients an import creates go to (default: ``imports.default_segment``)."""
    segments = list(Segment.objects.order_by("position", "name").values_list("code", "name"))
    default = imports.default_segment()
    return forms.ChoiceField(
        label=_("Segmento de los clientes nuevos"),
        choices=segments,
        initial=initial or (default.code if default else ""),
        required=required,
    )


class ClientsChoiceForm(forms.Form):
    """From the preview: create the clients the file names that do not exist, in a segment."""

    def __init__(self, *args, initial_segment: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["segment"] = segment_field(initial=initial_segment)
