# ruff: noqa: S608 - only table, index and constraint names read from the catalogue are interpolated
"""How fast could a seed possibly be? ``python -m scripts.bench.seed_floor`` on a seeded database.

The floor under ``seed_demo`` (its goal, ≤ 60 s for 100,000 clients, is in docs/benchmarks.md): the time PostgreSQL
itself takes to write the rows a seed leaves behind, with nothing generated, checked or
computed. Every table that goes with the clients (``accounts.demo.portfolio_models``: the
ledger and the collections tables hanging off it) is copied with one ``INSERT … SELECT`` into
an empty twin in a scratch schema, then the twins get every index (primary keys, unique,
trigram) and every foreign key of the originals, each built once over the loaded rows, as the
seed's own load does (``services_bulk.ledger_bulk_load``), and are analysed. All of it in one
transaction that is rolled back: the database is left as it was.

Run it after ``seed_demo`` (or ``make bench``'s load) with ``DATABASE_URL`` pointing at that
database, on a quiet machine.
"""

from __future__ import annotations

import os
import re
import sys
import time
from dataclasses import dataclass, field

import django

SCHEMA = "seed_floor"
PHASES = ("insert", "index", "foreign key", "analyze")


@dataclass
class Floor:
    """Seconds per phase and per app label, and what was copied."""

    seconds: dict[tuple[str, str], float] = field(default_factory=dict)  # (phase, app) -> s
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows copied
    indexes: int = 0
    foreign_keys: int = 0

    def add(self, phase: str, app: str, seconds: float) -> None:
        self.seconds[phase, app] = self.seconds.get((phase, app), 0.0) + seconds

    def total(self, phase: str | None = None, app: str | None = None) -> float:
        return sum(s for (p, a), s in self.seconds.items() if phase in (None, p) and app in (None, a))

    def lines(self) -> list[str]:
        apps = sorted({a for _p, a in self.seconds})
        out = [f"{'phase':<12}" + "".join(f"{a:>12}" for a in apps) + f"{'total':>12}"]
        for phase in PHASES:
            out.append(
                f"{phase:<12}"
                + "".join(f"{self.total(phase, a):>11.1f}s" for a in apps)
                + f"{self.total(phase):>11.1f}s"
            )
        out.append(
            f"{'total':<12}" + "".join(f"{self.total(None, a):>11.1f}s" for a in apps) + f"{self.total():>11.1f}s"
        )
        out.append(
            f"{sum(self.rows.values()):,} rows in {len(self.rows)} tables, {self.indexes} indexes, "
            f"{self.foreign_keys} foreign keys"
        )
        return out


class _Rollback(Exception):
    pass


# (table, definition) of each index, and of each foreign key, of the given tables.
_DEFINITIONS = {
    "index": "SELECT c.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x JOIN pg_class c ON c.oid = x.indrelid",
    "foreign key": "SELECT c.relname, pg_get_constraintdef(x.oid) FROM pg_constraint x "
    "JOIN pg_class c ON c.oid = x.conrelid AND x.contype = 'f'",
}


_REFERENCES = re.compile(r"REFERENCES (?:public\.)?(\w+|\"[^\"]+\")\(")


def _definitions(cur, what: str, tables) -> list[tuple[str, str]]:
    cur.execute(
        f"{_DEFINITIONS[what]} WHERE c.relname = ANY(%s) AND c.relnamespace = 'public'::regnamespace ORDER BY 1, 2",
        [list(tables)],
    )
    return cur.fetchall()


def measure(log=print) -> Floor:
    """Copy, index, constrain and analyse the portfolio's tables in a scratch schema; roll back."""
    from django.db import connection, transaction

    from accounts.demo import portfolio_models

    models = portfolio_models()
    tables = {m._meta.db_table: m._meta.app_label for m in models}
    floor = Floor()
    q = connection.ops.quote_name

    def timed(phase: str, table: str, sql: str) -> int:
        started = time.monotonic()
        cur.execute(sql)
        floor.add(phase, tables[table], time.monotonic() - started)
        return cur.rowcount

    try:
        with transaction.atomic(), connection.cursor() as cur:
            # The memory the seed's own put-back gives its sorts and joins.
            cur.execute("SET LOCAL maintenance_work_mem = '256MB'")
            cur.execute("SET LOCAL work_mem = '64MB'")
            cur.execute(f"CREATE SCHEMA {SCHEMA}")
            for table in tables:
                # Defaults, generated columns and check constraints come along (a row written
                # is a row checked and computed); indexes and foreign keys are built below.
                cur.execute(
                    f"CREATE TABLE {SCHEMA}.{q(table)} (LIKE {q(table)} INCLUDING DEFAULTS INCLUDING GENERATED "
                    "INCLUDING CONSTRAINTS)"
                )
            log(f"seed_floor: copying {len(tables)} tables")
            for table in tables:
                cur.execute(
                    "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute "
                    "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = ''",
                    [table],
                )
                columns = cur.fetchone()[0]
                floor.rows[table] = timed(
                    "insert", table, f"INSERT INTO {SCHEMA}.{q(table)} ({columns}) SELECT {columns} FROM {q(table)}"
                )
            indexes = _definitions(cur, "index", tables)
            log(f"seed_floor: building {len(indexes)} indexes")
            for table, definition in indexes:
                # "CREATE [UNIQUE] INDEX name ON [ONLY] public.table USING …": the twin's, named by PostgreSQL.
                twin = re.sub(
                    r"^(CREATE (?:UNIQUE )?INDEX) \S+ ON (?:ONLY )?(?:public\.)?\S+ ",
                    rf"\1 ON {SCHEMA}.{q(table)} ",
                    definition,
                )
                timed("index", table, twin)
                floor.indexes += 1
            foreign_keys = _definitions(cur, "foreign key", tables)
            log(f"seed_floor: checking {len(foreign_keys)} foreign keys")
            for table, definition in foreign_keys:
                # A reference into the portfolio goes to the twin; one outside it (users,
                # segments, policies) to the original, as the seed's rows refer to them. Adding
                # a key checks every row at once, deferrable or not.
                target = _REFERENCES.search(definition).group(1).strip('"')
                where = f"{SCHEMA}.{q(target)}" if target in tables else f"public.{q(target)}"
                twin = _REFERENCES.sub(f"REFERENCES {where}(", definition)
                timed("foreign key", table, f"ALTER TABLE {SCHEMA}.{q(table)} ADD {twin}")
                floor.foreign_keys += 1
            log("seed_floor: analysing")
            for table in tables:
                timed("analyze", table, f"ANALYZE {SCHEMA}.{q(table)}")
            raise _Rollback
    except _Rollback:
        pass
    return floor


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "morosos.settings")
    django.setup()
    from accounts.models import Client

    clients = Client.objects.count()
    if not clients:
        print("seed_floor: no clients in this database; run seed_demo first", file=sys.stderr)
        return 2
    started = time.monotonic()
    floor = measure()
    print(f"seed_floor: the rows of {clients:,} clients, written as fast as PostgreSQL writes them")
    for line in floor.lines():
        print("  " + line)
    print(f"seed_floor: measured in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
