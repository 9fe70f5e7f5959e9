import json
from datetime import date
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction

from actions.models import (
    FicheAction,
    Financeur,
    Indicateur,
    LigneFinancement,
    Mesure,
    PointAvancement,
    ensure_axes,
)
from communes.models import (
    EPCI,
    Beneficiaire,
    Commune,
    Departement,
    IdentifiantPVD,
    MembreBeneficiaire,
    Region,
)
from conventions.forms import default_parties
from conventions.models import Convention, SecteurIntervention
from pvd.french import de
from pvd.models import ImportRun, Role, User

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
FIXTURE = FIXTURES / "demo_territoires.json"
PLANS = FIXTURES / "demo_plans.json"
DEMO_PASSWORD = "pvd-demo"


class Command(BaseCommand):
    help = (
        "Charge les territoires de démonstration (Indre, Haute-Corrèze) et leurs bénéficiaires ; "
        "si DEBUG est actif, les comptes, les conventions et les plans d'action de "
        "démonstration. "
        "Peut être relancée sans risque."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--reference-data",
            metavar="DIR",
            help="Dossier des fichiers officiels : importe d'abord tout le référentiel national "
            "et les listes ANCT (une seule fois pour les listes).",
        )

    def handle(self, *args, reference_data=None, **options) -> None:
        if reference_data:
            self.import_reference_data(Path(reference_data))
        self.seed(json.loads(FIXTURE.read_text(encoding="utf-8")))
        if reference_data:
            # After the demo conventions: the national file never touches a convention
            # entered on the portal, so the demo beneficiaries keep theirs.
            self.import_ort(Path(reference_data))

    def import_reference_data(self, directory: Path) -> None:
        call_command(
            "import_territoires",
            cog=str(directory / "insee_cog_communes_2024-01-01.csv"),
            siren=str(directory / "communes_epci_dep_reg_siren.csv"),
            populations=str(directory / "populations_communes.csv"),
            stdout=self.stdout,
        )
        if ImportRun.objects.filter(kind="coordonnees").exists():
            self.stdout.write("Coordonnées des communes déjà importées.")
        else:
            call_command(
                "import_coordonnees",
                str(directory / "communes_coordonnees.csv"),
                stdout=self.stdout,
            )
        if ImportRun.objects.filter(kind="pvd").exists():
            self.stdout.write("Listes ANCT déjà importées.")
            return
        for name in (
            "anct_pvd_communes_2021-01-22_redacted.csv",
            "anct_ngeo_programmes_cog2023.csv",
        ):
            call_command("import_pvd", str(directory / name), stdout=self.stdout)

    def import_ort(self, directory: Path) -> None:
        """The national ORT tracking: the real conventions-cadres signed (once)."""
        if ImportRun.objects.filter(kind="ort").exists():
            self.stdout.write("Suivi national des ORT déjà importé.")
            return
        call_command(
            "import_ort", str(directory / "ort_conventions_suivi_national.csv"), stdout=self.stdout
        )

    @transaction.atomic
    def seed(self, facts: dict) -> None:
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
                    "latitude": row["latitude"],
                    "longitude": row["longitude"],
                },
            )
        self.seed_beneficiaires(facts)
        self.stdout.write(
            f"Territoires de démonstration : {len(facts['communes'])} communes, "
            f"{len(facts['epci'])} EPCI, {len(facts['departements'])} départements."
        )
        if not settings.DEBUG:
            self.stdout.write(
                "DEBUG est désactivé : ni compte, ni convention, ni plan d'action de démonstration."
            )
            return
        # Illustrative documents, like the accounts: only on a demonstration instance.
        self.seed_conventions(facts["conventions"])
        self.stdout.write(
            f"Comptes de démonstration (mot de passe : {DEMO_PASSWORD} ; dispensés de double "
            "authentification tant que DEBUG est actif, refusés sinon) :"
        )
        for row in facts["accounts"]:
            self.seed_account(row)
            self.stdout.write(f"  {row['email']:<30} {row['fonction']}")
        # After the accounts: the progress journal is written by the demo chef de projet.
        self.seed_plans(json.loads(PLANS.read_text(encoding="utf-8"))["plans"])
        from postes.demo import seed_demo_postes

        seed_demo_postes(self.stdout)
        # --- governance (gouvernance/): after the conventions and the plans it links ---
        from gouvernance.demo import seed_demo_gouvernance

        seed_demo_gouvernance(self.stdout)
        # --- reminders (rappels/): after everything they are about ---
        from rappels.demo import seed_demo_rappels

        seed_demo_rappels(self.stdout)

    def seed_beneficiaires(self, facts: dict) -> None:
        for date_liste, ids in facts["identifiants_pvd"].items():
            for code, id_pvd in ids.items():
                IdentifiantPVD.objects.update_or_create(
                    commune_id=code,
                    date_liste=date.fromisoformat(date_liste),
                    defaults={"id_pvd": id_pvd},
                )
        decision = facts["decision_laureat"]
        date_decision = date.fromisoformat(decision["date"])
        for row in facts["beneficiaires"]:
            taken = MembreBeneficiaire.objects.filter(commune_id__in=row["communes"], actif=True)
            if taken.exists():
                continue  # already in the programme (a previous run, or an ANCT import)
            communes = list(Commune.objects.filter(code__in=row["communes"]))
            main = max(communes, key=lambda c: c.population or 0)
            beneficiaire = Beneficiaire.objects.create(
                nom=row["nom"],
                epci_id=main.epci_id,
                departement_id=main.departement_id,
                statut=Beneficiaire.Statut.CANDIDAT,
            )
            for commune in communes:
                MembreBeneficiaire.objects.create(beneficiaire=beneficiaire, commune=commune)
            beneficiaire.enregistrer_proposition(by=None, date=date_decision)
            beneficiaire.change_statut(
                Beneficiaire.Statut.LAUREAT,
                by=None,
                date_decision=date_decision,
                reference=decision["reference"],
            )

    def seed_conventions(self, facts: dict) -> None:
        """A signed adhésion and convention-cadre for each demo beneficiary."""
        for code, cadre_date in facts["cadre"].items():
            beneficiaire = Beneficiaire.objects.actifs().filter(communes__code=code).first()
            if beneficiaire is None or beneficiaire.conventions.exists():
                continue
            for kind, signed in (
                (Convention.Type.ADHESION, date.fromisoformat(facts["adhesion"])),
                (Convention.Type.CADRE, date.fromisoformat(cadre_date)),
            ):
                # Signed on paper before the portal, like the nationally tracked ones.
                convention = Convention.objects.create(
                    beneficiaire=beneficiaire,
                    type=kind,
                    titre=Convention.titre_par_defaut(kind, beneficiaire),
                    statut=Convention.Statut.SIGNEE,
                    date_redaction=signed,
                    duree_annees=5 if kind == Convention.Type.CADRE else None,
                )
                for partie in default_parties(convention):
                    partie.date_signature = signed
                    partie.save()
                if kind == Convention.Type.CADRE:
                    main = convention.parties.filter(nature="commune").first().commune
                    SecteurIntervention.objects.create(
                        convention=convention,
                        commune=main,
                        nom=f"Centre-ville {de(main.nom)}",
                        centre_ville_principale=True,
                    )
                convention.complete_signature_date(signed)

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
        role.beneficiaires.set(
            Beneficiaire.objects.filter(nom__in=row.get("beneficiaires", [])).actifs()
        )
        role.financeurs.set(Financeur.objects.filter(nom__in=row.get("financeurs", [])))

    def seed_plans(self, plans: list[dict]) -> None:
        """Illustrative plans d'action; a plan that already has fiches is left alone."""
        financeurs = {f.nom: f for f in Financeur.objects.all()}
        for plan in plans:
            beneficiaire = Beneficiaire.objects.actifs().filter(nom=plan["beneficiaire"]).first()
            if beneficiaire is None or beneficiaire.fiches.exists():
                continue
            ensure_axes(beneficiaire)
            axes = {axe.numero: axe for axe in beneficiaire.axes.all()}
            for row in plan["fiches"]:
                self.seed_fiche(beneficiaire, axes, financeurs, row)
            self.stdout.write(
                f"Plan d'action de démonstration : {beneficiaire.nom} "
                f"({len(plan['fiches'])} fiches action)."
            )

    def seed_fiche(
        self, beneficiaire: Beneficiaire, axes: dict, financeurs: dict, row: dict
    ) -> None:
        fields = {
            key: date.fromisoformat(value) if key.startswith("date_") else value
            for key, value in row.items()
            if key not in {"axe", "communes", "financements", "indicateurs", "points"}
        }
        fields["cout_total"] = Decimal(str(fields["cout_total"]))
        fiche = FicheAction(beneficiaire=beneficiaire, axe=axes[row["axe"]], **fields)
        fiche.full_clean()
        fiche.save()
        fiche.communes.set(row.get("communes", []))
        for ligne in row.get("financements", []):
            financeur = financeurs.get(ligne["financeur"])
            if financeur is None:
                continue  # renamed in the managed catalogue since
            LigneFinancement.objects.create(
                fiche=fiche,
                financeur=financeur,
                dispositif=ligne.get("dispositif", ""),
                montant=Decimal(str(ligne["montant"])),
                statut=ligne["statut"],
                date_decision=ligne.get("date_decision")
                and date.fromisoformat(ligne["date_decision"]),
            )
        for indicateur_row in row.get("indicateurs", []):
            indicateur = Indicateur.objects.create(
                fiche=fiche,
                type=indicateur_row["type"],
                libelle=indicateur_row["libelle"],
                unite=indicateur_row["unite"],
                cible=Decimal(str(indicateur_row["cible"])),
                frequence=indicateur_row.get("frequence", ""),
            )
            for mesure in indicateur_row.get("mesures", []):
                Mesure.objects.create(
                    indicateur=indicateur,
                    date=date.fromisoformat(mesure["date"]),
                    valeur=Decimal(str(mesure["valeur"])),
                )
        for point in row.get("points", []):
            auteur = User.objects.filter(email=point["auteur"]).first()
            if auteur is None:
                continue
            PointAvancement.objects.create(
                fiche=fiche,
                date=date.fromisoformat(point["date"]),
                texte=point["texte"],
                nouvel_avancement=point.get("nouvel_avancement", ""),
                auteur=auteur,
            )
