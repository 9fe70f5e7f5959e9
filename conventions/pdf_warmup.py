"""Imported by the PDF renderer's fork server only (``pdf_render``'s preload list): the
server sets WeasyPrint up once, and every document is laid out in a process forked from it."""

from . import pdf_render

pdf_render.warm_up()
