"""Checks on uploaded documents, shared by every upload of the portal."""

from django.core.exceptions import ValidationError
from django.template.defaultfilters import filesizeformat

MAX_PDF_SIZE = 20 * 1024 * 1024


def validate_pdf(upload) -> None:
    """A PDF is recognised by its content (header and end marker), never by its name."""
    if upload.size > MAX_PDF_SIZE:
        raise ValidationError(
            f"Le fichier pèse {filesizeformat(upload.size)} : la limite est de "
            f"{filesizeformat(MAX_PDF_SIZE)}."
        )
    upload.seek(0)
    head = upload.read(1024)
    upload.seek(max(upload.size - 2048, 0))
    tail = upload.read()
    upload.seek(0)
    if b"%PDF-" not in head[:1024] or b"%%EOF" not in tail:
        raise ValidationError(
            "Ce fichier n'est pas un PDF valide. Déposez le document au format PDF."
        )
