"""python manage.py import_pvd FILE [--date-liste YYYY-MM-DD]"""

from datetime import date

from django.core.management.base import BaseCommand, CommandError

from communes.importers.csvfile import ImportFileError, quote
from communes.importers.pvd import PvdImportError, import_pvd
from pvd.cache import data_rewritten


class Command(BaseCommand):
    help = (
        "Importe une liste nationale ANCT des communes Petites villes de demain : crée les "
        "bénéficiaires des communes entrées dans le programme, fait sortir celles qui n'y "
        "sont plus et enregistre les identifiants PVD. Le format est reconnu à ses "
        "colonnes : liste ANCT du 22 janvier 2021 (id_pvd partagé = candidature groupée ; "
        "datée du 22/01/2021), table ANCT communes ↔ programmes sur le COG 2023 (datée par "
        "défaut du 01/01/2023, date du COG 2023, le fichier ne donnant pas la sienne), "
        "liste data.gouv.fr insee_com, lib_com, id_pvd, date_signature (--date-liste "
        "obligatoire). Le référentiel territorial doit être importé avant "
        "(import_territoires). Tout ou rien : un fichier mal formé n'importe rien."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="fichier CSV de la liste ANCT")
        parser.add_argument(
            "--date-liste",
            help=(
                "date de la liste, AAAA-MM-JJ : obligatoire pour la liste data.gouv.fr ; "
                "remplace la date par défaut des deux autres formats (22/01/2021, 01/01/2023)"
            ),
        )

        parser.add_argument(
            "--force",
            action="store_true",
            help="accepter qu'une liste fasse sortir plus de 10 %% des communes du programme",
        )

    def handle(self, *args, file, date_liste=None, force=False, **options):
        try:
            report = import_pvd(file, _parse_date(date_liste), force=force)
        except (ImportFileError, PvdImportError) as exc:
            raise CommandError(f"Import annulé, base inchangée. {exc}") from exc
        data_rewritten()  # written in bulk, without signals: every dashboard reads it again
        self.stdout.write(report.render())


def _parse_date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise CommandError(
            f"--date-liste : date invalide {quote(value)}, format attendu AAAA-MM-JJ "
            "(par exemple 2024-01-02)."
        ) from None
