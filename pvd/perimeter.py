"""What a user may see: the union of the territorial perimeters of their roles."""

import hashlib
from dataclasses import dataclass, field, fields

from django.db.models import Q


@dataclass(frozen=True)
class Perimeter:
    national: bool = False
    readonly_nation: bool = False
    region_codes: frozenset[str] = field(default_factory=frozenset)
    departement_codes: frozenset[str] = field(default_factory=frozenset)
    epci_sirens: frozenset[str] = field(default_factory=frozenset)
    commune_codes: frozenset[str] = field(default_factory=frozenset)
    # Where the user acts for the State (préfecture): the other sets are read-only.
    prefecture_departement_codes: frozenset[str] = field(default_factory=frozenset)
    # Beneficiaries the user works for (chef de projet); their communes are in commune_codes.
    beneficiaire_ids: frozenset[int] = field(default_factory=frozenset)

    @property
    def sees_everything(self) -> bool:
        return self.national or self.readonly_nation

    @property
    def cache_key(self) -> str:
        """A short key that differs whenever the perimeter does (for cached fragments that
        depend on what the user reads)."""
        parts = [
            ",".join(sorted(str(v) for v in getattr(self, f.name)))
            if isinstance(getattr(self, f.name), frozenset)
            else str(getattr(self, f.name))
            for f in fields(self)
        ]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]

    @property
    def is_empty(self) -> bool:
        return not (
            self.sees_everything
            or self.region_codes
            or self.departement_codes
            or self.epci_sirens
            or self.commune_codes
        )

    def commune_q(self, prefix: str = "") -> Q:
        """A filter on communes (or on a relation to them, through `prefix`)."""
        if self.sees_everything:
            return Q()
        q = Q(pk__in=[])
        if prefix:
            q = Q(**{f"{prefix}__in": []})
        lookups = {
            "departement__region_id__in": self.region_codes,
            "departement_id__in": self.departement_codes,
            "epci_id__in": self.epci_sirens,
            "code__in": self.commune_codes,
        }
        for lookup, values in lookups.items():
            if values:
                q |= Q(**{f"{prefix}__{lookup}" if prefix else lookup: sorted(values)})
        return q


EMPTY = Perimeter()
