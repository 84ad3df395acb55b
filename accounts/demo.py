"""Demo data: a believable collections portfolio for demos, manual testing and benchmarks.

``python manage.py seed_demo`` calls :func:`seed`. It builds staff users (one documented
password, :data:`DEMO_PASSWORD`) and a portfolio of clients whose payment history follows the
five kinds of late payer (plus punctual payers, docs/domain.md#late-payers): ~10 invoices per client over
the 18 months before ``today``, the payments and allocations that settled them (or not), and
a timeline of reminders, calls, promises, disputes and escalations written in Spanish.

Why this module does not call ``accounts.services``
--------------------------------------------------
Seeding is an exception to "every write goes through a service":
the services work one client at a time, with row locks and one transaction per call, which
would take hours for the 100,000 clients (~1,000,000 invoices) the benchmarks need. Here each
chunk of clients is generated in memory as plain rows and handed to the ledger's bulk writer,
``services_bulk.ledger_bulk_insert`` (the one imports and the benchmark loader use), which
refuses a chunk that breaks an invariant of the services or the database. The generator still
does the services' bookkeeping, since the writer checks it rather than doing it:

- ``Invoice.amount_paid`` is the sum of the invoice's allocations and ``status`` agrees with it
  (``open`` ⇔ nothing paid, ``partially_paid``, ``paid`` ⇔ fully paid) unless a person set
  ``disputed``, ``written_off`` or ``cancelled``; ``open_balance`` is computed by the database
  (a generated column) and never set here;
- ``Payment.unallocated`` is the payment's amount minus its allocations (never negative):
  overpayments and advances leave client credit (*saldo a favor*);
- allocations are in the payment's currency, one row per (payment, invoice);
- invoice numbers, payment references and tax ids are unique; currencies, countries, time
  zones, choices and e-mail addresses are valid;
- the timeline is append-only: entries are only inserted; the system entries use the same
  wording as the services that would have written them. One kind is left out on purpose: the
  "Factura … emitida" entry of ``invoice_create`` (about ten per client, it would be almost
  half the timeline rows and says nothing the invoice list does not).

Determinism: every value comes from one ``random.Random(seed)`` consumed in a fixed order and
from ``today``; nothing reads the clock, so the same seed and ``today`` give the same data,
whatever the chunk size. Dates never go past ``today − 1``: the history ends yesterday.

Names, e-mail domains (subdomains of ``example.com`` and ``example.net``/``example.org``,
reserved for documentation by RFC 2606) and phone numbers are invented.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import math
import random
import threading
import time
import unicodedata
import zoneinfo
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection, models, transaction

from . import numbers, services_bulk
from .models import (
    ZERO,
    BusinessGroup,
    Client,
    Contact,
    Interaction,
    Invoice,
    Payment,
    PaymentAllocation,
    Segment,
)
from .roles import GROUP_NAMES, Role
from .services_bulk import (
    AllocationRow,
    BusinessGroupRow,
    ClientRow,
    ContactRow,
    InteractionRow,
    InvoiceRow,
    LedgerRows,
    PaymentRow,
)

DEMO_PASSWORD = "morosos-demo"  # documented in the README; every demo user has it
DEFAULT_SEED = 42
DEFAULT_CLIENTS = 200
CHUNK_SIZE = 2000  # clients generated and handed to the bulk writer at a time
HISTORY_DAYS = 540  # ~18 months of invoices before today

CENT = Decimal("0.01")
InteractionInvoice = Interaction.invoices.through
KIND, OUT, DIR = Interaction.Kind, Interaction.Outcome, Interaction.Direction

# --- the cast ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: str
    first_name: str
    last_name: str

    @property
    def email(self) -> str:
        return f"{self.username}@example.com"


DEMO_USERS: tuple[DemoUser, ...] = (
    DemoUser("admin", Role.ADMIN, "Adriana", "Villarreal Cantú"),
    DemoUser("gerente", Role.MANAGER, "Gabriela", "Treviño Garza"),
    DemoUser("gestor1", Role.COLLECTOR, "Luis Ángel", "Hernández Ramos"),
    DemoUser("gestor2", Role.COLLECTOR, "María Fernanda", "Ruiz Ochoa"),
    DemoUser("gestor3", Role.COLLECTOR, "Jorge", "Castañeda Ibarra"),
)
COLLECTOR_USERNAMES = ("gestor1", "gestor2", "gestor3")


def ensure_demo_users(stdout: Callable[[str], None] | None = None) -> dict[str, object]:
    """Create the demo users if missing (idempotent). An existing user keeps its password
    (someone may have changed it on purpose); its demo group is added if it lacks it."""
    User = get_user_model()
    users = {}
    with transaction.atomic():
        for spec in DEMO_USERS:
            user = User.objects.filter(username=spec.username).first()
            if user is None:
                user = User(
                    username=spec.username,
                    first_name=spec.first_name,
                    last_name=spec.last_name,
                    email=spec.email,
                    is_staff=spec.role == Role.ADMIN,
                    is_superuser=spec.role == Role.ADMIN,
                )
                user.set_password(DEMO_PASSWORD)
                user.save()
                if stdout:
                    stdout(f"  created user {spec.username} ({GROUP_NAMES[spec.role]})")
            user.groups.add(Group.objects.get(name=GROUP_NAMES[spec.role]))
            users[spec.username] = user
    return users


# --- payer profiles ---------------------------------------------------------------------

PUNCTUAL = "puntual"
CASUAL = "atraso_casual"  # always pays, occasionally a few days late
INTENTIONAL = "moroso_con_intencion"  # can pay, pays 20–45 days late, always in the end
NEGLIGENT = "negligente"  # stops paying: old unpaid invoices, escalation, guarantor
CIRCUMSTANTIAL = "por_circunstancias"  # withholds an invoice over a complaint (dispute)
CHRONIC = "cronico"  # always late, pays in installments
PROFILES = (PUNCTUAL, CASUAL, INTENTIONAL, NEGLIGENT, CIRCUMSTANTIAL, CHRONIC)

# Drawn like cards from a shuffled deck of 20, so that every 20 clients hold every profile
# (a 30-client test portfolio is never missing one) in these proportions.
PROFILE_DECK = (
    (PUNCTUAL,) * 7 + (CASUAL,) * 4 + (INTENTIONAL,) * 3 + (CHRONIC,) * 2 + (NEGLIGENT,) * 2 + (CIRCUMSTANTIAL,) * 2
)

# Segment by profile: key accounts are mostly good payers, high risk mostly the bad ones.
SEGMENT_WEIGHTS = {
    PUNCTUAL: {"cuenta-clave": 30, "regular": 50, "esporadico": 20},
    CASUAL: {"cuenta-clave": 20, "regular": 55, "esporadico": 25},
    INTENTIONAL: {"cuenta-clave": 20, "regular": 55, "esporadico": 10, "alto-riesgo": 15},
    CIRCUMSTANTIAL: {"cuenta-clave": 25, "regular": 55, "esporadico": 20},
    CHRONIC: {"regular": 30, "esporadico": 10, "alto-riesgo": 60},
    NEGLIGENT: {"regular": 15, "esporadico": 15, "alto-riesgo": 70},
}
# (min, max) invoices over 18 months, (min, max) invoice amount in MXN before tax, terms.
SEGMENT_SHAPE = {
    "cuenta-clave": ((14, 22), (20_000, 400_000), {30: 3, 45: 3, 60: 2}),
    "regular": ((8, 12), (3_000, 80_000), {15: 2, 30: 5, 45: 1}),
    "esporadico": ((2, 5), (1_000, 30_000), {15: 1, 30: 1}),
    "alto-riesgo": ((6, 12), (2_000, 60_000), {15: 3, 30: 2}),
}
PROFILE_NOTES = {
    PUNCTUAL: "Cliente puntual: se le ofrece 2 % de descuento por pronto pago; puede perderlo si se atrasa.",
    CASUAL: "Paga bien; atrasos esporádicos por cambios en su área de cuentas por pagar. Recordatorio amable.",
    INTENTIONAL: "Paga siempre, pero prioriza a otros proveedores: seguimiento firme con fechas fijas.",
    CHRONIC: "Problemas recurrentes de liquidez: plan de pagos, plazo de crédito corto y monitoreo estrecho.",
    NEGLIGENT: "Sin voluntad de pago: escalar rápido, contactar al aval y valorar agencia externa.",
    CIRCUMSTANTIAL: "Retiene pagos cuando tiene una reclamación: resolver la incidencia antes de cobrar.",
}

# --- vocabulary -------------------------------------------------------------------------

FEMALE = (
    "María Guadalupe", "Ana Laura", "Verónica", "Patricia", "Alejandra", "Claudia", "Gabriela", "Mónica",
    "Adriana", "Leticia", "Rocío", "Silvia", "Norma", "Elizabeth", "Fernanda", "Daniela", "Karla", "Mariana",
    "Lucía", "Sofía", "Ximena", "Araceli", "Yolanda", "Beatriz", "Rosa María", "Diana", "Paola", "Érika",
    "Itzel", "Brenda", "Guadalupe", "Teresa", "Margarita", "Elena", "Carmen",
)  # fmt: skip
MALE = (
    "José Luis", "Juan Carlos", "Miguel Ángel", "Francisco", "Jorge", "Alejandro", "Ricardo", "Fernando",
    "Roberto", "Eduardo", "Carlos", "Javier", "Arturo", "Raúl", "Sergio", "Héctor", "Óscar", "Manuel",
    "Rafael", "Enrique", "Armando", "Gerardo", "Jesús", "Luis Fernando", "Diego", "Emilio", "Rodrigo",
    "Iván", "Mauricio", "Alberto", "Antonio", "Pedro", "Víctor", "Hugo", "Salvador",
)  # fmt: skip
SURNAMES = (
    "Hernández", "García", "Martínez", "López", "González", "Pérez", "Rodríguez", "Sánchez", "Ramírez",
    "Cruz", "Flores", "Gómez", "Morales", "Vázquez", "Jiménez", "Reyes", "Díaz", "Torres", "Gutiérrez",
    "Ruiz", "Mendoza", "Aguilar", "Ortiz", "Moreno", "Castillo", "Romero", "Álvarez", "Méndez", "Chávez",
    "Rivera", "Juárez", "Ramos", "Domínguez", "Herrera", "Medina", "Castro", "Vargas", "Guzmán",
    "Velázquez", "Muñoz", "Rojas", "Contreras", "Salazar", "Luna", "Ortega", "Santiago", "Guerrero",
    "Estrada", "Bautista", "Cortés", "Soto", "Alvarado", "Espinoza", "Lara", "Ávila", "Ríos", "Cervantes",
    "Silva", "Delgado", "Vega", "Márquez", "Sandoval", "Fernández", "León", "Carrillo", "Mejía", "Solís",
    "Núñez", "Rosas", "Valdez", "Ibarra", "Campos", "Santos", "Camacho", "Navarro", "Peña", "Maldonado",
    "Rosales", "Acosta", "Garza", "Treviño", "Villarreal", "Cantú", "Zamora", "Olvera", "Escobedo",
)  # fmt: skip
US_FIRST = ("John", "Michael", "David", "Robert", "James", "Sarah", "Jennifer", "Linda", "Emily", "Karen")
US_LAST = ("Miller", "Johnson", "Smith", "Brown", "Davis", "Wilson", "Anderson", "Taylor", "Moore", "Clark")

# (trade line, names it takes, what its invoices say). "{S}" is a surname.
MX_TRADES = (
    ("Abarrotes", ("La Esperanza", "La Guadalupana", "El Porvenir", "San José", "La Económica", "Don {S}"),
     "Venta de abarrotes y mercancía general"),
    ("Ferretería", ("El Martillo", "La Llave", "Hermanos {S}", "El Tornillo", "{S}", "La Tuerca"),
     "Suministro de ferretería y herramienta"),
    ("Distribuidora", ("{S}", "del Bajío", "del Norte", "Peninsular", "de Occidente", "{S} y Asociados"),
     "Venta de mercancía para reventa"),
    ("Comercializadora", ("{S}", "del Centro", "Azteca", "del Golfo", "Mexiquense", "Tapatía"),
     "Venta de productos según pedido"),
    ("Transportes", ("{S} Hermanos", "Rápidos del Golfo", "del Pacífico", "{S}", "Halcón"),
     "Servicio de mantenimiento de flotilla"),
    ("Construcciones", ("{S}", "y Proyectos del Norte", "Integrales {S}", "Monte Alto"),
     "Suministro de material para obra"),
    ("Materiales para Construcción", ("{S}", "El Cimiento", "La Roca", "del Valle"),
     "Venta de cemento, varilla y block"),
    ("Refaccionaria", ("Automotriz {S}", "El Pistón", "La Rueda", "{S}"), "Venta de refacciones automotrices"),
    ("Papelería", ("La Estrella", "Escolar {S}", "El Lápiz", "Universitaria"), "Venta de papelería y consumibles"),
    ("Farmacia", ("San Rafael", "La Providencia", "{S}", "Santa Fe"), "Venta de medicamentos y material de curación"),
    ("Panificadora", ("La Espiga", "El Trigal", "{S}", "La Central"), "Venta de harina e insumos de panadería"),
    ("Muebles", ("{S}", "Rústicos del Centro", "El Roble", "Finos de Jalisco"), "Venta de mobiliario"),
    ("Servicios Integrales", ("{S}", "de Mantenimiento", "del Sureste"), "Servicio de mantenimiento mensual"),
    ("Grupo Industrial", ("{S}", "del Norte", "Regiomontano"), "Suministro de materia prima industrial"),
    ("Plásticos", ("{S}", "del Centro", "y Empaques de Occidente"), "Venta de empaques y película plástica"),
    ("Alimentos", ("{S}", "La Hacienda", "del Campo"), "Venta de alimentos procesados"),
    ("Agroinsumos", ("{S}", "del Bajío", "El Surco"), "Venta de fertilizantes y semillas"),
    ("Tortillería", ("La Mexicana", "Doña Lupita", "{S}"), "Venta de harina de maíz"),
    ("Hotel", ("Posada {S}", "Real del Mar", "Plaza Centro"), "Suministro de blancos y amenidades"),
    ("Restaurante", ("El Fogón", "La Cazuela", "Los {S}"), "Venta de insumos para restaurante"),
)  # fmt: skip
MX_SUFFIXES = (("S.A. de C.V.", 12), ("S. de R.L. de C.V.", 4), ("S.A.P.I. de C.V.", 1), ("S.C.", 1))
PERSON_TRADES = (
    "Taller Mecánico {S}", "Estética {F}", "Consultorio Dental {S}", "Tienda {F}", "Miscelánea {F}",
    "Carpintería {S}", "Cocina Económica {F}", "Despacho Contable {S}",
)  # fmt: skip
ES_TRADES = (
    ("Distribuciones", ("{S} e Hijos", "Levante", "del Sur", "Ibéricas")),
    ("Suministros", ("Industriales {S}", "Mediterráneo", "del Norte")),
    ("Comercial", ("{S}", "Castellana", "Atlántica")),
    ("Talleres", ("{S}", "Hermanos {S}")),
    ("Construcciones", ("{S} y Asociados", "Ebro")),
)
US_NAMES = (
    ("Rio Grande", "Lone Star", "Border", "Gulf Coast", "Pacific Rim", "Desert", "Sun Belt", "Frontier", "Alamo"),
    ("Supply", "Imports", "Distributors", "Trading", "Logistics", "Foods", "Hardware"),
    ("LLC", "Inc.", "Co."),
)
# city, state, time zone, phone area code, postal code prefix (Mexico)
MX_CITIES = (
    ("Ciudad de México", "CDMX", "America/Mexico_City", "55", "0", 30),
    ("Guadalajara", "Jal.", "America/Mexico_City", "33", "44", 12),
    ("Monterrey", "N.L.", "America/Monterrey", "81", "64", 12),
    ("Puebla", "Pue.", "America/Mexico_City", "222", "72", 6),
    ("Querétaro", "Qro.", "America/Mexico_City", "442", "76", 5),
    ("León", "Gto.", "America/Mexico_City", "477", "37", 5),
    ("Mérida", "Yuc.", "America/Merida", "999", "97", 4),
    ("Tijuana", "B.C.", "America/Tijuana", "664", "22", 4),
    ("Toluca", "Edo. Méx.", "America/Mexico_City", "722", "50", 4),
    ("Cancún", "Q. Roo", "America/Cancun", "998", "77", 3),
    ("Hermosillo", "Son.", "America/Hermosillo", "662", "83", 3),
    ("Chihuahua", "Chih.", "America/Chihuahua", "614", "31", 3),
    ("San Luis Potosí", "S.L.P.", "America/Mexico_City", "444", "78", 3),
    ("Veracruz", "Ver.", "America/Mexico_City", "229", "91", 3),
    ("Aguascalientes", "Ags.", "America/Mexico_City", "449", "20", 3),
)
MX_EXPORT_CITIES = tuple(c for c in MX_CITIES if c[0] in ("Tijuana", "Monterrey", "Chihuahua", "Hermosillo"))
ES_CITIES = (("Madrid", "28"), ("Barcelona", "08"), ("Valencia", "46"), ("Sevilla", "41"), ("Zaragoza", "50"))
US_CITIES = (
    ("Laredo", "TX", "America/Chicago", "956", "780"),
    ("San Antonio", "TX", "America/Chicago", "210", "782"),
    ("Houston", "TX", "America/Chicago", "713", "770"),
    ("San Diego", "CA", "America/Los_Angeles", "619", "921"),
    ("Phoenix", "AZ", "America/Phoenix", "602", "850"),
)
STREETS = (
    "Av. Insurgentes Sur", "Av. Juárez", "Calle Hidalgo", "Av. Reforma", "Calle Morelos", "Blvd. Díaz Ordaz",
    "Av. Universidad", "Calle 5 de Mayo", "Av. Revolución", "Calle Zaragoza", "Av. Constitución",
    "Calle Guerrero", "Av. López Mateos", "Calzada de Tlalpan", "Blvd. Independencia",
)  # fmt: skip
COLONIAS = (
    "Centro", "Del Valle", "Industrial", "Roma Norte", "Las Águilas", "Jardines del Bosque", "San Rafael",
    "Moderna", "Obrera", "Lomas Verdes", "Santa María", "El Mirador", "Americana", "Chapultepec",
)  # fmt: skip
# (for a man, for a woman)
BILLING_POSITIONS = (
    ("Contador general", "Contadora general"),
    ("Encargado de cuentas por pagar", "Encargada de cuentas por pagar"),
    ("Auxiliar contable", "Auxiliar contable"),
    ("Tesorero", "Tesorera"),
    ("Gerente de administración y finanzas", "Gerente de administración y finanzas"),
    ("Jefe de pagos a proveedores", "Jefa de pagos a proveedores"),
)
PRIMARY_POSITIONS = (
    ("Director general", "Directora general"),
    ("Dueño", "Dueña"),
    ("Gerente general", "Gerente general"),
    ("Socio administrador", "Socia administradora"),
)
BACKUP_POSITIONS = (
    ("Auxiliar administrativo", "Auxiliar administrativa"),
    ("Asistente de dirección", "Asistente de dirección"),
    ("Encargado de compras", "Encargada de compras"),
    ("Recepción", "Recepción"),
)

CASUAL_REASONS = (
    "cambio de personal en cuentas por pagar",
    "la factura no se había cargado en su sistema",
    "el responsable de pagos estaba de vacaciones",
    "una falla de su banca en línea",
    "esperaban la orden de compra firmada",
    "cierre de mes en su contabilidad",
)
INTENTIONAL_REASONS = (
    "este mes priorizan la nómina y el pago de impuestos",
    "esperan el cobro de un cliente grande",
    "pagan a proveedores por calendario, los viernes de quincena",
    "su tesorero libera pagos solo a fin de mes",
    "tienen otros proveedores con saldos mayores",
)
CHRONIC_REASONS = (
    "baja de ventas en la temporada",
    "un cliente importante les dejó de pagar",
    "créditos bancarios que vencen este mes",
    "falta de liquidez por inventario detenido",
)
DISPUTE_REASONS = (
    ("mercancía dañada en la entrega", "almacén"),
    ("faltante de piezas en el pedido", "almacén"),
    ("precio facturado distinto al cotizado", "ventas"),
    ("servicio incompleto, pendiente de terminar", "servicio técnico"),
    ("factura con datos fiscales incorrectos", "facturación"),
    ("producto con defecto de fábrica", "calidad"),
)
DISPUTE_FIXES = (
    "se emitió nota de crédito por la diferencia",
    "se repuso la mercancía",
    "se refacturó con los datos correctos",
    "se concluyó el servicio y el cliente firmó de conformidad",
)
AGENCIES = ("Despacho Cobranza Integral del Norte", "Recuperadora Jurídica Bajío", "Gestión de Cartera Omega")


# --- helpers ----------------------------------------------------------------------------


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _slug(text: str, limit: int = 30) -> str:
    return "".join(ch for ch in _ascii(text).lower() if ch.isalnum())[:limit] or "empresa"


def _money(value: float) -> Decimal:
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def _fmt(day: dt.date) -> str:
    return day.strftime("%d/%m/%Y")


def _money_text(amount: Decimal, currency: str, rule: str) -> str:
    """What the services write in the timeline (``accounts.numbers.format_money``)."""
    return numbers.format_money(amount, currency, rule)


def _weighted(rng: random.Random, weights: dict):
    keys = list(weights)
    return rng.choices(keys, weights=[weights[k] for k in keys])[0]


class Phases:
    """Wall-clock seconds per phase of a seed, summed over chunks and threads. ``seed_demo -v 2``
    prints each phase as it ends and the totals at the end: where a large seed spends its time."""

    def __init__(self, stdout: Callable[[str], None] | None = None, *, verbose: bool = False):
        self.stdout = stdout or (lambda _line: None)
        self.verbose = verbose
        self.seconds: dict[str, float] = {}
        self.lock = threading.Lock()

    @contextlib.contextmanager
    def __call__(self, name: str, *, say: bool = True):
        started = time.monotonic()
        try:
            yield
        finally:
            took = time.monotonic() - started
            with self.lock:
                self.seconds[name] = self.seconds.get(name, 0.0) + took
            if say and self.verbose:
                self.stdout(f"    {name}: {took:.2f} s")

    def add(self, name: str, seconds: float) -> None:
        with self.lock:
            self.seconds[name] = self.seconds.get(name, 0.0) + seconds
        if self.verbose:
            self.stdout(f"    {name}: {seconds:.2f} s")

    def lines(self) -> list[str]:
        return [f"{name}: {seconds:.2f} s" for name, seconds in self.seconds.items()]


@dataclass
class Summary:
    clients: int = 0
    contacts: int = 0
    business_groups: int = 0
    invoices: int = 0
    payments: int = 0
    allocations: int = 0
    interactions: int = 0
    interaction_links: int = 0
    profiles: Counter = field(default_factory=Counter)
    client_statuses: Counter = field(default_factory=Counter)
    invoice_statuses: Counter = field(default_factory=Counter)
    elapsed: float = 0.0

    def line(self) -> str:
        return (
            f"{self.clients:,} clients, {self.contacts:,} contacts, {self.business_groups:,} business groups, "
            f"{self.invoices:,} invoices, {self.payments:,} payments ({self.allocations:,} allocations), "
            f"{self.interactions:,} interactions ({self.interaction_links:,} invoice links)"
        )


@dataclass
class _Ctx:
    """What the generator knows about the client being built."""

    client: ClientRow
    profile: str
    segment: str
    tz: zoneinfo.ZoneInfo
    country: str
    collector: object | None
    billing: ContactRow
    guarantor: ContactRow | None = None
    fridays: bool = False  # pays in a weekly payment run
    # Set by _decide_status: (status, day it went into collection, day of the escalation)
    escalation: tuple[str, dt.date, dt.date | None] | None = None
    stop: dt.date | None = None  # negligent: the day they stopped paying
    invoices: list = field(default_factory=list)


class DemoSeeder:
    """Generates the portfolio chunk by chunk. One instance per run: it carries the random
    generator and the counters that keep numbers, references and tax ids unique."""

    def __init__(
        self,
        *,
        seed: int = DEFAULT_SEED,
        today: dt.date,
        users: dict[str, object],
        segments: dict[str, Segment],
        stdout: Callable[[str], None] | None = None,
        phases: Phases | None = None,
    ):
        self.rng = random.Random(seed)
        self.today = today
        self.yesterday = today - dt.timedelta(days=1)
        self.stale_before = today - dt.timedelta(days=10)
        self.users = users
        self.manager = users.get("gerente")
        self.collectors = [users[u] for u in COLLECTOR_USERNAMES if u in users]
        self.segments = segments
        self.stdout = stdout or (lambda _line: None)
        self.phases = phases or Phases()
        self.deck: list[str] = []
        self.invoice_seq = 0
        self.payment_seq = 0
        self.tax_ids: set[str] = set()
        self.group_names: set[str] = set()
        self.pending_group: tuple[BusinessGroupRow, str, int] | None = None  # group, family name, slots left
        self.generated = 0
        self.zones: dict[str, zoneinfo.ZoneInfo] = {}
        self.summary = Summary()
        # The business's number format, read here: the generator thread would read it with a
        # database connection of its own (left open, and slower per amount).
        self.number_rule = numbers.business_code()

    # -- run -----------------------------------------------------------------------------

    def run(self, n_clients: int, chunk_size: int = CHUNK_SIZE) -> Summary:
        """Generate and insert ``n_clients`` clients, ``chunk_size`` at a time, in one transaction.

        A worker thread generates chunk k+1 (pure Python, no database access) while chunk k
        is written, so the database works while Python prepares the next batch. Chunks are
        generated one after another by that one thread, so the random stream, hence the data,
        is the same as in a plain loop. When the ledger starts empty (a fresh database, or
        ``--reset``), the load runs inside ``services_bulk.ledger_bulk_load``: foreign keys and
        plain indexes are checked and built once at the end instead of row by row."""
        started = time.monotonic()
        empty = not Client.objects.exists()
        # Hundreds of thousands of live objects per chunk make the cyclic collector run over
        # and over for nothing; collect once per chunk instead.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            with (
                ThreadPoolExecutor(max_workers=1, thread_name_prefix="seed-generate") as generator,
                transaction.atomic(),
            ):
                with services_bulk.ledger_bulk_load() if empty else contextlib.nullcontext():
                    next_chunk = generator.submit(self._generate, chunk_size, n_clients)
                    while next_chunk is not None:
                        chunk = next_chunk.result()
                        next_chunk = (
                            generator.submit(self._generate, chunk_size, n_clients)
                            if self.generated < n_clients
                            else None
                        )
                        self._insert(chunk)
                        self._progress(n_clients, started)
                        del chunk
                        gc.collect()
                    put_back = time.monotonic()
                self.phases.add("ledger: foreign keys, indexes, ANALYZE", time.monotonic() - put_back)
        finally:
            if gc_was_enabled:
                gc.enable()
        self.summary.elapsed = time.monotonic() - started
        return self.summary

    def _progress(self, n_clients: int, started: float) -> None:
        s = self.summary
        self.stdout(
            f"  {s.clients:,}/{n_clients:,} clients · {s.invoices:,} invoices · {s.payments:,} payments · "
            f"{s.interactions:,} interactions · {time.monotonic() - started:.1f} s"
        )

    def _generate(self, chunk_size: int, n_clients: int) -> LedgerRows:
        """The next chunk: at least ``chunk_size`` clients (or what is left), extended until
        the last business group is complete, so no row refers to another chunk's rows (they
        may be inserted concurrently)."""
        chunk = LedgerRows()
        count = 0
        with self.phases("ledger: generate rows", say=False):
            while self.generated < n_clients and (count < chunk_size or self.pending_group is not None):
                self._client(chunk)
                self.generated += 1
                count += 1
        self.pending_group = None
        return chunk

    def _insert(self, chunk: LedgerRows) -> None:
        # The history ends yesterday wherever the client is: nothing after the midnight that
        # starts today in the last time zone on Earth.
        as_of = dt.datetime.combine(self.today, dt.time(0), tzinfo=dt.timezone(dt.timedelta(hours=-12)))
        with self.phases("ledger: check and COPY", say=False):
            written = services_bulk.ledger_bulk_insert(rows=chunk, as_of=as_of)
        s = self.summary
        s.business_groups += written["groups"]
        s.clients += written["clients"]
        s.contacts += written["contacts"]
        s.invoices += written["invoices"]
        s.payments += written["payments"]
        s.allocations += written["allocations"]
        s.interactions += written["interactions"]
        s.interaction_links += written["interaction_invoices"]
        s.client_statuses.update(c.status for c in chunk.clients)
        s.invoice_statuses.update(i.status for i in chunk.invoices)

    # -- small generators ----------------------------------------------------------------

    def _zone(self, name: str) -> zoneinfo.ZoneInfo:
        if name not in self.zones:
            self.zones[name] = zoneinfo.ZoneInfo(name)
        return self.zones[name]

    def _at(self, ctx: _Ctx, day: dt.date, first_hour: int = 9, last_hour: int = 18) -> dt.datetime:
        rng = self.rng
        return dt.datetime(
            day.year, day.month, day.day, rng.randint(first_hour, last_hour), rng.randint(0, 59), tzinfo=ctx.tz
        )

    def _person(self, positions: tuple[tuple[str, str], ...] = ()) -> tuple[str, str, str, str]:
        """First name(s), both surnames, and a job title from ``positions`` in the right gender."""
        rng = self.rng
        female = rng.random() < 0.5
        position = rng.choice(positions)[female] if positions else ""
        return rng.choice(FEMALE if female else MALE), rng.choice(SURNAMES), rng.choice(SURNAMES), position

    def _phone(self, country: str, area: str) -> str:
        rng = self.rng
        if country == "ES":
            return f"+34 6{rng.randint(10, 99)} {rng.randint(100, 999)} {rng.randint(100, 999)}"
        if country == "US":
            return f"+1 {area} {rng.randint(200, 999)} {rng.randint(1000, 9999)}"
        if len(area) == 2:
            return f"+52 {area} {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}"
        return f"+52 {area} {rng.randint(100, 999)} {rng.randint(1000, 9999)}"

    def _unique_tax_id(self, make: Callable[[], str]) -> str:
        for _ in range(50):
            value = make()
            if value not in self.tax_ids:
                self.tax_ids.add(value)
                return value
        raise RuntimeError("could not draw a unique tax id")  # not reachable in practice

    def _rfc(self, letters: str, born: dt.date) -> str:
        rng = self.rng
        homoclave = "".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ123456789") for _ in range(2)) + rng.choice(
            "0123456789A"
        )
        return f"{letters}{born:%y%m%d}{homoclave}"

    def _company_rfc(self, name: str, founded: dt.date) -> str:
        words = [w for w in _ascii(name).upper().replace(",", " ").split() if w.isalpha() and len(w) > 2]
        letters = ("".join(w[0] for w in words) + "XXX")[:3]
        return self._unique_tax_id(lambda: self._rfc(letters, founded))

    def _person_rfc(self, first: str, last1: str, last2: str, born: dt.date) -> str:
        a, b, c = (_ascii(x).upper().replace(" ", "") for x in (last1, last2, first))
        vowel = next((ch for ch in a[1:] if ch in "AEIOU"), "X")
        letters = f"{a[0]}{vowel}{b[0]}{c[0]}"
        return self._unique_tax_id(lambda: self._rfc(letters, born))

    def _days_ago(self, low: int, high: int) -> dt.date:
        return self.today - dt.timedelta(days=self.rng.randint(low, high))

    # -- one client ----------------------------------------------------------------------

    def _next_profile(self) -> str:
        if not self.deck:
            self.deck = list(PROFILE_DECK)
            self.rng.shuffle(self.deck)
        return self.deck.pop()

    def _client(self, chunk: LedgerRows) -> None:
        rng = self.rng
        profile = self._next_profile()
        self.summary.profiles[profile] += 1
        segment = _weighted(rng, SEGMENT_WEIGHTS[profile])

        # Where and in what currency: mostly Mexico in pesos; some exporters billed in
        # dollars, a few US buyers (in English) and a small Spanish book in euros.
        r = rng.random()
        if r < 0.90:
            market = "MX"
        elif r < 0.94:
            market = "MX-USD"
        elif r < 0.96:
            market = "US"
        else:
            market = "ES"
        kind = Client.Kind.PERSON if market in ("MX", "ES") and rng.random() < 0.18 else Client.Kind.COMPANY
        if kind == Client.Kind.PERSON and segment == "cuenta-clave":
            segment = "regular"

        tenure_years = {"cuenta-clave": (3, 15), "regular": (1, 10), "esporadico": (0.2, 5), "alto-riesgo": (0.5, 8)}
        lo, hi = tenure_years[segment]
        client_since = self.today - dt.timedelta(days=int(rng.uniform(lo, hi) * 365))
        founded = client_since - dt.timedelta(days=rng.randint(365, 25 * 365))
        family = rng.choice(SURNAMES)

        group = None
        if kind == Client.Kind.COMPANY and market == "MX":
            if self.pending_group is not None:
                group, family, slots = self.pending_group
                self.pending_group = (group, family, slots - 1) if slots > 1 else None
            elif rng.random() < 0.05:
                group = self._new_group(chunk, family)

        if market in ("MX", "MX-USD"):
            city, state, tz, area, cp, _w = rng.choices(
                MX_CITIES if market == "MX" else MX_EXPORT_CITIES,
                weights=[c[5] for c in (MX_CITIES if market == "MX" else MX_EXPORT_CITIES)],
            )[0]
            postal = (cp + f"{rng.randint(0, 999):03d}").ljust(5, "0")[:5]
            address = (
                f"{rng.choice(STREETS)} {rng.randint(10, 3999)}, Col. {rng.choice(COLONIAS)}, "
                f"C.P. {postal}, {city}, {state}"
            )
            country, currency, language = "MX", ("MXN" if market == "MX" else "USD"), "es"
        elif market == "US":
            city, state, tz, area, zip3 = rng.choice(US_CITIES)
            address = f"{rng.randint(100, 9999)} {rng.choice(('Main St', 'Commerce Dr', 'Industrial Blvd'))}, "
            address += f"{city}, {state} {zip3}{rng.randint(10, 99)}"
            country, currency, language = "US", "USD", "en"
        else:
            city, cp = rng.choice(ES_CITIES)
            tz, area, state = "Europe/Madrid", "", ""
            address = f"Calle {rng.choice(SURNAMES)} {rng.randint(1, 120)}, {cp}{rng.randint(1, 999):03d} {city}"
            country, currency, language = "ES", "EUR", "es"

        # Names and tax ids.
        if kind == Client.Kind.PERSON:
            first, last1, last2, _position = self._person()
            legal_name = f"{first} {last1} {last2}"
            trade_name = rng.choice(PERSON_TRADES).format(S=last1, F=first.split()[0]) if rng.random() < 0.6 else ""
            born = self.today - dt.timedelta(days=rng.randint(25 * 365, 65 * 365))
            if country == "ES":
                tax_id = self._unique_tax_id(lambda: _dni(rng.randint(10_000_000, 79_999_999)))
            else:
                tax_id = self._person_rfc(first, last1, last2, born)
            concept = "Venta de mercancía"
        elif market == "US":
            first_part, second, suffix = (rng.choice(p) for p in US_NAMES)
            trade_name = f"{first_part} {second}"
            legal_name = f"{trade_name} {suffix}"
            tax_id = self._unique_tax_id(lambda: f"{rng.randint(10, 99)}-{rng.randint(1_000_000, 9_999_999)}")
            concept = "Export sale"
        elif country == "ES":
            line, names = rng.choice(ES_TRADES)
            trade_name = f"{line} {rng.choice(names).format(S=family)}"
            legal_name = f"{trade_name} {rng.choice(('S.L.', 'S.L.', 'S.A.'))}"
            tax_id = self._unique_tax_id(lambda: f"{rng.choice('AB')}{rng.randint(10_000_000, 99_999_999)}")
            concept = "Suministro según pedido"
        else:
            line, names, concept = rng.choice(MX_TRADES)
            template = rng.choice(names)
            name = template.format(S=family)
            if group is not None and "{S}" not in template:
                name = f"{name} {family}"  # companies of one group share the family name
            trade_name = f"{line} {name}"
            suffix = _weighted(rng, dict(MX_SUFFIXES))
            legal_name = f"{trade_name} {suffix}"
            tax_id = self._company_rfc(legal_name, founded)

        seg_shape = SEGMENT_SHAPE[segment]
        terms = _weighted(rng, seg_shape[2])
        if profile == CHRONIC and rng.random() < 0.5:
            terms = 15  # shorter credit for chronic payers (docs/domain.md#chronic-late-payer)
        collector = (
            rng.choices(self.collectors, weights=[35, 33, 32][: len(self.collectors)])[0]
            if self.collectors and rng.random() < 0.95
            else None
        )
        client = ClientRow(
            legal_name=legal_name,
            trade_name=trade_name,
            tax_id=tax_id,
            kind=kind,
            segment_id=self.segments[segment].pk,
            collector_id=collector.pk if collector is not None else None,
            payment_terms_days=terms,
            currency=currency,
            language=language,
            time_zone=tz,
            country=country,
            business_group=group,
            client_since=client_since,
            status=Client.Status.ACTIVE,
            address=address,
            notes=PROFILE_NOTES[profile] if profile != PUNCTUAL or segment == "cuenta-clave" else "",
        )
        if rng.random() < 0.5:
            client.notes = ""
        created = dt.datetime.combine(client_since, dt.time(10, 0), tzinfo=self._zone(tz))
        client.created_at = client.updated_at = created
        chunk.clients.append(client)

        ctx = _Ctx(
            client=client,
            profile=profile,
            segment=segment,
            tz=self._zone(tz),
            country=country,
            collector=collector,
            billing=None,  # set by _contacts
            fridays=rng.random() < 0.3,
        )
        self._contacts(chunk, ctx, area=area, family=family)
        self._system(ctx, chunk, client_since, "Alta del cliente", author=self.manager, hour=(9, 12))
        self._history(chunk, ctx, seg_shape, concept)

    def _new_group(self, chunk: LedgerRows, family: str) -> BusinessGroupRow:
        rng = self.rng
        base = f"{rng.choice(('Grupo', 'Grupo', 'Corporativo', 'Holding'))} {family}"
        name, n = base, 1
        while name in self.group_names:
            n += 1
            name = f"{base} {rng.choice(('del Norte', 'del Centro', 'Hermanos', 'y Asociados', ''))}".strip()
            if name in self.group_names:
                name = f"{base} {n}"
        self.group_names.add(name)
        second = rng.choice(SURNAMES)
        group = BusinessGroupRow(
            name=name,
            notes=f"Empresas de la familia {family} {second}: mismos accionistas. Revisar el saldo conjunto "
            "antes de negociar con cualquiera de ellas.",
        )
        chunk.groups.append(group)
        self.pending_group = (group, family, rng.randint(1, 3))
        return group

    def _contacts(self, chunk: LedgerRows, ctx: _Ctx, *, area: str, family: str) -> None:
        rng = self.rng
        client = ctx.client
        created = client.created_at
        if ctx.country == "US":
            domain = f"{_slug(client.trade_name)}.example.com"
        else:
            domain = f"{_slug(client.trade_name or client.legal_name)}.example.com"

        def person_email(first: str, last: str) -> str:
            user = f"{_slug(first.split()[0], 15)}.{_slug(last, 15)}"
            return f"{user}{rng.randint(1, 99) if rng.random() < 0.4 else ''}@{rng.choice(PERSONAL_DOMAINS)}"

        def make(role, name, position, email, *, whatsapp=True, channel=None, **extra) -> ContactRow:
            phone = self._phone(ctx.country, area)
            mobile = self._phone(ctx.country, area) if rng.random() < 0.5 else phone
            has_wa = whatsapp and ctx.country != "US" and rng.random() < 0.75
            contact = ContactRow(
                client=client,
                role=role,
                name=name,
                position=position,
                email=email,
                phone=phone,
                whatsapp=mobile if has_wa else "",
                preferred_channel=channel or _weighted(rng, {"email": 6, "phone": 2, "whatsapp": 2 if has_wa else 0}),
                created_at=created,
                **extra,
            )
            chunk.contacts.append(contact)
            return contact

        n = 1  # at most 3 contacts per client
        if client.kind == Client.Kind.PERSON:
            first, _, _ = client.legal_name.partition(" ")
            parts = client.legal_name.split()
            ctx.billing = make(
                Contact.Role.BILLING, client.legal_name, "Titular", person_email(first, parts[-2]), channel=None
            )
        else:
            if ctx.country == "US":
                first, last = rng.choice(US_FIRST), rng.choice(US_LAST)
                name, position = f"{first} {last}", "Accounts Payable"
                email = f"ap@{domain}" if rng.random() < 0.5 else f"{first.lower()}.{last.lower()}@{domain}"
            else:
                first, last1, last2, position = self._person(BILLING_POSITIONS)
                name = f"{first} {last1} {last2}"
                mailbox = rng.choice(("cxp", "pagos", "facturacion", "contabilidad", None, None, None))
                email = (
                    f"{mailbox}@{domain}" if mailbox else f"{_slug(first.split()[0], 15)}.{_slug(last1, 15)}@{domain}"
                )
            ctx.billing = make(Contact.Role.BILLING, name, position, email)
            if rng.random() < 0.55:
                first, last1, last2, position = self._person(PRIMARY_POSITIONS)
                if client.business_group is not None:
                    last1 = family  # the owners
                make(
                    Contact.Role.PRIMARY,
                    f"{first} {last1} {last2}",
                    position,
                    f"{_slug(first.split()[0], 15)}.{_slug(last1, 15)}@{domain}",
                    channel=_weighted(rng, {"email": 5, "phone": 3}),
                )
                n += 1
        # Guarantors (avales) for people and high-risk clients (docs/domain.md#contacts-and-guarantors).
        wants_guarantor = client.kind == Client.Kind.PERSON and rng.random() < 0.6
        wants_guarantor |= ctx.segment == "alto-riesgo" and rng.random() < 0.7
        wants_guarantor |= ctx.profile == NEGLIGENT and rng.random() < 0.7
        if wants_guarantor and n < 3 and ctx.country != "US":
            first, last1, last2, _position = self._person()
            signed = client.client_since or self.today
            ctx.guarantor = make(
                Contact.Role.GUARANTOR,
                f"{first} {last1} {last2}",
                "Aval (obligado solidario)",
                person_email(first, last1),
                channel="phone",
                notes=f"Firmó pagaré como aval el {_fmt(signed)}.",
            )
            n += 1
        # Backup contacts for when the usual one does not answer (docs/domain.md#contacts-and-guarantors).
        if n < 3 and rng.random() < 0.35:
            first, last1, last2, position = self._person(BACKUP_POSITIONS)
            left = rng.random() < 0.12
            make(
                Contact.Role.BACKUP,
                f"{first} {last1} {last2}",
                position,
                f"{_slug(first.split()[0], 15)}.{_slug(last1, 15)}@{domain}"
                if client.kind == Client.Kind.COMPANY
                else person_email(first, last1),
                is_active=not left,
                notes="Ya no labora en la empresa." if left else "",
            )
        # A few opt-outs, on channels the timeline then leaves alone.
        if rng.random() < 0.05 and ctx.billing.whatsapp:
            ctx.billing.opt_out_whatsapp = ctx.billing.opt_out_sms = True
            ctx.billing.preferred_channel = "email"
            ctx.billing.notes = "Pidió no recibir mensajes de WhatsApp ni SMS."
        if rng.random() < 0.03:
            ctx.billing.opt_out_letter = True
        if ctx.guarantor is not None and rng.random() < 0.1:
            ctx.guarantor.opt_out_email = True

    # -- timeline helpers -----------------------------------------------------------------

    def _entry(
        self,
        ctx: _Ctx,
        chunk: LedgerRows,
        day: dt.date,
        kind: str,
        summary: str,
        *,
        direction: str = Interaction.Direction.OUTBOUND,
        outcome: str = "",
        body: str = "",
        contact: ContactRow | None = None,
        author=None,
        next_action_on: dt.date | None = None,
        invoices=(),
        hour: tuple[int, int] = (9, 18),
    ) -> None:
        if day > self.yesterday:
            return  # the future has not happened yet
        if next_action_on is not None and next_action_on < self.stale_before:
            # Long-past next steps would flood "next actions due" (it has no notion of a
            # step done): old entries keep their text, the date goes.
            next_action_on = None
        at = self._at(ctx, day, *hour)
        chunk.interactions.append(
            InteractionRow(
                client=ctx.client,
                kind=kind,
                summary=summary[:255],
                direction=direction,
                outcome=outcome,
                contact=contact,
                body=body,
                author_id=author.pk if author is not None else None,
                occurred_at=at,
                next_action_on=next_action_on,
                created_at=at,
                invoices=tuple(invoices),
            )
        )

    def _system(self, ctx, chunk, day, summary, *, author=None, body="", invoices=(), hour=(8, 20)):
        return self._entry(
            ctx,
            chunk,
            day,
            Interaction.Kind.SYSTEM,
            summary,
            direction=Interaction.Direction.INTERNAL,
            author=author,
            body=body,
            invoices=invoices,
            hour=hour,
        )

    def _by_collector(self, ctx, chunk, day, kind, summary, **kwargs):
        kwargs.setdefault("author", ctx.collector or self.manager)
        return self._entry(ctx, chunk, day, kind, summary, **kwargs)

    # -- invoices and payments ------------------------------------------------------------

    def _history(self, chunk: LedgerRows, ctx: _Ctx, shape, concept: str) -> None:
        rng = self.rng
        client = ctx.client
        today, yesterday = self.today, self.yesterday
        (n_lo, n_hi), (a_lo, a_hi), _terms = shape
        start = max(client.client_since, today - dt.timedelta(days=HISTORY_DAYS))
        end = yesterday
        if ctx.profile == NEGLIGENT:
            end = today - dt.timedelta(days=rng.randint(20, 60))  # credit suspended
        span = max((end - start).days, 0)
        n = rng.randint(n_lo, n_hi)
        if span < HISTORY_DAYS:
            n = max(2, round(n * span / HISTORY_DAYS))
        rate = {"MXN": 1.0, "USD": 1 / 18, "EUR": 1 / 20}[client.currency]
        tax = {"MX": Decimal("1.16"), "ES": Decimal("1.21"), "US": Decimal("1")}[ctx.country]
        series = {"MX": "A", "ES": "E", "US": "U"}[ctx.country]
        level = rng.uniform(math.log(a_lo), math.log(a_hi))  # each client has its usual ticket
        # A few Mexican clients also buy in dollars (imported goods): second currency.
        usd_too = client.currency == "MXN" and client.kind == Client.Kind.COMPANY and rng.random() < 0.03

        issues = [start + dt.timedelta(days=rng.randint(0, span)) for _ in range(n)]
        if ctx.profile == NEGLIGENT:
            # The day they stopped paying. What they bought around and after it is the old
            # unpaid debt of the negligent payer (docs/domain.md#negligent-payer), so it is there even for
            # a short history.
            # Their last sales before credit was suspended fall due on or after that day.
            ctx.stop = today - dt.timedelta(days=rng.randint(130, 270))
            last_dues = (
                ctx.stop + dt.timedelta(days=rng.randint(0, 20)),
                today - dt.timedelta(days=rng.randint(91, 120)),
                today - dt.timedelta(days=rng.randint(61, 90)),
                today - dt.timedelta(days=rng.randint(31, 60)),
            )
            terms = dt.timedelta(days=client.payment_terms_days)
            issues += [due - terms for due in last_dues if due - terms >= start]
        issues.sort()
        for issue in issues:
            currency = "USD" if usd_too and rng.random() < 0.2 else client.currency
            r = rate if currency == client.currency else 1 / 18
            subtotal = math.exp(level + rng.gauss(0, 0.45)) * r
            subtotal = max(subtotal, 50 * r)
            amount = (Decimal(int(subtotal)) * tax).quantize(CENT, rounding=ROUND_HALF_UP)
            self.invoice_seq += 1
            due = issue + dt.timedelta(days=client.payment_terms_days)
            invoice = InvoiceRow(
                client=client,
                number=f"{series}-{self.invoice_seq:07d}",
                issue_date=issue,
                due_date=due,
                currency=currency,
                amount=amount,
                amount_paid=ZERO,
                status=Invoice.Status.OPEN,
                description=f"{concept} — pedido {rng.randint(1000, 99999)}",
            )
            stamp = dt.datetime.combine(issue, dt.time(9, 0), tzinfo=ctx.tz)
            invoice.created_at = invoice.updated_at = stamp
            chunk.invoices.append(invoice)
            ctx.invoices.append(invoice)

        # Credit limit: two to three months of usual billing, in round figures.
        monthly = math.exp(level) * rate * float(tax) * max(n, 1) / (HISTORY_DAYS / 30)
        unit = 1000 if client.currency == "MXN" else 100
        months = max(1.0, client.payment_terms_days / 30) * rng.uniform(1.5, 3.0)
        client.credit_limit = Decimal(max(1, math.ceil(monthly * months / unit)) * unit).quantize(CENT)

        plans = self._payment_plans(ctx)
        self._settle(chunk, ctx, plans)
        self._decide_status(ctx)
        self._collection(chunk, ctx, plans)
        self._client_status(chunk, ctx)

    def _business_day(self, day: dt.date, *, back: bool, not_before: dt.date) -> dt.date:
        if day.weekday() >= 5:
            moved = day - dt.timedelta(days=day.weekday() - 4) if back else day + dt.timedelta(days=7 - day.weekday())
            if moved >= not_before:
                return moved
            return day + dt.timedelta(days=7 - day.weekday())
        return day

    def _on_time(self, ctx: _Ctx, inv: Invoice) -> dt.date:
        rng = self.rng
        due, issue = inv.due_date, inv.issue_date
        day = due - dt.timedelta(days=rng.randint(0, min(7, ctx.client.payment_terms_days)))
        if rng.random() < 0.15:
            day = due
        day = max(day, issue)
        if ctx.fridays and day.weekday() != 4:
            friday = day - dt.timedelta(days=(day.weekday() - 4) % 7)
            day = friday if friday >= issue else day
        return self._business_day(day, back=True, not_before=issue)

    def _late(self, ctx: _Ctx, inv: Invoice, low: int, high: int) -> dt.date:
        day = inv.due_date + dt.timedelta(days=self.rng.randint(low, high))
        if ctx.fridays:
            day += dt.timedelta(days=(4 - day.weekday()) % 7)
        return self._business_day(day, back=False, not_before=inv.issue_date)

    def _installments(self, ctx: _Ctx, inv: Invoice, first: dt.date, k: int) -> list[tuple[dt.date, Decimal]]:
        pays, left, day = [], inv.amount, first
        for j in range(k):
            part = left if j == k - 1 else min(left, _money(float(inv.amount) * self.rng.uniform(0.2, 0.45)))
            if part <= 0:
                break
            pays.append((self._business_day(day, back=False, not_before=inv.issue_date), part))
            left -= part
            day += dt.timedelta(days=self.rng.randint(12, 35))
        return pays

    def _payment_plans(self, ctx: _Ctx) -> list[dict]:
        """For each invoice, the payments that will settle it: [(date, amount)], possibly
        after yesterday (then not made yet). Also marks disputes and cancellations."""
        rng = self.rng
        today = self.today
        profile = ctx.profile
        plans: list[dict] = []
        stop = ctx.stop
        disputed: set[int] = set()
        resolved: set[int] = set()
        if profile == CIRCUMSTANTIAL:
            recent = [
                i
                for i, inv in enumerate(ctx.invoices)
                if today - dt.timedelta(days=170) <= inv.due_date <= today - dt.timedelta(days=3)
            ]
            pool = recent or list(range(len(ctx.invoices)))[-2:]
            disputed = set(rng.sample(pool, min(len(pool), 1 if rng.random() < 0.6 else 2)))
            older = [
                i
                for i, inv in enumerate(ctx.invoices)
                if i not in disputed and inv.due_date < today - dt.timedelta(days=120)
            ]
            if older and rng.random() < 0.5:
                resolved = {rng.choice(older)}

        for i, inv in enumerate(ctx.invoices):
            amount, due = inv.amount, inv.due_date
            plan = {"inv": inv, "pays": [], "dispute": None, "resolved": None, "cancel": False, "settled": None}
            plans.append(plan)
            if rng.random() < 0.008 and i not in disputed:
                plan["cancel"] = True  # captured by mistake, re-invoiced
                continue

            if i in disputed:
                opened = due + dt.timedelta(days=rng.randint(-10, 6))
                opened = min(max(opened, inv.issue_date), self.yesterday)
                plan["dispute"] = (rng.choice(DISPUTE_REASONS), opened)
                if rng.random() < 0.3:  # then pays the part not in dispute
                    day = self._business_day(
                        opened + dt.timedelta(days=rng.randint(2, 20)), back=False, not_before=inv.issue_date
                    )
                    plan["pays"] = [(day, _money(float(amount) * rng.uniform(0.3, 0.7)))]
                continue
            if i in resolved:
                plan["resolved"] = (rng.choice(DISPUTE_REASONS), rng.choice(DISPUTE_FIXES))
                plan["pays"] = [(self._late(ctx, inv, 30, 70), amount)]
                continue

            if profile == PUNCTUAL:
                plan["pays"] = [(self._on_time(ctx, inv), amount)]
            elif profile in (CASUAL, CIRCUMSTANTIAL):
                if rng.random() < 0.22:
                    plan["pays"] = [(self._late(ctx, inv, 3, 25), amount)]
                    plan["reason"] = rng.choice(CASUAL_REASONS)
                else:
                    plan["pays"] = [(self._on_time(ctx, inv), amount)]
            elif profile == INTENTIONAL:
                plan["pays"] = [(self._late(ctx, inv, *((20, 45) if rng.random() < 0.9 else (5, 15))), amount)]
                plan["reason"] = rng.choice(INTENTIONAL_REASONS)
            elif profile == CHRONIC:
                k = rng.choice((1, 2, 2, 3, 3, 4))
                pays = self._installments(ctx, inv, due + dt.timedelta(days=rng.randint(20, 60)), k)
                if k > 1 and rng.random() < 0.12:
                    pays = pays[:-1]  # the last installment never comes
                plan["pays"] = pays
                plan["reason"] = rng.choice(CHRONIC_REASONS)
            else:  # NEGLIGENT
                if stop is None or due < stop:
                    k = 1 if rng.random() < 0.6 else 2
                    plan["pays"] = self._installments(ctx, inv, due + dt.timedelta(days=rng.randint(25, 100)), k)
                elif rng.random() < 0.25:
                    token = _money(float(amount) * rng.uniform(0.1, 0.4))
                    plan["pays"] = [(self._late(ctx, inv, 20, 120), token)]
        return plans

    def _settle(self, chunk: LedgerRows, ctx: _Ctx, plans: list[dict]) -> None:
        """Turn the plans into payments and allocations up to yesterday; set amount_paid and
        status the way the services would."""
        rng = self.rng
        client = ctx.client
        yesterday = self.yesterday
        # (day, currency) → {invoice position: amount}, in the plans' order.
        by_day: dict[tuple[dt.date, str], dict[int, Decimal]] = {}
        for pos, plan in enumerate(plans):
            inv = plan["inv"]
            paid = ZERO
            for day, amount in plan["pays"]:
                if day > yesterday:
                    continue
                key = (day, inv.currency)
                by_day.setdefault(key, {})
                by_day[key][pos] = by_day[key].get(pos, ZERO) + amount
                paid += amount
                if paid >= inv.amount:
                    plan["settled"] = day
            inv.amount_paid = paid
            if plan["cancel"]:
                inv.status = Invoice.Status.CANCELLED
            elif plan["dispute"]:
                inv.status = Invoice.Status.DISPUTED
            else:
                inv.status = _status(inv.amount, paid)
            if paid > 0:
                last = max(d for d, _a in plan["pays"] if d <= yesterday)
                inv.updated_at = dt.datetime.combine(last, dt.time(12, 0), tzinfo=ctx.tz)

        # Advances (anticipos): money received before invoicing, left as client credit.
        advance = None
        if ctx.profile in (PUNCTUAL, CASUAL) and ctx.segment != "alto-riesgo" and rng.random() < 0.04:
            advance = self._days_ago(2, 45)
            by_day.setdefault((advance, client.currency), {})

        # A few clients round a transfer up or pay twice by mistake: every 15th client, and
        # some more at random.
        overpayer = ctx.profile != NEGLIGENT and (self.generated % 15 == 7 or rng.random() < 0.05)
        keys = sorted(by_day, key=lambda k: (k[0], k[1]))
        overpaid_key = rng.choice(keys) if overpayer and keys else None
        for key in keys:
            day, currency = key
            allocations = by_day[key]
            applied = sum(allocations.values(), ZERO)
            extra = ZERO
            notes = ""
            if key == overpaid_key or (ctx.profile != NEGLIGENT and applied > 0 and rng.random() < 0.01):
                unit = Decimal(1000) if currency == "MXN" else Decimal(100)
                extra = (applied / unit).to_integral_value(rounding=ROUND_CEILING) * unit - applied
                if extra <= 0:
                    extra = unit
                notes = "Pagó de más (redondeó la transferencia): queda saldo a favor."
            if not allocations:
                extra = _money(
                    math.exp(rng.uniform(math.log(2000), math.log(40000))) * (1 if currency == "MXN" else 0.05)
                )
                notes = "Anticipo a cuenta del siguiente pedido."
            method = _weighted(
                rng,
                {
                    "transfer": 75,
                    "check": 8,
                    "cash": 7 if client.kind == Client.Kind.PERSON else 2,
                    "card": 5,
                    "direct_debit": 2,
                    "other": 1,
                },
            )
            self.payment_seq += 1
            prefix = {
                "transfer": {"MX": "SPEI", "US": "ACH"}.get(ctx.country, "TRF"),
                "check": "CHQ",
                "card": "TPV",
                "direct_debit": "DOM",
                "other": "REF",
            }
            reference = "" if method == "cash" else f"{prefix[method]}-{day:%y%m%d}-{self.payment_seq:08d}"
            amount = applied + extra
            recorded_by = ctx.collector if method in ("cash", "check") or rng.random() < 0.3 else None
            stamp = dt.datetime.combine(day, dt.time(13, 0), tzinfo=ctx.tz)
            payment = PaymentRow(
                client=client,
                received_on=day,
                amount=amount,
                currency=currency,
                method=method,
                reference=reference,
                unallocated=extra,
                notes=notes,
                recorded_by_id=recorded_by.pk if recorded_by else None,
                created_at=stamp,
            )
            chunk.payments.append(payment)
            ordered = sorted(((plans[pos]["inv"], part) for pos, part in allocations.items()), key=_by_due)
            for inv, part in ordered:
                chunk.allocations.append(AllocationRow(payment, inv, part, stamp))
            summary = f"Pago recibido de {_money_text(amount, currency, self.number_rule)}"
            if ordered:
                summary += " → " + ", ".join(inv.number for inv, _p in ordered)
            if extra > 0:
                summary += f" · saldo a favor {_money_text(extra, currency, self.number_rule)}"
            self._system(
                ctx,
                chunk,
                day,
                summary,
                author=recorded_by,
                body=notes,
                invoices=[inv for inv, _p in ordered],
                hour=(10, 17),
            )

    # -- collection activity -------------------------------------------------------------

    def _collection(self, chunk: LedgerRows, ctx: _Ctx, plans: list[dict]) -> None:
        rng = self.rng
        today = self.today
        billing = ctx.billing
        wa_ok = bool(billing.whatsapp) and not billing.opt_out_whatsapp

        def entry(day, kind, summary, **kw):
            return self._by_collector(ctx, chunk, day, kind, summary, contact=kw.pop("contact", billing), **kw)

        def reminder(inv, day):
            # Automatic overdue notice (the cobranza planner writes these; no author).
            amount = _money_text(inv.amount, inv.currency, self.number_rule)
            return self._entry(
                ctx,
                chunk,
                day,
                KIND.EMAIL,
                f"Aviso de vencimiento enviado: factura {inv.number} por {amount}",
                outcome=OUT.SENT,
                contact=billing,
                invoices=[inv],
                hour=(8, 10),
            )

        if ctx.profile == PUNCTUAL and ctx.segment == "cuenta-clave" and ctx.invoices and rng.random() < 0.5:
            day = self._days_ago(20, 200)
            entry(
                day,
                KIND.CALL,
                "Llamada de cortesía: se agradece su puntualidad y se confirma el descuento por pronto pago",
                outcome=OUT.REACHED,
                direction=DIR.OUTBOUND,
            )

        open_overdue = []
        for plan in plans:
            inv = plan["inv"]
            if plan["cancel"]:
                self._system(
                    ctx,
                    chunk,
                    inv.issue_date + dt.timedelta(days=rng.randint(0, 3)),
                    f"Factura {inv.number}: Pendiente → Cancelada",
                    author=self.manager,
                    body="Error en los datos de la factura; se sustituyó por una nueva.",
                    invoices=[inv],
                )
                continue
            due = inv.due_date
            settled = plan["settled"]
            if plan["dispute"]:
                self._dispute(chunk, ctx, inv, plan["dispute"], entry)
                continue
            if plan["resolved"]:
                self._resolved_dispute(chunk, ctx, inv, plan["resolved"], settled, entry)
                continue
            end = settled or today
            days_late = (end - due).days
            if days_late <= 0:
                continue
            if settled is None and ctx.profile == NEGLIGENT:
                open_overdue.append(inv)
                continue  # handled as one campaign below
            if days_late >= 3:
                reminder(inv, due + dt.timedelta(days=2))
            reason = plan.get("reason") or rng.choice(CASUAL_REASONS)
            if ctx.profile in (CASUAL, CIRCUMSTANTIAL, PUNCTUAL):
                if days_late >= 6:
                    call = due + dt.timedelta(days=rng.randint(4, 5))
                    promised = settled or today + dt.timedelta(days=rng.randint(-3, 6))
                    entry(
                        call,
                        KIND.CALL,
                        f"Se disculpa por el atraso ({reason}); promete pagar el {_fmt(promised)}",
                        outcome=OUT.PROMISE,
                        next_action_on=promised,
                    )
                    if settled is None:
                        open_overdue.append(inv)
            elif ctx.profile == INTENTIONAL:
                call = due + dt.timedelta(days=rng.randint(5, 10))
                promise = call + dt.timedelta(days=rng.randint(7, 14))
                if rng.random() < 0.3:
                    entry(call, KIND.CALL, "Llamada sin respuesta", outcome=OUT.NO_ANSWER)
                    if wa_ok:
                        entry(
                            call + dt.timedelta(days=1),
                            KIND.WHATSAPP,
                            f"WhatsApp: recordatorio del saldo vencido de la factura {inv.number}",
                            outcome=OUT.SENT,
                            invoices=[inv],
                        )
                    call += dt.timedelta(days=2)
                promise_day = promise if settled is None or settled > promise + dt.timedelta(days=2) else settled
                entry(
                    call,
                    KIND.CALL,
                    f"Promete pagar el {_fmt(promise_day)}: {reason}",
                    outcome=OUT.PROMISE,
                    next_action_on=promise_day,
                    invoices=[inv],
                )
                if (settled or today) > promise + dt.timedelta(days=2):
                    again = promise + dt.timedelta(days=2)
                    new = settled or today + dt.timedelta(days=rng.randint(-4, 8))
                    entry(
                        again,
                        KIND.CALL,
                        f"Incumplió la promesa del {_fmt(promise)}; fija nueva fecha de pago el "
                        f"{_fmt(new)}. Se le recuerda que puede perder el crédito",
                        outcome=OUT.PROMISE,
                        next_action_on=new,
                        invoices=[inv],
                    )
                if settled is None:
                    open_overdue.append(inv)
            elif ctx.profile == CHRONIC:
                call = due + dt.timedelta(days=rng.randint(3, 12))
                entry(
                    call,
                    KIND.CALL,
                    f"Solicita pagar en parcialidades por {reason}",
                    outcome=OUT.PLAN_REQUEST,
                    invoices=[inv],
                )
                parts = len(plan["pays"]) or 2
                entry(
                    call + dt.timedelta(days=1),
                    KIND.NOTE,
                    f"Se acuerda pagar la factura {inv.number} en {parts} parcialidades; se mantiene plazo "
                    "corto y monitoreo semanal",
                    direction=DIR.INTERNAL,
                    contact=None,
                    invoices=[inv],
                )
                if settled is None:
                    open_overdue.append(inv)
            elif ctx.profile == NEGLIGENT:  # paid late, before they stopped paying
                call = due + dt.timedelta(days=rng.randint(8, 20))
                entry(
                    call,
                    KIND.CALL,
                    "No contesta; se deja recado con recepción",
                    outcome=OUT.LEFT_MESSAGE,
                    invoices=[inv],
                )

        if ctx.profile == NEGLIGENT and open_overdue:
            self._campaign(chunk, ctx, open_overdue, entry)
        elif open_overdue:
            # The latest contact on an open debt sets the next step, around today.
            last = max(open_overdue, key=lambda inv: inv.due_date)
            day = self._days_ago(1, 6)
            if day > last.due_date:
                follow = today + dt.timedelta(days=rng.randint(-5, 7))
                outcome = rng.choice((OUT.PROMISE, OUT.PROMISE, OUT.LEFT_MESSAGE, OUT.NO_ANSWER))
                text = {
                    OUT.PROMISE: f"Seguimiento: confirma pago del saldo vencido para el {_fmt(follow)}",
                    OUT.LEFT_MESSAGE: "Seguimiento: se deja recado; volver a llamar",
                    OUT.NO_ANSWER: "Seguimiento: no contesta; volver a llamar",
                }[outcome]
                entry(day, KIND.CALL, text, outcome=outcome, next_action_on=follow, invoices=open_overdue[-3:])

    def _dispute(self, chunk, ctx, inv, reason, entry) -> None:
        rng = self.rng
        (text, area), day = reason
        kind = rng.choice((KIND.CALL, KIND.EMAIL))
        entry(
            day,
            kind,
            f"Reclamación sobre la factura {inv.number}: {text}",
            direction=DIR.INBOUND,
            outcome=OUT.DISPUTE,
            invoices=[inv],
            hour=(9, 11),
        )
        self._system(
            ctx,
            chunk,
            day,
            f"Factura {inv.number}: Pendiente → En disputa",
            author=self.manager,
            body=f"El cliente reclama: {text}.",
            invoices=[inv],
            hour=(12, 18),
        )
        follow = self.today + dt.timedelta(days=rng.randint(-3, 10))
        entry(
            day + dt.timedelta(days=1),
            KIND.NOTE,
            f"Disputa abierta en {inv.number}: se turna al área de {area}; no presionar el cobro hasta resolver",
            direction=DIR.INTERNAL,
            contact=None,
            next_action_on=follow,
            invoices=[inv],
            body=f"Motivo: {text}. Confirmar con {area} y responder al cliente por escrito.",
        )

    def _resolved_dispute(self, chunk, ctx, inv, resolved, settled, entry) -> None:
        rng = self.rng
        (text, area), fix = resolved
        day = inv.due_date + dt.timedelta(days=rng.randint(1, 8))
        entry(
            day,
            KIND.CALL,
            f"Reclamación sobre la factura {inv.number}: {text}",
            direction=DIR.INBOUND,
            outcome=OUT.DISPUTE,
            invoices=[inv],
            hour=(9, 11),
        )
        self._system(
            ctx,
            chunk,
            day,
            f"Factura {inv.number}: Pendiente → En disputa",
            author=self.manager,
            body=f"El cliente reclama: {text}.",
            invoices=[inv],
            hour=(12, 18),
        )
        back = (settled or self.yesterday) - dt.timedelta(days=rng.randint(3, 10))
        back = max(back, day + dt.timedelta(days=1))
        self._system(
            ctx,
            chunk,
            back,
            f"Factura {inv.number}: En disputa → Pendiente",
            author=self.manager,
            body=f"Resuelta: {fix}.",
            invoices=[inv],
            hour=(9, 11),
        )
        entry(
            back,
            KIND.CALL,
            f"Se confirma la solución ({fix}); el cliente liberará el pago",
            outcome=OUT.PROMISE,
            next_action_on=settled,
            invoices=[inv],
            hour=(12, 18),
        )

    def _campaign(self, chunk, ctx, invoices, entry) -> None:
        """Negligent client: escalating collection over the unpaid invoices, one action
        every one or two weeks, ending in the agency, the courts or a write-off."""
        rng = self.rng
        today = self.today
        billing, guarantor = ctx.billing, ctx.guarantor
        first_due = min(inv.due_date for inv in invoices)
        day = first_due + dt.timedelta(days=2)
        step = 0
        script = [
            ("email", "Aviso de vencimiento enviado", OUT.SENT),
            (KIND.CALL, "Llamada sin respuesta", OUT.NO_ANSWER),
            (KIND.CALL, "No contesta; se deja recado con recepción", OUT.LEFT_MESSAGE),
            (KIND.WHATSAPP, "WhatsApp: recordatorio firme del saldo vencido", OUT.SENT),
            (KIND.CALL, "Atiende: dice que no tiene fondos y no da fecha de pago", OUT.REFUSED),
            (KIND.LETTER, "Carta de requerimiento de pago enviada por mensajería", OUT.SENT),
            ("guarantor", "Se informa al aval del adeudo y se le pide intervenir", OUT.REACHED),
            (KIND.CALL, "Promete abonar pronto, sin fecha concreta", OUT.PROMISE),
            (KIND.CALL, "Llamada sin respuesta", OUT.NO_ANSWER),
        ]
        escalated = ctx.escalation[2] if ctx.escalation else None
        last_day = escalated - dt.timedelta(days=1) if escalated else self.yesterday
        while day <= last_day:
            owed = [inv for inv in invoices if inv.due_date < day]
            kind, text, outcome = script[min(step, len(script) - 1)] if step < 7 else rng.choice(script[1:])
            contact = billing
            if kind == "email":
                kind = KIND.EMAIL
                self._entry(ctx, chunk, day, kind, text, outcome=outcome, contact=billing, invoices=owed, hour=(8, 10))
            else:
                if kind == "guarantor":
                    if guarantor is None:
                        kind, text, outcome = (
                            KIND.CALL,
                            "Se pide al contacto principal un plan de pagos; no acepta",
                            OUT.REFUSED,
                        )
                    else:
                        kind, contact = KIND.CALL, guarantor
                        text = f"Se informa al aval ({guarantor.name}) del adeudo y se le pide intervenir"
                if kind == KIND.WHATSAPP and (not billing.whatsapp or billing.opt_out_whatsapp):
                    kind, text = KIND.SMS, "SMS: recordatorio del saldo vencido"
                    if billing.opt_out_sms:
                        kind, text, outcome = KIND.CALL, "Llamada sin respuesta", OUT.NO_ANSWER
                if kind == KIND.LETTER and billing.opt_out_letter:
                    kind, text, outcome = (
                        KIND.VISIT,
                        "Visita al domicilio fiscal: no se encontró al responsable",
                        OUT.NO_ANSWER,
                    )
                entry(day, kind, text, outcome=outcome, contact=contact, invoices=owed[-5:])
            step += 1
            day += dt.timedelta(days=rng.randint(7, 16))
        if escalated is None:
            # Still ours: the next step, around today.
            follow = today + dt.timedelta(days=rng.randint(-6, 6))
            entry(
                self._days_ago(1, 5),
                KIND.CALL,
                "Seguimiento: se exige el pago total del saldo vencido; se advierte que la cuenta puede turnarse "
                "a agencia",
                outcome=OUT.NO_ANSWER,
                next_action_on=follow,
                invoices=invoices[-5:],
            )

    def _decide_status(self, ctx: _Ctx) -> None:
        """Status follows the debt: in collection past 30 days overdue (disputed invoices
        aside: they wait for the dispute, not for collection); a negligent client with debt
        past 120 days may be with an agency, in court or written off."""
        rng = self.rng
        owed = [
            inv
            for inv in ctx.invoices
            if inv.status in (Invoice.Status.OPEN, Invoice.Status.PARTIALLY_PAID) and inv.amount_paid < inv.amount
        ]
        if not owed:
            return
        oldest = min(inv.due_date for inv in owed)
        days = (self.today - oldest).days
        if days <= 30:
            return
        status, escalated = Client.Status.IN_COLLECTION, None
        if ctx.profile == NEGLIGENT and days > 120:
            r = rng.random()
            if r < 0.35:
                status = Client.Status.AGENCY
            elif r < 0.5:
                status = Client.Status.LEGAL
            elif r < 0.6:
                status = Client.Status.WRITTEN_OFF
            if status != Client.Status.IN_COLLECTION:
                escalated = oldest + dt.timedelta(days=rng.randint(100, days - 3))
        ctx.escalation = (status, oldest + dt.timedelta(days=31), escalated)

    def _client_status(self, chunk: LedgerRows, ctx: _Ctx) -> None:
        """Write the status decided by _decide_status, with the entries the services write."""
        if ctx.escalation is None:
            return
        rng = self.rng
        client = ctx.client
        new, went, day = ctx.escalation
        labels = dict(Client.Status.choices)
        self._system(
            ctx,
            chunk,
            went,
            "Datos del cliente actualizados",
            author=self.manager,
            body=f"estado: {labels[Client.Status.ACTIVE]} → {labels[Client.Status.IN_COLLECTION]}",
        )
        client.status = Client.Status.IN_COLLECTION
        stamp = dt.datetime.combine(went, dt.time(18, 0), tzinfo=ctx.tz)
        if day is not None:
            owed = [
                inv
                for inv in ctx.invoices
                if inv.status in (Invoice.Status.OPEN, Invoice.Status.PARTIALLY_PAID) and inv.amount_paid < inv.amount
            ]
            self._system(
                ctx,
                chunk,
                day,
                "Datos del cliente actualizados",
                author=self.manager,
                body=f"estado: {labels[Client.Status.IN_COLLECTION]} → {labels[new]}",
                hour=(9, 11),
            )
            follow = self.today + dt.timedelta(days=rng.randint(-3, 20))
            if new == Client.Status.AGENCY:
                agency = rng.choice(AGENCIES)
                text = f"Cuenta turnada a agencia externa ({agency}); se le entrega expediente y contactos"
            elif new == Client.Status.LEGAL:
                text = "Se turna a jurídico: demanda en vía ejecutiva mercantil con base en el pagaré firmado"
            else:
                text = "Se castiga la cartera por incobrable; se conserva el expediente por si el cliente se reactiva"
                follow = None
                for inv in owed:
                    before = Invoice.Status(inv.status).label
                    inv.status = Invoice.Status.WRITTEN_OFF
                    self._system(
                        ctx,
                        chunk,
                        day,
                        f"Factura {inv.number}: {before} → Castigada",
                        author=self.manager,
                        body="Cartera incobrable tras agotar la gestión.",
                        invoices=[inv],
                        hour=(11, 12),
                    )
            self._by_collector(
                ctx,
                chunk,
                day,
                Interaction.Kind.NOTE,
                text,
                direction=Interaction.Direction.INTERNAL,
                author=self.manager,
                next_action_on=follow,
                invoices=owed[-5:],
                hour=(12, 17),
            )
            if new != Client.Status.WRITTEN_OFF:
                review = self._days_ago(1, 8)
                if review > day:
                    who = "la agencia" if new == Client.Status.AGENCY else "el área jurídica"
                    self._by_collector(
                        ctx,
                        chunk,
                        review,
                        Interaction.Kind.NOTE,
                        f"Revisión con {who}: sin pagos todavía; se mantiene el expediente abierto",
                        direction=Interaction.Direction.INTERNAL,
                        next_action_on=self.today + dt.timedelta(days=rng.randint(-4, 14)),
                        invoices=owed[-5:],
                    )
            client.status = new
            stamp = dt.datetime.combine(day, dt.time(18, 0), tzinfo=ctx.tz)
        client.updated_at = stamp


PERSONAL_DOMAINS = ("example.net", "example.org", "correo.example.com", "mail.example.net")


def _status(amount: Decimal, paid: Decimal) -> str:
    if paid >= amount:
        return Invoice.Status.PAID
    if paid > 0:
        return Invoice.Status.PARTIALLY_PAID
    return Invoice.Status.OPEN


def _by_due(pair: tuple[Invoice, Decimal]):
    return pair[0].due_date, pair[0].number


def _dni(number: int) -> str:
    """A Spanish DNI/NIF: eight digits and their check letter."""
    return f"{number}{'TRWAGMYFPDXBNJZSQVHLCKE'[number % 23]}"


# --- reset --------------------------------------------------------------------------------

# Children before parents. Interactions are append-only against UPDATE (PostgreSQL trigger);
# DELETE is allowed, and they go before contacts so no ON DELETE SET NULL has to update them.
LEDGER_MODELS = (
    PaymentAllocation,
    InteractionInvoice,
    Interaction,
    Payment,
    Invoice,
    Contact,
    Client,
    BusinessGroup,
)


def portfolio_models() -> list:
    """The models whose rows go with the clients: the ledger's, and every model (of any app,
    e.g. cobranza's notices, tasks, snapshots) holding a required or cascading reference to
    one of them, recursively. A nullable SET_NULL reference alone does not pull a model in."""
    doomed = set(LEDGER_MODELS)
    tables = set(connection.introspection.table_names())
    grew = True
    while grew:
        grew = False
        for model in apps.get_models(include_auto_created=True):
            if model in doomed or model._meta.db_table not in tables:  # not migrated (yet): nothing to clear
                continue
            if any(
                f.is_relation
                and (f.many_to_one or f.one_to_one)
                and f.related_model in doomed
                and not (f.null and f.remote_field.on_delete is models.SET_NULL)
                for f in model._meta.concrete_fields
            ):
                doomed.add(model)
                grew = True
    return sorted(doomed, key=lambda m: m._meta.db_table)


def reset_ledger(stdout: Callable[[str], None] | None = None) -> dict[str, int]:
    """Delete every client and everything hanging off them (segments and users stay).

    One ``TRUNCATE`` of all those tables: seconds at a million invoices, where row-by-row
    deletes took minutes. PostgreSQL refuses it (and nothing is lost) if a table outside the
    list still refers to one inside — a model that only holds a nullable reference — so
    those references are cleared first, as ``on_delete=SET_NULL`` would."""
    doomed = portfolio_models()
    deleted = {}
    with transaction.atomic():
        for model in apps.get_models(include_auto_created=True):
            if model in doomed:
                continue
            for f in model._meta.concrete_fields:
                if f.is_relation and f.related_model in doomed and f.null and not f.many_to_many:
                    model._base_manager.filter(**{f"{f.name}__isnull": False}).update(**{f.name: None})
        for model in LEDGER_MODELS:
            deleted[model._meta.label] = model._base_manager.count()
        q = connection.ops.quote_name
        with connection.cursor() as cursor:
            # Rows written earlier in this transaction leave deferred FK checks pending, and
            # PostgreSQL will not truncate under them: run the checks now.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f"TRUNCATE {', '.join(q(m._meta.db_table) for m in doomed)}")  # noqa: S608 - model metadata
    if stdout:
        stdout("  deleted " + ", ".join(f"{n:,} {label}" for label, n in deleted.items()))
    return deleted


# --- entry point --------------------------------------------------------------------------


def seed(
    *,
    clients: int = DEFAULT_CLIENTS,
    seed: int = DEFAULT_SEED,
    today: dt.date,
    chunk_size: int = CHUNK_SIZE,
    stdout: Callable[[str], None] | None = None,
    phases: Phases | None = None,
) -> Summary:
    """Create the demo users (if missing) and ``clients`` clients with their history."""
    users = ensure_demo_users(stdout)
    segments = {s.code: s for s in Segment.objects.all()}
    missing = {code for weights in SEGMENT_WEIGHTS.values() for code in weights} - set(segments)
    if missing:
        raise RuntimeError(f"missing segments {sorted(missing)}: run the migrations first")
    seeder = DemoSeeder(seed=seed, today=today, users=users, segments=segments, stdout=stdout, phases=phases)
    return seeder.run(clients, chunk_size)
