"""python manage.py import_coordonnees FILE"""

from django.core.management.base import BaseCommand, CommandError

from communes.importers.coordonnees import CoordonneesImportError, import_coordonnees
from communes.importers.csvfile import ImportFileError
from pvd.cache import data_rewritten


class Command(BaseCommand):
    help = (
        "Importe les coordonnées des communes pour la carte (communes_coordonnees.csv) : le "
        "centre de chaque commune, la mairie seulement quand le centre manque, après avoir "
        "vérifié que le point est dans son département ; les points écartés sont donnés dans "
        "le compte rendu. Le référentiel territorial (import_territoires) doit être importé "
        "avant. Tout ou rien : un fichier mal formé n'importe rien."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="fichier CSV des coordonnées des communes")

    def handle(self, *args, file, **options):
        try:
            report = import_coordonnees(file)
        except (ImportFileError, CoordonneesImportError) as exc:
            raise CommandError(f"Import annulé, base inchangée. {exc}") from exc
        data_rewritten()  # written in bulk, without signals: every dashboard reads it again
        self.stdout.write(report.render())
