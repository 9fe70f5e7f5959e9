"""Build the open-data files (opendata/jeux.py) by the job protocol: one Publication row per
data set and run, its file kept with its date in the default storage."""

import io
import tempfile

from django.core.files import File

from pvd.jobs import JobRefused, Result
from pvd.spreadsheets import write_open_data_csv

from .jeux import JEUX, PAR_SLUG
from .models import Publication

FAILED = "La publication a échoué ({detail})."


def request_all() -> list[Publication]:
    """Ask for a fresh file of every data set (the beat, or national staff)."""
    return [Publication.request(jeu=jeu.slug) for jeu in JEUX]


def build_publication(publication_id: int) -> None:
    Publication.run(publication_id, write_publication, failed=FAILED)


def write_publication(publication: Publication) -> Result:
    jeu = PAR_SLUG.get(publication.jeu)
    if jeu is None:
        raise JobRefused(f"Jeu de données inconnu : {publication.jeu}.")
    rows, exclues = jeu.rows()
    output = tempfile.TemporaryFile()  # closed by Publication.run once stored
    try:
        text = io.TextIOWrapper(output, encoding="utf-8", newline="")
        lignes = write_open_data_csv(jeu.header, rows, text)
        text.flush()
        text.detach()
        output.seek(0)
    except BaseException:
        output.close()
        raise
    fields = {"lignes": lignes, "lignes_exclues": sum(exclues.values()), "exclusions": exclues}
    return File(output, name=f"{jeu.slug}.csv"), fields
