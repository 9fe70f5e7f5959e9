"""A beneficiary whose convention is signed gets its comité de projet (gouvernance/seed.py
did it for those signed before): the convention d'adhésion sets it up."""

from django.db.models.signals import post_save

from conventions.models import Convention

from .models import Instance, nom_par_defaut


def convention_saved(sender, instance: Convention, **kwargs) -> None:
    if instance.statut not in Convention.STATUTS_SIGNES:
        return
    beneficiaire = instance.beneficiaire
    if not beneficiaire.instances.filter(type=Instance.Type.COMITE_PROJET).exists():
        Instance.objects.create(
            type=Instance.Type.COMITE_PROJET,
            nom=nom_par_defaut(Instance.Type.COMITE_PROJET, beneficiaire)[:200],
            beneficiaire=beneficiaire,
        )


post_save.connect(convention_saved, sender=Convention, dispatch_uid="gouvernance-comite-projet")
