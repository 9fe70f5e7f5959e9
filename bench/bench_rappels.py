"""Benchmark of the daily reminders sweep (``make bench-rappels``).

On the national bench data (``generate_bench_data``: 1,650 beneficiaries × 50 fiches), adds
once a chef de projet per beneficiary, a préfecture per département, a post per beneficiary
(a third vacant, the others filled with a contract ending within 90 days) and adhésion dates
spread over a year, and a measure frequency to every indicator (the four in turn), so that every
rule has work. Then times the sweep of one day from an empty reminders table in its two
phases, their queries counted apart:

(a) the sweep proper (``rappels.sweep.survey``: the rules, the sendings recorded, the
    reminders resolved), compared with a plain read of the same rows (the rules' source tables,
    the recipients' roles and users, the reminders written: one SELECT each on a raw cursor,
    the floor any sweep pays), for all the data and for a quarter of the beneficiaries;
(b) the delivery (``rappels.sweep.deliver``: immediate e-mails and digests, to memory): its
    cost per e-mail and e-mails per second.

Targets: the sweep proper ≤ 3× the plain read, in the same number of queries for a quarter as
for all the data; the whole daily sweep under 60 s (the delivery adds one « sent » mark per
e-mail or digest that goes out, nothing else per person).
"""

import os
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 60.0
TARGET_RATIO = 3.0
# The rows the sweep reads (the rules' sources, the recipients) and writes (the reminders).
PLAIN_READ = [
    "SELECT id, nom, departement_id, epci_id FROM communes_beneficiaire",
    "SELECT beneficiaire_id, commune_id, actif, date_signature FROM communes_membrebeneficiaire",
    "SELECT id, beneficiaire_id, type, statut, date_signature, date_fin "
    "FROM conventions_convention",
    "SELECT id, titre, beneficiaire_id, reference, avancement, maturite, date_fin_prevue, "
    "date_debut_prevue, date_debut_reelle, updated_at FROM actions_ficheaction",
    "SELECT id, libelle, frequence, fiche_id, created_at FROM actions_indicateur",
    "SELECT indicateur_id, date FROM actions_mesure",
    "SELECT id, intitule, etat, vacant_depuis FROM postes_poste",
    "SELECT poste_id, beneficiaire_id FROM postes_poste_beneficiaires",
    "SELECT id, poste_id, date_fin, date_fin_contrat FROM postes_occupation",
    "SELECT id, user_id, kind FROM pvd_role",
    "SELECT role_id, beneficiaire_id FROM pvd_role_beneficiaires",
    "SELECT role_id, departement_id FROM pvd_role_departements",
    "SELECT id, email, is_active FROM pvd_user",
    "SELECT * FROM rappels_rappel",
]


def setup() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    os.environ["EMAIL_URL"] = "memorymail://"
    import django

    django.setup()


def ensure_situations(today) -> None:
    from dateutil.relativedelta import relativedelta
    from django.db import transaction

    from actions.management.commands.generate_bench_data import bench_beneficiaires
    from communes.models import Departement, MembreBeneficiaire
    from postes.models import Occupation, Poste
    from pvd.models import Role, User

    beneficiaires = list(bench_beneficiaires().order_by("pk").values_list("pk", "departement_id"))
    set_frequencies()
    if User.objects.filter(email__startswith="bench-cdp-").exists():
        return
    with transaction.atomic():
        users = User.objects.bulk_create(
            [User(email=f"bench-cdp-{pk}@pvd.invalid") for pk, _ in beneficiaires]
        )
        roles = Role.objects.bulk_create([Role(user=u, kind=Role.Kind.CHEF_PROJET) for u in users])
        Role.beneficiaires.through.objects.bulk_create(
            [
                Role.beneficiaires.through(role_id=r.pk, beneficiaire_id=pk)
                for r, (pk, _) in zip(roles, beneficiaires, strict=True)
            ]
        )
        departements = list(
            Departement.objects.filter(region_id="XX").values_list("code", flat=True)
        )
        prefets = User.objects.bulk_create(
            [User(email=f"bench-pref-{code}@pvd.invalid") for code in departements]
        )
        proles = Role.objects.bulk_create(
            [Role(user=u, kind=Role.Kind.PREFECTURE) for u in prefets]
        )
        Role.departements.through.objects.bulk_create(
            [
                Role.departements.through(role_id=r.pk, departement_id=code)
                for r, code in zip(proles, departements, strict=True)
            ]
        )
        postes = Poste.objects.bulk_create(
            [
                Poste(
                    employeur_siren="999900000",
                    employeur_nom="Employeur d'essai",
                    date_creation=today - relativedelta(years=3),
                    etat=Poste.Etat.VACANT if i % 3 == 0 else Poste.Etat.POURVU,
                    vacant_depuis=today - relativedelta(months=2) - timedelta(days=i % 20)
                    if i % 3 == 0
                    else None,
                )
                for i in range(len(beneficiaires))
            ]
        )
        Poste.beneficiaires.through.objects.bulk_create(
            [
                Poste.beneficiaires.through(poste_id=p.pk, beneficiaire_id=pk)
                for p, (pk, _) in zip(postes, beneficiaires, strict=True)
            ]
        )
        Occupation.objects.bulk_create(
            [
                Occupation(
                    poste=p,
                    prenom="Camille",
                    nom="Essai",
                    email="camille.essai@pvd.invalid",
                    date_debut=today - relativedelta(years=2),
                    date_fin_contrat=today + timedelta(days=90 - i % 20),
                )
                for i, p in enumerate(postes)
                if i % 3
            ]
        )
        # Adhésions spread over a year ending 12 months ago: cadre reminders fall every day.
        for offset in range(0, 366):
            ids = [pk for i, (pk, _) in enumerate(beneficiaires) if i % 366 == offset]
            MembreBeneficiaire.objects.filter(beneficiaire_id__in=ids).update(
                date_signature=today - relativedelta(months=12) - timedelta(days=offset)
            )


def set_frequencies() -> None:
    """Every bench indicator gets a frequency, the four in turn (by id), once."""
    from django.db.models import F, IntegerField, Value
    from django.db.models.functions import Mod

    from actions.management.commands.generate_bench_data import bench_beneficiaires
    from actions.models import Indicateur

    indicateurs = Indicateur.objects.filter(fiche__beneficiaire__in=bench_beneficiaires())
    for rang, frequence in enumerate(Indicateur.Frequence.values):
        indicateurs.filter(frequence="").annotate(
            rang=Mod(F("pk"), Value(4), output_field=IntegerField())
        ).filter(rang=rang).update(frequence=frequence)


def main() -> None:
    setup()
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import Count
    from django.urls import reverse

    from actions.models import FicheAction
    from communes.models import Beneficiaire
    from rappels.models import Rappel

    call_command("generate_bench_data", yes_i_know=True)
    today = timezone_today()
    ensure_situations(today)
    # Autovacuum is off on the bench cluster: the planner gets the statistics of the rows the
    # situations just changed, as it would in production.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    # A worker loads the URLconf once (the rules' links): not a cost of the data, left out.
    reverse("rappels:list")

    load = os.getloadavg()[0]
    full = measure(today, None)
    again = measure(today, None, reset=False)
    by_rule = list(Rappel.objects.values("regle").annotate(n=Count("pk")).order_by("regle"))
    # Read while the reminders table holds the whole country's, as the sweep reads them.
    plain = plain_read(connection)
    quarter_ids = list(Beneficiaire.objects.order_by("pk").values_list("pk", flat=True))[::4]
    quarter = measure(today, quarter_ids)
    end_load = os.getloadavg()[0]

    print(f"Fiches actions : {FicheAction.objects.count()}")
    print("Notifications par règle : " + ", ".join(f"{r['regle']} {r['n']}" for r in by_rule))
    print(f"Charge de la machine : {load:.1f} au départ, {end_load:.1f} à la fin.")
    print(f"Lecture simple des mêmes lignes (meilleure de 3) : {plain:.2f} s.")
    print("(a) Balayage proprement dit (règles, enregistrement, résolution) :")
    for label, run in (("toutes les données", full), ("un quart", quarter)):
        ratio = run["survey"] / plain
        print(
            f"  {label} : {run['survey']:.2f} s ({run['survey_cpu']:.2f} s de calcul Python), "
            f"{run['survey_queries']} requêtes SQL — {run['report'].due} échéances, "
            f"{run['report'].recorded} notifications ; {ratio:.1f}× la lecture simple"
        )
    ratio = full["survey"] / plain
    same = full["survey_queries"] == quarter["survey_queries"]
    print(
        f"  Cible ≤ {TARGET_RATIO:.0f}× la lecture simple : "
        f"{'atteinte' if ratio <= TARGET_RATIO else 'MANQUÉE'} ; requêtes toutes les données / "
        f"un quart : {full['survey_queries']} / {quarter['survey_queries']} "
        f"({'identiques' if same else 'DIFFÉRENTES'})."
    )
    print("(b) Envoi des courriels :")
    for label, run in (("toutes les données", full), ("un quart", quarter)):
        sent = run["report"].emails + run["report"].digests
        per = run["deliver"] / sent * 1000 if sent else 0.0
        rate = sent / run["deliver"] if run["deliver"] else 0.0
        print(
            f"  {label} : {run['deliver']:.2f} s, {run['report'].emails} courriels et "
            f"{run['report'].digests} récapitulatifs, {run['deliver_queries']} requêtes SQL "
            f"({run['deliver_queries'] - sent} hors marques « envoyé ») ; "
            f"{per:.2f} ms par courriel, {rate:.0f} courriels/s"
        )
    total = full["survey"] + full["deliver"]
    print(
        f"Total du balayage du jour : {total:.1f} s, "
        f"{full['survey_queries'] + full['deliver_queries']} requêtes SQL "
        f"(cible {TARGET_S:.0f} s : {'atteinte' if total <= TARGET_S else 'MANQUÉE'})."
    )
    print(
        f"Second balayage du même jour : {again['survey'] + again['deliver']:.1f} s, "
        f"nouvelles notifications : {again['report'].recorded}, courriels : "
        f"{again['report'].emails}."
    )


def timezone_today():
    from django.utils import timezone

    return timezone.localdate()


def measure(today, beneficiaires, reset: bool = True) -> dict:
    """One sweep of the day (from an empty reminders table unless ``reset`` is False), its
    two phases timed and their queries counted apart."""
    from django.core import mail
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from rappels.models import Rappel, Recapitulatif
    from rappels.sweep import Report, deliver, survey

    if reset:
        Rappel.objects.all().delete()
        Recapitulatif.objects.all().delete()
        # Autovacuum is off on the bench cluster: the rows just deleted would stay in the
        # tables and their indexes, which a production database cleans up.
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE rappels_rappel, rappels_recapitulatif")
    mail.outbox = []
    report = Report()
    with CaptureQueriesContext(connection) as first:
        start, cpu = time.perf_counter(), time.process_time()
        survey(today, report, beneficiaires)
        survey_s, survey_cpu = time.perf_counter() - start, time.process_time() - cpu
    with CaptureQueriesContext(connection) as second:
        start = time.perf_counter()
        deliver(today, report)
        deliver_s = time.perf_counter() - start
    return {
        "report": report,
        "survey": survey_s,
        "survey_cpu": survey_cpu,
        "survey_queries": len(first),
        "deliver": deliver_s,
        "deliver_queries": len(second),
    }


def plain_read(connection, runs: int = 3) -> float:
    """The best of ``runs`` plain reads of the rows the sweep reads and writes."""
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        with connection.cursor() as cursor:
            for sql in PLAIN_READ:
                cursor.execute(sql)
                cursor.fetchall()
        timings.append(time.perf_counter() - start)
    return min(timings)


if __name__ == "__main__":
    main()
