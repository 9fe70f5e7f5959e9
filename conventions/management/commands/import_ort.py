"""python manage.py import_ort FILE"""

from django.core.management.base import BaseCommand, CommandError

from communes.importers.csvfile import ImportFileError
from conventions.importers.ort import OrtImportError, import_ort
from pvd.cache import data_rewritten


class Command(BaseCommand):
    help = (
        "Importe le suivi national des ORT (ort_conventions_suivi_national.csv) : pour "
        "chaque commune PVD marquée « Signée », le bénéficiaire actif reçoit sa "
        "convention-cadre PVD valant ORT signée (la date la plus ancienne de ses communes), "
        "mise à jour aux imports suivants. Une convention-cadre signée saisie sur le "
        "portail n'est jamais modifiée. Pour les communes non signées, la signature "
        "envisagée est enregistrée sur le projet de convention-cadre du bénéficiaire s'il "
        "en a un, sinon donnée dans le compte rendu. Le référentiel territorial "
        "(import_territoires) et les listes ANCT (import_pvd) doivent être importés avant. "
        "Tout ou rien : un fichier mal formé n'importe rien."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="fichier CSV du suivi national des ORT")

    def handle(self, *args, file, **options):
        try:
            report = import_ort(file)
        except (ImportFileError, OrtImportError) as exc:
            raise CommandError(f"Import annulé, base inchangée. {exc}") from exc
        data_rewritten()  # written in bulk, without signals: every dashboard reads it again
        self.stdout.write(report.render())
