"""WeasyPrint in a child process: HTML in, PDF bytes out.

This module imports nothing of Django, nor WeasyPrint until it renders: a process forked
from a server that preloaded only WeasyPrint and this module (``multiprocessing``'s
forkserver) lays the document out, so its memory is WeasyPrint's and the document's, not
a Django worker's, and everything the layout allocated (boxes, fonts, caches) goes back to
the system when the child exits: the worker that asked for the PDF does not grow with each
document.

Static files are served by :class:`StaticFilesURLFetcher` from the roots the staticfiles
finders search (given by the parent, in their order), data: URLs are decoded, and every
other URL is refused: rendering never touches the network nor the rest of the disk.
"""

from __future__ import annotations

import functools
import mimetypes
import multiprocessing
import posixpath
import resource
import sys
import threading
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


def render(html: str, base_url: str, roots: Roots, options: dict) -> tuple[bytes, list, float]:
    """The PDF, the static files that were missing, and the peak memory of the process."""
    from weasyprint import HTML

    fetcher = fetcher_class()(base_url, find_in(roots))
    content = HTML(string=html, base_url=base_url, url_fetcher=fetcher).write_pdf(**options)
    return content, fetcher.missing, peak_rss_mib()


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
            context.set_forkserver_preload(["__main__", "weasyprint", __name__])
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
    with _forkserver().Pool(1, maxtasksperchild=1) as pool:
        return pool.apply(render, (html, base_url, roots, options))
