import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from communes.models import EPCI, Commune, Departement, Region
from pvd.models import Role, User

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "demo_territoires.json"
DEMO_PASSWORD = "pvd-demo"


class Command(BaseCommand):
    help = (
        "Charge les territoires de démonstration (Indre, Haute-Corrèze) et, si DEBUG est actif, "
        "les comptes de démonstration. Peut être relancée sans risque."
    )

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        facts = json.loads(FIXTURE.read_text(encoding="utf-8"))
        for row in facts["regions"]:
            Region.objects.update_or_create(code=row["code"], defaults=row)
        for row in facts["departements"]:
            Departement.objects.update_or_create(
                code=row["code"],
                defaults={"nom": row["nom"], "region_id": row["region"], "siren": row["siren"]},
            )
        for row in facts["epci"]:
            EPCI.objects.update_or_create(
                siren=row["siren"],
                defaults={"nom": row["nom"], "nature": EPCI.nature_from_name(row["nom"])},
            )
        for row in facts["communes"]:
            Commune.objects.update_or_create(
                code=row["code"],
                defaults={
                    "nom": row["nom"],
                    "departement_id": row["departement"],
                    "epci_id": row["epci"],
                    "siren": row["siren"],
                    "population": row["population"],
                },
            )
        self.stdout.write(
            f"Territoires de démonstration : {len(facts['communes'])} communes, "
            f"{len(facts['epci'])} EPCI, {len(facts['departements'])} départements."
        )
        if not settings.DEBUG:
            self.stdout.write("DEBUG est désactivé : aucun compte de démonstration n'est créé.")
            return
        self.stdout.write(f"Comptes de démonstration (mot de passe : {DEMO_PASSWORD}) :")
        for row in facts["accounts"]:
            self.seed_account(row)
            self.stdout.write(f"  {row['email']:<30} {row['fonction']}")

    def seed_account(self, row: dict) -> None:
        user, created = User.objects.get_or_create(
            email=row["email"],
            defaults={"first_name": row["first_name"], "last_name": row["last_name"]},
        )
        if created or not user.has_usable_password():
            user.set_password(DEMO_PASSWORD)
            user.save(update_fields=["password"])
        role, _ = Role.objects.update_or_create(
            user=user,
            kind=row["kind"],
            defaults={"fonction": row["fonction"], "organisation": row.get("organisation", "")},
        )
        role.departements.set(row.get("departements", []))
        role.communes.set(row.get("communes", []))
