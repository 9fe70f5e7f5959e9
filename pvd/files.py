"""Documents: the checks on every upload of the portal, and how a stored one is served.

A PDF is recognised by parsing it (pypdf), never by sniffing a few bytes: an HTML page
with `%PDF-` in a comment, or a ZIP with a PDF glued in front, is not a PDF. What a PDF
may carry is checked on the parsed objects, so compressed object streams and escaped
names (`/J#61vaScript`) cannot hide an action.

How a stored document leaves the portal: after the view's rights check, and only then.

Documents (signed scans, job descriptions, generated PDFs, exports) live in the default
storage (settings ``STORAGES["default"]``: a local directory, or a private bucket on an
S3-compatible store shared by every instance). App code reads and writes them through the
storage API only (``FieldFile.open()``, ``FieldFile.save()``, ``storage.delete()``): no path
on disk. A download view finds the row through ``for_user`` (another territory: 404), then
calls ``serve``: the file is streamed through the portal, or, with ``PVD_FILES_REDIRECT`` and
an object store the browsers reach, the browser is sent to a signed URL that expires within
``AWS_QUERYSTRING_EXPIRE`` seconds (a link copied from the address bar soon stops working).
"""

import io
import re
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models.fields.files import FieldFile
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.defaultfilters import filesizeformat
from django.utils.http import content_disposition_header

MAX_PDF_SIZE = 20 * 1024 * 1024
# Beyond this many objects a "scan" is not a scan; also bounds the time the walk takes.
MAX_PDF_OBJECTS = 200_000
# A few bytes after the last %%EOF are tolerated (line ends, NUL padding of old scanners).
MAX_TRAILING_BYTES = 32

NOT_A_PDF = "Ce fichier n'est pas un PDF valide. Déposez le document au format PDF."

# Names whose presence anywhere in the document makes it refused, with the reason shown.
FORBIDDEN_NAMES = {
    "/JS": "du JavaScript",
    "/JavaScript": "du JavaScript",
    "/Launch": "une action qui lance un programme",
    "/EmbeddedFiles": "des fichiers incorporés",
    "/EmbeddedFile": "des fichiers incorporés",
    "/FileAttachment": "des fichiers incorporés",
    "/RichMedia": "du contenu multimédia actif",
    "/XFA": "un formulaire XFA (scripts)",
    "/GoToE": "une action vers un fichier incorporé",
    "/ImportData": "une action qui importe des données",
    "/SubmitForm": "une action qui envoie des données",
}

_TRAILING_JUNK = re.compile(rb"[\s\x00]*")


def pdf_upload_name(prefix: str) -> str:
    """Where an uploaded PDF is stored: never the uploader's name or extension."""
    return f"{prefix}/{uuid.uuid4().hex}.pdf"


def validate_pdf(upload) -> None:
    if upload.size > MAX_PDF_SIZE:
        raise ValidationError(
            f"Le fichier pèse {filesizeformat(upload.size)} : la limite est de "
            f"{filesizeformat(MAX_PDF_SIZE)}."
        )
    upload.seek(0)
    content = upload.read()
    upload.seek(0)
    check_pdf_bytes(content)


def check_pdf_bytes(content: bytes) -> None:
    """Raise a ValidationError in French unless `content` is one clean PDF and nothing else."""
    if not content.startswith(b"%PDF-"):
        raise ValidationError(NOT_A_PDF)
    end = content.rfind(b"%%EOF")
    if end == -1:
        raise ValidationError(NOT_A_PDF)
    tail = content[end + len(b"%%EOF") :]
    if len(tail) > MAX_TRAILING_BYTES or not _TRAILING_JUNK.fullmatch(tail):
        raise ValidationError(
            "Ce fichier contient d'autres données après la fin du PDF : il est refusé. "
            "Déposez le PDF tel que produit par le scanner ou le logiciel."
        )
    reason = _forbidden_content(content)
    if reason:
        raise ValidationError(
            f"Ce PDF contient {reason} : il est refusé pour la sécurité des utilisateurs. "
            "Déposez une version simple du document (impression en PDF ou scan)."
        )


def _forbidden_content(content: bytes) -> str | None:
    # pypdf (about 18 MiB) is imported by the workers that receive a PDF, not by every one.
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(content), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise ValidationError(
                "Ce PDF est protégé par un mot de passe. Déposez une version sans protection."
            )
        if len(reader.pages) == 0:
            raise ValidationError(NOT_A_PDF)
        return _walk(reader.trailer)
    except ValidationError:
        raise
    except Exception:  # a broken file raises PdfReadError but also KeyError, ValueError...
        raise ValidationError(NOT_A_PDF) from None


def _walk(root) -> str | None:
    """Visit every object reachable from the trailer; the first forbidden name found wins."""
    from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, NameObject

    seen: set[tuple[int, int]] = set()
    stack = [root]
    visited = 0
    while stack:
        obj = stack.pop()
        if isinstance(obj, IndirectObject):
            key = (obj.idnum, obj.generation)
            if key in seen:
                continue
            seen.add(key)
            obj = obj.get_object()
        visited += 1
        if visited > MAX_PDF_OBJECTS:
            raise ValidationError(NOT_A_PDF)
        if isinstance(obj, NameObject):
            if str(obj) in FORBIDDEN_NAMES:
                return FORBIDDEN_NAMES[str(obj)]
        elif isinstance(obj, DictionaryObject):
            for name, value in obj.items():
                if str(name) in FORBIDDEN_NAMES:
                    return FORBIDDEN_NAMES[str(name)]
                stack.append(value)
        elif isinstance(obj, ArrayObject):
            stack.extend(obj)
    return None


# Downloads ------------------------------------------------------------------------------------


def signed_url(fieldfile: FieldFile, filename: str, content_type: str) -> str | None:
    """A short-lived signed URL of the stored file, when its storage signs URLs (S3)."""
    storage = fieldfile.storage
    if not getattr(storage, "querystring_auth", False):
        return None
    return storage.url(
        fieldfile.name,
        parameters={
            "ResponseContentDisposition": content_disposition_header(True, filename),
            "ResponseContentType": content_type,
        },
    )  # the storage's own expiry: AWS_QUERYSTRING_EXPIRE


def serve(
    request: HttpRequest,
    fieldfile: FieldFile,
    filename: str,
    content_type: str = "application/pdf",
) -> HttpResponse:
    """The stored file as a download named ``filename``: call it once rights are checked."""
    if settings.PVD_FILES_REDIRECT:
        url = signed_url(fieldfile, filename, content_type)
        if url is not None:
            response = HttpResponseRedirect(url)
            response["Cache-Control"] = "no-store"
            return response
    response = FileResponse(
        fieldfile.open("rb"),
        as_attachment=True,
        filename=filename,
        content_type=content_type,
    )
    response["Cache-Control"] = "private, no-store"
    return response
