"""The embedded demo of ``make run`` on SQLite, page by page (``make check-demo``).

Production and the test suite run on PostgreSQL; ``make run`` runs on SQLite by default,
where PostgreSQL-only SQL (arrays, intervals, regular expressions) fails. This script
migrates a throw-away SQLite database, seeds the demo as ``make run`` does (with the
national files when their folder, the first argument, exists: their importers write SQL
too), then, for each demo account, follows the links from its home page (at
most MAX_PAGES pages each) and fails on any server error. The plan's exports are links too.
"""

import os
import re
import sys
import tempfile
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_PAGES = int(os.environ.get("CHECK_DEMO_MAX_PAGES", "120"))
SKIP = ("/static/", "/media/", "/admin/", "/accounts/", "logout", "deconnexion")


def main() -> int:
    database = Path(tempfile.mkdtemp(prefix="pvd-demo-")) / "demo.sqlite3"
    os.environ.update(
        {
            "DATABASE_URL": f"sqlite:///{database}",
            "DEBUG": "true",
            "PVD_MFA_ENFORCED": "false",
            "DJANGO_SETTINGS_MODULE": "pvd.settings",
        }
    )
    for name in ("REDIS_URL", "PVD_REQUIRE_SERVICES", "EMAIL_URL"):
        os.environ.pop(name, None)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client

    from pvd.models import User

    call_command("migrate", verbosity=0)
    reference = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    options = {"reference_data": str(reference)} if reference and reference.is_dir() else {}
    with open(os.devnull, "w") as quiet:
        call_command("seed_demo", stdout=quiet, **options)
    print("Démo SQLite", "avec" if options else "sans", "les fichiers officiels")
    errors: list[str] = []
    for user in User.objects.filter(email__endswith="@demo.pvd.fr").order_by("email"):
        client = Client(HTTP_HOST="127.0.0.1", raise_request_exception=False)
        client.force_login(user)
        seen: set[str] = set()
        queue = deque(["/"])
        while queue and len(seen) < MAX_PAGES:
            url = queue.popleft()
            if url in seen:
                continue
            seen.add(url)
            response = client.get(url)
            if response.status_code >= 500:
                errors.append(f"{user.email} : {url} répond {response.status_code}")
                continue
            if response.status_code != 200 or "html" not in response.get("Content-Type", ""):
                continue
            for href in re.findall(r'href="(/[^"#]*)"', response.content.decode()):
                href = href.replace("&amp;", "&")
                if href not in seen and not any(part in href for part in SKIP):
                    queue.append(href)
        print(f"{user.email} : {len(seen)} pages")
    database.unlink(missing_ok=True)
    for error in errors:
        print(error, file=sys.stderr)
    print("Démo SQLite : " + ("aucune erreur" if not errors else f"{len(errors)} erreur(s)"))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
