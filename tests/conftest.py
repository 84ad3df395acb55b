import contextlib
import copy
import hashlib
import importlib
import io
import os
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.migrations.loader import MigrationLoader
from django.test.utils import override_settings

from cobranza.models import BusinessProfile
from tests.factories import make_business, make_user


def pytest_configure(config):
    """The suite runs on a PostgreSQL server the tests may create databases on: `make test`
    sets DATABASE_URL (the embedded server of `make run` is for the app, not for tests)."""
    if not os.environ.get("DATABASE_URL"):
        pytest.exit(
            "Tests need PostgreSQL: run `make test`, or set DATABASE_URL=postgres://postgres@127.0.0.1:5432/morosos",
            returncode=2,
        )


# The suite's longest tests (tens of seconds each), longest first. On two xdist workers a long
# test that starts last finishes alone while the other worker idles; started first, it runs
# beside the short ones (see pytest_collection_modifyitems below).
LONG_TESTS = (
    "tests/cobranza/test_simulation_hourly.py",
    "tests/test_make_run.py",
    "tests/cobranza/test_spread.py",
    "tests/faults/test_workers.py",
    "tests/test_i18n.py",
    "tests/cobranza/test_import_scale.py",
    "tests/cobranza/test_forecast.py",
    "tests/cobranza/test_one_clock.py",
    "tests/cobranza/test_performance_demo.py",
    "tests/accounts/test_seed_demo.py",
    "tests/cobranza/test_scenario_pacing_30_days.py",
    "tests/cobranza/test_scenario_90_days.py",
    "tests/cobranza/test_demo.py",
)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    """Long tests first, keeping pytest-django's order of blocks: tests on the database, then the
    transactional ones (their flush empties the reference data a database test run after them on
    the same worker would need), then the tests that use no database. Those may run at any
    point, so the long ones among them open the run."""

    def block(item) -> int:
        fixtures = set(getattr(item, "fixturenames", ()))
        if _is_transactional_item(item, fixtures):
            return 1
        if item.get_closest_marker("django_db") is not None or "db" in fixtures:
            return 0
        return 2

    def long_rank(item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return LONG_TESTS.index(path) if path in LONG_TESTS else len(LONG_TESTS)

    def key(item) -> tuple[int, int]:
        rank, kind = long_rank(item), block(item)
        return (-1 if kind == 2 and rank < len(LONG_TESTS) else kind, rank)

    items.sort(key=key)


def _is_transactional_item(item, fixtures) -> bool:
    if {"transactional_db", "live_server"} & fixtures:
        return True
    marker = item.get_closest_marker("django_db")
    if marker is None:
        return False
    return bool(marker.kwargs.get("transaction") or (marker.args and marker.args[0]))


def _migrations_digest() -> str:
    """What decides the migrated schema: Django's version and every migration file on disk."""
    from django import get_version

    digest = hashlib.sha256(get_version().encode())
    loader = MigrationLoader(None, ignore_no_migrations=True)
    for key in sorted(loader.disk_migrations):
        digest.update(repr(key).encode())
        digest.update(Path(sys.modules[loader.disk_migrations[key].__module__].__file__).read_bytes())
    return digest.hexdigest()[:12]


@pytest.fixture(scope="session")
def django_db_setup(request, django_test_environment, django_db_blocker, django_db_modify_db_settings):
    """Each worker's test database is a copy of a migrated template (CREATE DATABASE ... TEMPLATE)
    instead of a migration run of its own: the template is named after a digest of the migration
    files, built once by whichever worker comes first (the others wait on an advisory lock) and
    kept for the next run until a migration changes. ``--reuse-db`` keeps pytest-django's way."""
    from django.test.utils import setup_databases

    if request.config.getvalue("reuse_db") and not request.config.getvalue("create_db"):
        with django_db_blocker.unblock():
            yield setup_databases(verbosity=request.config.option.verbose, interactive=False, keepdb=True)
        return
    with django_db_blocker.unblock():
        creation = connection.creation
        quote = connection.ops.quote_name
        worker_name = creation._get_test_db_name()
        template = f"test_{settings.DATABASES['default']['NAME'][:40]}_tpl_{_migrations_digest()}"
        building = f"{template}_wip"
        test_settings = connection.settings_dict["TEST"]
        with creation._nodb_cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(hashtext(%s))", [template])
            try:
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [template])
                if cursor.fetchone() is None:
                    # Built under another name and renamed when complete: an interrupted build
                    # never passes for a template.
                    cursor.execute(f"DROP DATABASE IF EXISTS {quote(building)} WITH (FORCE)")
                    original_name = connection.settings_dict["NAME"]
                    test_settings["NAME"] = building
                    try:
                        creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
                    finally:
                        connection.close()
                        settings.DATABASES["default"]["NAME"] = connection.settings_dict["NAME"] = original_name
                        test_settings["NAME"] = worker_name
                    cursor.execute(f"ALTER DATABASE {quote(building)} RENAME TO {quote(template)}")
                    # The templates of older migrations are of no more use.
                    prefix = template.rsplit("_tpl_", 1)[0] + "_tpl_"
                    cursor.execute(
                        "SELECT datname FROM pg_database WHERE left(datname, %s) = %s AND datname <> %s",
                        [len(prefix), prefix, template],
                    )
                    for (stale,) in cursor.fetchall():
                        with contextlib.suppress(DatabaseError):  # one still being copied stays
                            cursor.execute(f"DROP DATABASE IF EXISTS {quote(stale)}")
                # FORCE: a run killed mid-statement can leave its session behind for minutes,
                # and every test of the next run would error on "being accessed by other users".
                cursor.execute(f"DROP DATABASE IF EXISTS {quote(worker_name)} WITH (FORCE)")
                cursor.execute(f"CREATE DATABASE {quote(worker_name)} TEMPLATE {quote(template)}")
                # A test database is thrown away after the run: its commits need not wait for
                # the disk (a crash loses the last commits, never consistency). Every connection
                # to it takes this, the Celery workers and servers the tests start included.
                cursor.execute(f"ALTER DATABASE {quote(worker_name)} SET synchronous_commit TO off")
            finally:
                cursor.execute("SELECT pg_advisory_unlock(hashtext(%s))", [template])
        original_name = connection.settings_dict["NAME"]
        settings.DATABASES["default"]["NAME"] = connection.settings_dict["NAME"] = worker_name
        # The business, set up once through its services and kept like the migrations' rows
        # (see the `business` fixture): doing it in every test was 4 % of the suite's time.
        make_business()
        global _MIGRATED_ROWS, _BUSINESS
        _BUSINESS = BusinessProfile.objects.get(pk=1)
        _MIGRATED_ROWS = _read_migrated_rows()
    yield
    with django_db_blocker.unblock():
        # FORCE: a live server's thread may still hold its connection when the session ends
        # (a browser test run last), and a plain DROP DATABASE then fails the whole run.
        connection.close()
        with creation._nodb_cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {quote(worker_name)} WITH (FORCE)")
        settings.DATABASES["default"]["NAME"] = connection.settings_dict["NAME"] = original_name


# A table holding this many dead rows after a test module (rows its rolled-back tests wrote)
# is vacuumed before the next module: see _vacuum_after_module.
DEAD_ROWS = 1000


@pytest.fixture(scope="module", autouse=True)
def _vacuum_after_module(django_db_blocker):
    """Vacuum and analyze what a module's rolled-back tests left behind. Every test's rows are
    rolled back, but their dead versions stay in the tables, and in the pending lists of the
    GIN (trigram) indexes, which every search through such an index reads in full: after the
    benchmark's 3,000 invoices one import's lookup of 600 invoice numbers took 4 s instead of
    a few milliseconds, and an ANALYZE in a rolled-back transaction keeps row counts that no
    longer hold (tests/bench/test_bench_small.py). Autovacuum comes only once a minute."""
    yield
    if _MIGRATED_ROWS is None:  # no test database of this process's own (or --reuse-db)
        return
    with django_db_blocker.unblock():
        if connection.in_atomic_block:
            return
        quote = connection.ops.quote_name
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_force_next_flush()")  # this session's counts, visible now
            cursor.execute("SELECT relname FROM pg_stat_user_tables WHERE n_dead_tup >= %s", [DEAD_ROWS])
            tables = [name for (name,) in cursor.fetchall()]
            if tables:
                cursor.execute("VACUUM (ANALYZE) " + ", ".join(quote(name) for name in tables))


@pytest.fixture(scope="session", autouse=True)
def _plain_http():
    """The suite runs with production settings (DEBUG off). Those redirect http to https,
    mark cookies secure and serve hashed static files from a manifest built by collectstatic;
    the test client and the live server speak plain http, without a build. Session-wide,
    because the live server builds its middleware once, before any per-test override."""
    override = override_settings(
        # The dashboard stores its figures when computing them took longer than this; on a
        # loaded test machine even the small fixtures can, and a test reading the page twice
        # would see the first figures. test_dashboard_summaries sets it to -1 to test storing.
        DASHBOARD_LIVE_MAX_MS=10**9,
        SECURE_SSL_REDIRECT=False,
        SESSION_COOKIE_SECURE=False,
        CSRF_COOKIE_SECURE=False,
        STORAGES={
            **settings.STORAGES,
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        },
    )
    override.enable()
    yield
    override.disable()


# Data migrations whose `forwards(apps, schema_editor)` creates reference data, in order.
REFERENCE_DATA_MIGRATIONS = [
    ("accounts", "0002_roles_segments_append_only"),  # staff groups, default segments
    ("cobranza", "0002_contact_rule_presets"),  # contact rules MX/ES/US, holidays
    ("cobranza", "0003_default_ladders"),  # message templates, segment ladders
    ("cobranza", "0015_contact_rule_presets_markets"),  # the other presets, overall caps, holidays
    ("cobranza", "0019_business_identity"),  # the templates sign as the business
]


# The rows the migrations leave (the reference data above, content types, permissions) and the
# business django_db_setup sets up, read once per process from its freshly copied test database
# (django_db_setup); None under --reuse-db, where the data migrations run again instead.
_MIGRATED_ROWS: dict[str, bytes] | None = None
# The business as django_db_setup set it up in this process's test database (None under
# --reuse-db, where each test sets it up).
_BUSINESS = None


def _read_migrated_rows() -> dict[str, bytes]:
    quote = connection.ops.quote_name
    rows = {}
    with connection.cursor() as cursor:
        for table in sorted(connection.introspection.django_table_names(only_existing=True, include_views=False)):
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {quote(table)})")
            if cursor.fetchone()[0]:
                buffer = io.BytesIO()
                cursor.copy_expert(f"COPY {quote(table)} TO STDOUT (FORMAT binary)", buffer)
                rows[table] = buffer.getvalue()
    return rows


def restore_reference_data() -> None:
    """Put back the rows the migrations left. A transactional test ends with a flush that empties
    every table, migration data included (Django then creates content types and permissions again
    under new ids), and pytest-django runs those tests after the others. The rows come back as
    they were, ids included, in one COPY per table; without them (--reuse-db) the data
    migrations run again on their own historical models."""
    if _MIGRATED_ROWS is None:
        loader = MigrationLoader(connection)
        for app, name in REFERENCE_DATA_MIGRATIONS:
            migration = importlib.import_module(f"{app}.migrations.{name}")
            migration.forwards(loader.project_state((app, name)).apps, None)
        return
    from django.contrib.contenttypes.models import ContentType

    quote = connection.ops.quote_name
    # Foreign keys are checked at commit (deferred), so the order of the tables does not matter;
    # DELETE, because TRUNCATE of a few small tables costs more (new files for each table).
    with transaction.atomic(), connection.cursor() as cursor:
        for table in _MIGRATED_ROWS:
            cursor.execute(f"DELETE FROM {quote(table)}")
        for table, data in _MIGRATED_ROWS.items():
            cursor.copy_expert(f"COPY {quote(table)} FROM STDIN (FORMAT binary)", io.BytesIO(data))
    ContentType.objects.clear_cache()


def _is_transactional(request) -> bool:
    return _is_transactional_item(request.node, set(request.fixturenames))


@pytest.fixture(autouse=True)
def _default_language():
    """Each test starts in the site's default language: a test (or a request handled in this
    thread) that activated English must not change what the next test sees."""
    from django.conf import settings
    from django.utils import translation

    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture(autouse=True)
def _business_number_format():
    """The business's number format is cached per process (accounts/numbers.py): a test's
    business, rolled back at its end, must not decide the next test's format."""
    from accounts import numbers

    numbers.forget_business()
    yield
    numbers.forget_business()


@pytest.fixture(autouse=True)
def _reference_data(request):
    if _is_transactional(request):
        request.getfixturevalue("transactional_db")
        restore_reference_data()


def _uses_database(request) -> bool:
    return (
        _is_transactional(request)
        or "db" in request.fixturenames
        or request.node.get_closest_marker("django_db") is not None
    )


@pytest.fixture(autouse=True)
def business(request, _reference_data):
    """The business that is owed, set up (tests/factories.BUSINESS): debtor messages need one
    (docs/domain.md, "Who the debtor hears from"). A test marked ``without_business`` starts
    before any administrator has filled it in.

    The test database already holds it, set up once through the services by django_db_setup
    (and put back after a transactional test with the migrations' rows): this returns a copy
    of that row as read then."""
    if not _uses_database(request):
        return None
    if not _is_transactional(request):
        request.getfixturevalue("db")
    if request.node.get_closest_marker("without_business"):
        BusinessProfile.objects.filter(pk=1).delete()
        return None
    if _BUSINESS is None:  # --reuse-db
        return make_business()
    return copy.deepcopy(_BUSINESS)


@pytest.fixture
def admin_user(db):
    return make_user("admin", "admin", first_name="Ana", last_name="Administradora")


@pytest.fixture
def gerente(db):
    return make_user("gerente", "manager", first_name="Gabriela", last_name="Gerente")


@pytest.fixture
def gestora(db):
    """A collector with her own clients."""
    return make_user("gestora", "collector", first_name="Lucía", last_name="Gestora")


@pytest.fixture
def gestor(db):
    """A second collector: must never see the first one's clients."""
    return make_user("gestor", "collector", first_name="Mario", last_name="Gestor")


@pytest.fixture
def nobody(db):
    """A logged-in user with no role."""
    return make_user("sinrol", None)
