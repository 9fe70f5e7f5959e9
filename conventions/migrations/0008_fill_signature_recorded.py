"""Signatures recorded before the portal kept who and when: the best timestamps it has.

An imported convention (national tracking) was recorded when it was imported (created_at);
one signed on the portal, at its last change (updated_at, the signature being the last
change a signed convention gets but for a termination). Who recorded it stays unknown."""

from django.db import migrations
from django.db.models import F

SIGNEES = ["signee", "modifiee", "echue", "resiliee"]


def fill(apps, schema_editor):
    Convention = apps.get_model("conventions", "Convention")
    signed = Convention.objects.filter(
        statut__in=SIGNEES, date_signature__isnull=False, signature_enregistree_le__isnull=True
    )
    signed.filter(source="import_ort").update(signature_enregistree_le=F("created_at"))
    signed.exclude(source="import_ort").update(signature_enregistree_le=F("updated_at"))


class Migration(migrations.Migration):
    dependencies = [("conventions", "0007_convention_signature_recorded")]

    operations = [migrations.RunPython(fill, migrations.RunPython.noop)]
