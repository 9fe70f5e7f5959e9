"""Django's database sessions, read with SQL written once.

Every logged-in request reads its session row by key. Django's store builds that query with
the ORM each time (a QuerySet, its WHERE, its compilation: more than the round trip on a
plain page); this store sends the same SELECT, written once, and leaves everything else
(writes, expiry, flush on logout, cycling the key at login) to Django's.
"""

from django.contrib.sessions.backends import db
from django.db import connections, router
from django.utils import timezone
from django.utils.functional import cached_property


class SessionStore(db.SessionStore):
    @cached_property
    def _select(self) -> tuple[str, str]:
        model = self.model
        using = router.db_for_read(model)
        quote = connections[using].ops.quote_name
        sql = (
            f"SELECT {quote('session_data')}, {quote('expire_date')} "
            f"FROM {quote(model._meta.db_table)} "
            f"WHERE {quote('session_key')} = %s AND {quote('expire_date')} > %s"
        )
        return using, sql

    def _get_session_from_db(self):
        using, sql = self._select
        connection = connections[using]
        now = connection.ops.adapt_datetimefield_value(timezone.now())  # as the ORM writes it
        with connection.cursor() as cursor:
            cursor.execute(sql, [self.session_key, now])
            row = cursor.fetchone()
        if row is None:
            self._session_key = None  # as Django's: a new key if this session is saved
            return None
        return self.model(session_key=self.session_key, session_data=row[0], expire_date=row[1])
