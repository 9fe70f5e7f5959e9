"""The demo's governance (portail seed_demo, DEBUG only): Ussel – La Courtine's comité de
projet with two meetings, one of which decided a fiche's financing; the Indre's CLCT with one
meeting held and the next one due. Run again, it changes nothing."""

from datetime import date, time
from decimal import Decimal

from actions.models import LigneFinancement
from communes.models import Beneficiaire, Departement
from pvd.models import User

from .models import Decision, Instance, Membre, PointOrdreDuJour, Presence, Reunion, Suite
from .seed import seed_instances

CDP_USSEL = "cdp-ussel@demo.pvd.fr"
PREFECTURE_36 = "prefecture-36@demo.pvd.fr"


def seed_demo_gouvernance(stdout) -> None:
    created = seed_instances(Instance, Beneficiaire, Departement)
    stdout.write(f"Instances de gouvernance créées : {created}.")
    comite = Instance.objects.filter(
        type=Instance.Type.COMITE_PROJET, beneficiaire__nom="Ussel – La Courtine"
    ).first()
    if comite is not None and not comite.reunions.exists():
        seed_comite_ussel(comite)
        stdout.write("Gouvernance de démonstration : comité de projet d'Ussel – La Courtine.")
    clct = Instance.objects.filter(type=Instance.Type.CLCT, departement_id="36").first()
    if clct is not None and not clct.reunions.exists():
        seed_clct_indre(clct)
        stdout.write("Gouvernance de démonstration : CLCT de l'Indre.")


def _membres(instance: Instance, rows) -> list[Membre]:
    membres = []
    for organisation, personne, role, email in rows:
        membres.append(
            Membre.objects.create(
                instance=instance,
                organisation=organisation,
                personne=personne,
                role=role,
                email=email,
                user=User.objects.filter(email=email).first() if email else None,
            )
        )
    return membres


def seed_comite_ussel(comite: Instance) -> None:
    R = Membre.Role
    cdp = User.objects.filter(email=CDP_USSEL).first()
    membres = _membres(
        comite,
        [
            ("Commune d'Ussel", "Le maire", R.PRESIDENT, "elu-ussel@demo.pvd.fr"),
            ("Commune de La Courtine", "Le maire", R.COPRESIDENT, ""),
            ("CC Haute-Corrèze Communauté", "Le président", R.MEMBRE, ""),
            ("Préfecture de la Corrèze", "Le sous-préfet d'Ussel", R.MEMBRE, ""),
            ("Banque des Territoires", "Direction régionale", R.INVITE, ""),
            ("Commune d'Ussel", "Cheffe de projet PVD", R.EN_PRESENCE, CDP_USSEL),
        ],
    )
    tenue = Reunion.objects.create(
        instance=comite,
        date=date(2026, 3, 12),
        heure_debut=time(14, 0),
        heure_fin=time(16, 30),
        lieu="Mairie d'Ussel, salle du conseil",
        statut=Reunion.Statut.TENUE,
        created_by=cdp,
    )
    ligne = (
        LigneFinancement.objects.filter(fiche__beneficiaire=comite.beneficiaire)
        .exclude(statut__in=[LigneFinancement.Statut.NOTIFIE, LigneFinancement.Statut.VERSE])
        .select_related("fiche")
        .order_by("fiche__reference", "pk")
        .first()
    )
    PointOrdreDuJour.objects.create(reunion=tenue, ordre=1, intitule="Avancement du plan d'action")
    PointOrdreDuJour.objects.create(
        reunion=tenue,
        ordre=2,
        intitule="Plan de financement",
        fiche=ligne.fiche if ligne else None,
    )
    for membre, statut in zip(
        membres,
        ["present", "present", "represente", "present", "excuse", "present"],
        strict=True,
    ):
        Presence.objects.create(
            reunion=tenue,
            membre=membre,
            statut=statut,
            represente_par="Le vice-président" if statut == "represente" else "",
        )
    decision = Decision.objects.create(
        reunion=tenue,
        type=Decision.Type.FINANCEMENT,
        texte="Le comité valide le financement de l'opération au montant présenté.",
    )
    if ligne is not None:
        ligne.montant = ligne.montant + Decimal("10000")
        ligne.statut = LigneFinancement.Statut.NOTIFIE
        ligne.date_decision = tenue.date
        ligne.save()
        decision.lignes.add(ligne)
        decision.fiches.add(ligne.fiche)
    if cdp is not None:
        Suite.objects.create(
            decision=decision,
            intitule="Transmettre la notification au financeur",
            responsable=cdp,
            echeance=date(2026, 4, 15),
            faite_le=date(2026, 4, 2),
        )
        Suite.objects.create(
            decision=decision,
            intitule="Mettre à jour la maquette financière de la convention",
            responsable=cdp,
            echeance=date(2026, 11, 30),
        )
    Reunion.objects.create(
        instance=comite,
        date=date(2027, 1, 21),
        heure_debut=time(14, 0),
        heure_fin=time(16, 0),
        lieu="Mairie de La Courtine",
        created_by=cdp,
    )


def seed_clct_indre(clct: Instance) -> None:
    R = Membre.Role
    _membres(
        clct,
        [
            ("Préfecture de l'Indre", "La préfète", R.PRESIDENT, PREFECTURE_36),
            ("Conseil départemental de l'Indre", "Le président", R.MEMBRE, ""),
            ("Banque des Territoires", "", R.INVITE, ""),
            ("Anah", "", R.INVITE, ""),
            ("Cerema", "", R.INVITE, ""),
        ],
    )
    Reunion.objects.create(
        instance=clct,
        date=date(2026, 5, 12),
        heure_debut=time(9, 30),
        heure_fin=time(12, 0),
        lieu="Préfecture de l'Indre, Châteauroux",
        statut=Reunion.Statut.TENUE,
    )
    Reunion.objects.create(
        instance=clct,
        date=date(2026, 12, 17),
        heure_debut=time(9, 30),
        heure_fin=time(12, 0),
        lieu="Préfecture de l'Indre, Châteauroux",
        lien_visio="https://webconf.numerique.gouv.fr/clct-indre",
    )
