"""The database cache, with an atomic ``incr``: the shared cache when no Redis is configured.

Rate limits and throttles (django-ratelimit) count with ``cache.add`` + ``cache.incr``.
Django's DatabaseCache implements ``incr`` as get-then-set, so two web processes answering at
the same moment can both read 30 and both write 31, and a burst of parallel requests slips
past the limit (django-ratelimit's own check refuses that backend for this reason). Here the
row is locked (``SELECT … FOR UPDATE``) for the read-modify-write, one short transaction,
which makes the counter exact across processes and machines. Values are stored the way the
parent class stores them (pickled, base64), so every other operation is the parent's.
"""

from __future__ import annotations

import base64
import pickle

from django.core.cache.backends.db import DatabaseCache as DjangoDatabaseCache
from django.db import connections, router, transaction
from django.utils import timezone


class DatabaseCache(DjangoDatabaseCache):
    def incr(self, key, delta=1, version=None):
        key = self.make_and_validate_key(key, version=version)
        db = router.db_for_write(self.cache_model_class)
        connection = connections[db]
        quote_name = connection.ops.quote_name
        table = quote_name(self._table)
        with transaction.atomic(using=db), connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {quote_name('value')}, {quote_name('expires')} FROM {table} "  # noqa: S608 - table from settings
                f"WHERE {quote_name('cache_key')} = %s FOR UPDATE",
                [key],
            )
            row = cursor.fetchone()
            if row is None or row[1] < timezone.now():
                raise ValueError(f"Key '{key}' not found")
            value = pickle.loads(base64.b64decode(row[0].encode())) + delta  # noqa: S301 - our own rows
            encoded = base64.b64encode(pickle.dumps(value, self.pickle_protocol)).decode("latin1")
            cursor.execute(
                f"UPDATE {table} SET {quote_name('value')} = %s WHERE {quote_name('cache_key')} = %s",  # noqa: S608
                [encoded, key],
            )
        return value
