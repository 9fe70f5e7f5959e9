"""WeasyPrint in a child process: HTML in, PDF bytes out.

This module imports nothing of Django, nor WeasyPrint until it renders: a process forked
from a server that preloaded only WeasyPrint and this module, and laid a small document out
once (``pdf_warmup``; ``multiprocessing``'s forkserver), lays the document out, so its
memory is WeasyPrint's and the document's, not a Django worker's, and everything the layout
allocated (boxes, fonts, caches) goes back to the system when the child exits: the worker
that asked for the PDF does not grow with each document.

Static files are served by :class:`StaticFilesURLFetcher` from the roots the staticfiles
finders search (given by the parent, in their order), data: URLs are decoded, and every
other URL is refused: rendering never touches the network nor the rest of the disk.
"""

from __future__ import annotations

import functools
import gc
import mimetypes
import multiprocessing
import posixpath
import re
import resource
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import unquote, urlsplit

CONTENT_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".woff2": "font/woff2",
    ".woff": "font/woff",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    ".svg": "image/svg+xml",
}

# (prefix, directory): a static file « prefix/path » is « directory/path ».
Roots = Sequence[tuple[str, str]]


class RefusedURL(ValueError):
    """The PDF renderer reads the project's static files and nothing else."""


def find_in(roots: Roots) -> Callable[[str], str | None]:
    """The staticfiles finders' ``find`` over their roots, without Django: the first root
    holding the relative path (already normalised, never « .. » nor absolute)."""

    def find(path: str) -> str | None:
        for prefix, root in roots:
            relative = path
            if prefix:
                if not path.startswith(prefix + "/"):
                    continue
                relative = path[len(prefix) + 1 :]
            base = Path(root).resolve()
            candidate = (base / relative).resolve()
            if candidate.is_relative_to(base) and candidate.is_file():
                return str(candidate)
        return None

    return find


@functools.cache
def fetcher_class():
    """The fetcher class, defined on first use: WeasyPrint is imported by the processes
    that render (the fork server preloads it), not by those that only ask for a PDF."""
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class StaticFilesURLFetcher(URLFetcher):
        """Serves the project's static files and data: URLs; refuses every other URL.

        Static files are looked up by their plain name: the PDF template must not use
        ``{% static %}``, whose hashed names (manifest storage) exist only after collectstatic.
        """

        def __init__(self, base_url: str, find: Callable[[str], str | None]) -> None:
            # data: URLs are decoded by urllib's DataHandler: no network involved.
            super().__init__(allowed_protocols=("data",))
            self.base_url = base_url
            self.find = find
            self.missing: list[str] = []

        def fetch(self, url: str, headers=None) -> URLFetcherResponse:
            if url[:5].lower() == "data:":
                return super().fetch(url, headers)
            path = self.static_path(url)
            if path is None:
                raise RefusedURL(f"Ressource refusée par le générateur de PDF : {url}")
            try:
                found = self.find(path)
            except Exception as exc:  # Django's SuspiciousFileOperation, in the parent
                raise RefusedURL(f"Ressource refusée par le générateur de PDF : {url}") from exc
            if not found:
                self.missing.append(path)
                raise FileNotFoundError(f"Fichier statique introuvable : {path}")
            found = Path(found)
            content_type = CONTENT_TYPES.get(found.suffix.lower()) or (
                mimetypes.guess_type(found.name)[0] or "application/octet-stream"
            )
            return URLFetcherResponse(url, found.read_bytes(), {"Content-Type": content_type})

        def static_path(self, url: str) -> str | None:
            """The static file's relative path, or None when the URL is not under STATIC_URL."""
            base, target = urlsplit(self.base_url), urlsplit(url)
            same_origin = (target.scheme.lower(), target.netloc.lower()) == (
                base.scheme.lower(),
                base.netloc.lower(),
            )
            if not same_origin or not target.path.startswith(base.path):
                return None
            relative = posixpath.normpath(unquote(target.path[len(base.path) :]))
            if relative in ("", ".", "..") or relative.startswith(("../", "/")):
                return None
            return relative

    return StaticFilesURLFetcher


def peak_rss_mib() -> float:
    """This process's peak resident memory (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


# WeasyPrint's user-agent stylesheet styles the ::marker, ::footnote-call, ::footnote-marker,
# ::note-call, ::note-marker and ::note-callback of every element: six pseudo-elements whose
# styles are computed, one by one, for each of the document's elements (about 10,000 for a
# convention with its annexed plan, 85 % of the cascade's styles). The documents use no
# footnote, and only list items have a marker: the renderer's copy keeps ::marker for li and
# drops the notes' rules, which changes nothing on the page.
UNIVERSAL_PSEUDO_ELEMENTS = re.compile(r"^::([a-z-]+) \{[^}\n]*\}$", re.MULTILINE)


def _scoped(rule: re.Match) -> str:
    if rule[1] == "marker":
        return "li" + rule[0]
    if rule[1].startswith(("footnote-", "note-")):
        return ""
    raise ValueError(f"Règle inattendue de la feuille de style de WeasyPrint : {rule[0]}")


@functools.cache
def user_agent_stylesheet():
    """WeasyPrint's HTML user-agent stylesheet without its rules for every element's
    pseudo-elements (see UNIVERSAL_PSEUDO_ELEMENTS), parsed once per process."""
    from weasyprint import CSS
    from weasyprint.html import UA, UA_COUNTER_STYLE

    source, count = UNIVERSAL_PSEUDO_ELEMENTS.subn(_scoped, UA)
    if not count:
        raise ValueError("Feuille de style de WeasyPrint inattendue : revoir user_agent_stylesheet")
    return CSS(string=source, counter_style=UA_COUNTER_STYLE)


@functools.cache
def html_class():
    """WeasyPrint's HTML with the renderer's user-agent stylesheet."""
    from weasyprint import HTML

    class RendererHTML(HTML):
        def _ua_stylesheets(self, forms=False):
            if forms:
                return [user_agent_stylesheet(), *super()._ua_stylesheets(forms)[1:]]
            return [user_agent_stylesheet()]

    return RendererHTML


def render(html: str, base_url: str, roots: Roots, options: dict) -> tuple[bytes, list, float]:
    """The PDF, the static files that were missing, and the peak memory of the process."""
    fetcher = fetcher_class()(base_url, find_in(roots))
    # The layout allocates some hundred thousand objects, none of them collectable before the
    # end: the cyclic garbage collector's passes over them are a tenth of the time. It is
    # switched off for the render (the child exits after it; in a Celery prefork worker, it is
    # switched back on and collects once).
    collecting = gc.isenabled()
    gc.disable()
    try:
        document = html_class()(string=html, base_url=base_url, url_fetcher=fetcher)
        content = document.write_pdf(**options)
    finally:
        if collecting:
            gc.enable()
    return content, fetcher.missing, peak_rss_mib()


def warm_up() -> None:
    """Run by the fork server once (``conventions.pdf_warmup``): what every document needs
    and WeasyPrint only sets up on first use (its C types, fonts, hyphenation dictionary, the
    user-agent stylesheet) is ready in every process forked from the server; its objects are
    then kept out of the garbage collector's passes (``gc.freeze``)."""
    sample = (
        "<html lang='fr'><body style='hyphens: auto; text-align: justify'>"
        "<h1>Convention</h1><p>Les parties conviennent de conduire ensemble le projet de "
        "revitalisation.</p><table><tr><th>Référence</th><td>12 345</td></tr></table>"
        # An SVG image in a data: URL, as the bloc marque (urllib's data: handler imports
        # the email package on first use).
        "<img src='data:image/svg+xml;base64,PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9z"
        "dmciIHdpZHRoPSI0IiBoZWlnaHQ9IjQiPjxyZWN0IHdpZHRoPSI0IiBoZWlnaHQ9IjQiLz48L3N2Zz4='>"
        "</body></html>"
    )
    html_class()(string=sample).write_pdf()
    # What the stylesheet's @font-face rules (woff2 fonts) need on first use, which a
    # sample without the static files cannot load: the C type cffi parses (some 6 ms) and
    # the font tables fontTools imports when it decompresses a woff2 font.
    from fontTools.ttLib import getTableModule
    from weasyprint.text.ffi import ffi

    ffi.new("FcChar8 **")
    getTableModule("OS/2"), getTableModule("hhea")
    gc.collect()
    gc.freeze()


_lock = threading.Lock()
_context = None


def _forkserver():
    global _context
    with _lock:
        if _context is None:
            context = multiprocessing.get_context("forkserver")
            # The server imports WeasyPrint once, and the main module as multiprocessing does
            # by default (each child would run it again otherwise: the worker's « celery »
            # script, manage.py, pytest); each render forks the server.
            context.set_forkserver_preload(
                ["__main__", "weasyprint", __name__, f"{__package__}.pdf_warmup"]
            )
            _context = context
        return _context


def start() -> None:
    """Start the fork server now (about a second), not on the first document."""
    process = _forkserver().Process(target=int)
    process.start()
    process.join()


def render_in_child(
    html: str, base_url: str, roots: Roots, options: dict
) -> tuple[bytes, list, float]:
    """:func:`render` in a child forked from the WeasyPrint-only server."""
    # Celery's prefork workers are daemonic processes, which multiprocessing forbids to have
    # children: there, the document is laid out in the worker itself (same bytes); run the
    # worker with ``--pool=solo`` or threads to have it laid out in a child.
    if multiprocessing.current_process().daemon:
        return render(html, base_url, roots, options)
    # One process per document, its result sent back through a pipe: no Pool (its three
    # threads, and the worker it would fork again to replace the one that exited).
    context = _forkserver()
    receiving, sending = context.Pipe(duplex=False)
    child = context.Process(target=_render_and_send, args=(sending, html, base_url, roots, options))
    child.start()
    sending.close()
    try:
        succeeded, result = receiving.recv()
    except EOFError:
        child.join()
        raise RuntimeError(
            f"Le processus de mise en page du PDF s'est arrêté (code {child.exitcode})"
        ) from None
    finally:
        receiving.close()
    child.join()
    if not succeeded:
        raise result
    return result


def _render_and_send(sending, html: str, base_url: str, roots: Roots, options: dict) -> None:
    """In the child: :func:`render`, its result or its exception sent to the parent."""
    try:
        outcome = (True, render(html, base_url, roots, options))
    except Exception as exc:
        exc.add_note("".join(traceback.format_exception(exc)))  # the child's traceback
        outcome = (False, exc)
    try:
        sending.send(outcome)
    except Exception:  # an exception that cannot be pickled: its text is enough
        sending.send((False, RuntimeError(repr(outcome[1]))))
    finally:
        sending.close()
