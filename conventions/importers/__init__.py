"""Importers of convention data: the national ORT tracking file (``ort``)."""
