"""Importers of reference data: one module per file format, plus the code that applies them.

Each format module (``cog``, ``siren``, ``populations``…) only reads and checks a file into
plain dataclasses, raising :class:`~communes.importers.csvfile.ImportFileError` with the
file, line and column of the first fault. ``territoires`` joins them and writes the
database, all or nothing.
"""

from .csvfile import ImportFileError

__all__ = ["ImportFileError"]
