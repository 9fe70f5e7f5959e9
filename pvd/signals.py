"""A change to what a perimeter reads gives its users a new perimeter version (User.perimeter).

A perimeter reads the user's roles, their territories and the active communes of their
beneficiaries. Every write of these through the ORM sends a signal caught here, and the
version is written in the same transaction as the change. Writes that send no signal must
not change a perimeter: the importers' ``bulk_create`` adds communes to new beneficiaries
only (nobody's role names them yet), their ``bulk_update`` changes signature dates only.
Write a role's territories through the relation (``role.communes.add``), never through its
``through`` model, whose rows Django saves and deletes without signals.

The territories' models are named by their label: the kernel imports no feature app.
"""

from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete, pre_save
from django.dispatch import receiver

from .models import Role, touch_perimeters

LINKS = [Role.departements.through, Role.communes.through, Role.beneficiaires.through]


def touch_role_users(role_ids) -> None:
    touch_perimeters(Role.objects.filter(pk__in=role_ids).values_list("user_id", flat=True))


@receiver(post_save, sender=Role, dispatch_uid="perimeter-role-save")
@receiver(post_delete, sender=Role, dispatch_uid="perimeter-role-delete")
def role_changed(sender, instance: Role, **kwargs) -> None:
    loaded = [instance.user] if Role.user.is_cached(instance) else []
    touch_perimeters([instance.user_id], *loaded)


def territories_changed(sender, instance, action: str, reverse: bool, pk_set, **kwargs) -> None:
    """role.communes.add(…), beneficiaire.roles.remove(…): Django adds links in bulk."""
    if action not in ("post_add", "post_remove", "pre_clear"):
        return
    if not reverse:
        role_changed(Role, instance)
    elif pk_set is not None:  # from the territory's side (beneficiaire.roles): roles
        touch_role_users(pk_set)
    else:
        touch_role_users(instance.roles.values("pk"))


for link in LINKS:
    label = link._meta.label
    m2m_changed.connect(territories_changed, sender=link, dispatch_uid=f"perimeter-{label}")


# A territory's model and the role's relation to it.
TERRITORIES = {
    "communes.Beneficiaire": "beneficiaires",
    "communes.Commune": "communes",
    "communes.Departement": "departements",
}


def territory_deleted(sender, instance, **kwargs) -> None:
    """Deleting a territory deletes the roles' links to it, without any signal."""
    field = TERRITORIES[sender._meta.label]
    touch_role_users(Role.objects.filter(**{field: instance.pk}).values("pk"))


for label in TERRITORIES:
    pre_delete.connect(territory_deleted, sender=label, dispatch_uid=f"perimeter-{label}-delete")


def touch_beneficiaires_users(beneficiaire_ids) -> None:
    touch_perimeters(
        Role.objects.filter(beneficiaires__in=beneficiaire_ids).values_list("user_id", flat=True)
    )


@receiver(pre_save, sender="communes.MembreBeneficiaire", dispatch_uid="perimeter-membre-moved")
def membre_moving(sender, instance, update_fields=None, **kwargs) -> None:
    """A membership moved to another beneficiary also leaves the perimeters of the first."""
    if instance.pk and (update_fields is None or "beneficiaire" in update_fields):
        touch_beneficiaires_users(
            sender.objects.filter(pk=instance.pk)
            .exclude(beneficiaire_id=instance.beneficiaire_id)
            .values("beneficiaire_id")
        )


@receiver(post_save, sender="communes.MembreBeneficiaire", dispatch_uid="perimeter-membre-save")
@receiver(post_delete, sender="communes.MembreBeneficiaire", dispatch_uid="perimeter-membre-delete")
def membre_changed(sender, instance, **kwargs) -> None:
    touch_beneficiaires_users([instance.beneficiaire_id])
