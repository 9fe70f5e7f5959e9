"""python manage.py import_territoires --cog FILE --siren FILE [--populations FILE]"""

from django.core.management.base import BaseCommand, CommandError

from communes.importers.csvfile import ImportFileError
from communes.importers.territoires import import_territoires
from pvd.cache import data_rewritten


class Command(BaseCommand):
    help = (
        "Importe ou met à jour les régions, départements, EPCI et communes à partir du COG "
        "de l'INSEE, de la table communes ↔ SIREN et, si on le donne, du fichier des "
        "populations légales. Tout ou rien : un fichier mal formé n'importe rien."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--cog", required=True, help="fichier « communes » du COG (TYPECOM, COM, …)"
        )
        parser.add_argument(
            "--siren", required=True, help="table communes ↔ SIREN (com_code;com_siren;…)"
        )
        parser.add_argument("--populations", help="populations légales (COM;PMUN;…)")

    def handle(self, *args, cog, siren, populations=None, **options):
        try:
            report = import_territoires(cog, siren, populations)
        except ImportFileError as exc:
            raise CommandError(f"Import annulé, base inchangée. {exc}") from exc
        data_rewritten()  # written in bulk, without signals: every dashboard reads it again
        self.stdout.write(report.render())
