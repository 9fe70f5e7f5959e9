"""Real PDFs for upload tests, built with pypdf: a clean one and hostile variants."""

import io

from pypdf import PdfWriter
from pypdf.generic import (
    ArrayObject,
    DictionaryObject,
    NameObject,
    TextStringObject,
)


def _write(writer: PdfWriter) -> bytes:
    output = io.BytesIO()
    writer.write(output)
    return output.getvalue()


def _blank() -> PdfWriter:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    return writer


def clean_pdf() -> bytes:
    return _write(_blank())


def pdf_with_javascript() -> bytes:
    """Document-level JavaScript, in the catalogue's /Names tree."""
    writer = _blank()
    action = DictionaryObject(
        {
            NameObject("/S"): NameObject("/JavaScript"),
            NameObject("/JS"): TextStringObject("app.alert('coucou');"),
        }
    )
    tree = DictionaryObject(
        {NameObject("/Names"): ArrayObject([TextStringObject("js"), writer._add_object(action)])}
    )
    names = DictionaryObject({NameObject("/JavaScript"): writer._add_object(tree)})
    writer._root_object[NameObject("/Names")] = writer._add_object(names)
    return _write(writer)


def pdf_with_open_action_javascript() -> bytes:
    """JavaScript as the document's open action, its name escaped to dodge byte sniffing."""
    writer = _blank()
    action = DictionaryObject(
        {
            NameObject("/S"): NameObject("/JavaScript"),
            NameObject("/JS"): TextStringObject("app.alert(1)"),
        }
    )
    writer._root_object[NameObject("/OpenAction")] = writer._add_object(action)
    return _write(writer).replace(b"/JavaScript", b"/J#61vaScript")


def pdf_with_launch_action() -> bytes:
    writer = _blank()
    action = DictionaryObject(
        {
            NameObject("/S"): NameObject("/Launch"),
            NameObject("/F"): TextStringObject("calc.exe"),
        }
    )
    writer._root_object[NameObject("/OpenAction")] = writer._add_object(action)
    return _write(writer)


def pdf_with_embedded_file() -> bytes:
    writer = _blank()
    writer.add_attachment("virus.exe", b"MZ\x90\x00")
    return _write(writer)


HTML_WITH_PDF_COMMENT = (
    b"<html><!-- %PDF-1.4 --><body><script>alert(1)</script></body></html>\n%%EOF\n"
)
