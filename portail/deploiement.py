"""The national rollout: the programme's people brought in from a spreadsheet, then invited.

One row per person and role: a chef de projet with their post and its beneficiaries, a
préfecture referent for a département, an élu for a commune of a beneficiary. The file is
read through the project's reader (CSV or XLSX, size and type checked, formulas refused:
``conventions.importers.adhesions.read_rows``), then every row goes through the forms of the
one-by-one pages — ``UserForm`` for a new account, ``RoleForm`` for the role and its
perimeter, ``PosteForm`` and ``OccupationForm`` for a chef de projet's post — so the same
bounds and the same rules apply, and national staff's rights (``policy.may_roll_out``).

:func:`deployer` runs the whole file in one transaction. As a **simulation** it is always
rolled back: the report says who would be created, matched (an existing account, by e-mail)
or refused, and why. **Applied**, it is committed only if no row is refused: one bad row
refuses the whole file, nothing is written.

Each person gets an :class:`~pvd.models.Invitation`. The invitations sweep
(:func:`envoyer_invitations`, on the beat every minute and right after an application) sends
at most ``INVITATIONS_PAR_MINUTE`` of them; each one is claimed with a conditional update of
« invitation envoyée le » before it is sent, so that two sweeps never send it twice; a failed
sending is retried by the next sweeps, ``INVITATIONS_TENTATIVES`` times at most.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from allauth.account.forms import default_token_generator
from allauth.account.utils import user_pk_to_url_str
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from communes.importers.report import fmt
from communes.models import Beneficiaire, MembreBeneficiaire
from conventions.importers.adhesions import FichierRefuse, read_rows
from postes.forms import OccupationForm, PosteForm
from postes.models import Occupation, Poste
from pvd import policy
from pvd.french import normalize
from pvd.jobs import JobRefused, Result
from pvd.models import Deploiement, Invitation, Role, User

from .forms import RoleForm, UserForm

logger = logging.getLogger(__name__)

HEADER = [
    "Type",
    "Adresse électronique",
    "Prénom",
    "Nom",
    "Fonction",
    "Département",
    "Communes",
    "SIREN employeur",
    "Création du poste",
    "Prise de poste",
]
COLUMNS = {normalize(name): name for name in HEADER}
KINDS = {
    "chef de projet": Role.Kind.CHEF_PROJET,
    "prefecture": Role.Kind.PREFECTURE,
    "elu": Role.Kind.ELU,
}
CREE, RETROUVE, DEJA, REFUSE = "créé", "retrouvé", "déjà en place", "refusé"


@dataclass
class Ligne:
    numero: int
    email: str
    issue: str = ""
    detail: str = ""


@dataclass
class Rapport:
    lignes: list[Ligne] = field(default_factory=list)
    erreur: str = ""  # the file itself is refused

    def count(self, issue: str) -> int:
        return sum(1 for ligne in self.lignes if ligne.issue == issue)

    @property
    def refuse(self) -> bool:
        return bool(self.erreur) or self.count(REFUSE) > 0

    def render(self) -> str:
        if self.erreur:
            return f"Fichier refusé : {self.erreur}"
        lines = [
            f"Lignes lues : {fmt(len(self.lignes))}",
            f"Comptes créés : {fmt(self.count(CREE))}",
            f"Comptes existants retrouvés par adresse électronique : {fmt(self.count(RETROUVE))}",
            f"Déjà en place (rien à faire) : {fmt(self.count(DEJA))}",
            f"Lignes refusées : {fmt(self.count(REFUSE))}",
        ]
        if self.refuse:
            lines.append(
                "Le fichier est refusé : aucune ligne n'est enregistrée tant qu'une ligne est "
                "refusée. Corrigez ces lignes et déposez le fichier à nouveau."
            )
        lines.append("")
        lines += [
            f"Ligne {ligne.numero} – {ligne.email or 'sans adresse'} : {ligne.issue}"
            + (f" ({ligne.detail})" if ligne.detail else "")
            for ligne in self.lignes
        ]
        return "\n".join(lines)


# Reading -------------------------------------------------------------------------------------


def lire(upload) -> list[tuple[int, dict[str, str]]]:
    """(line number, {column: text}) of every non-empty row; FichierRefuse otherwise."""
    rows = read_rows(upload)
    if not rows:
        raise FichierRefuse("Le fichier est vide : il manque la ligne d'en-tête.")
    _, header = rows[0]
    names = [COLUMNS.get(normalize(str(cell or ""))) for cell in header]
    missing = [name for name in HEADER[:4] if name not in names]
    if missing:
        raise FichierRefuse(
            "Colonnes obligatoires absentes de l'en-tête : "
            + ", ".join(f"« {name} »" for name in missing)
            + ". Partez du modèle à télécharger sur cette page."
        )
    result = []
    for numero, cells in rows[1:]:
        values = {
            name: ("" if cell is None else str(cell)).strip()
            for name, cell in zip(names, cells, strict=False)
            if name
        }
        if any(values.values()):
            result.append((numero, values))
    if not result:
        raise FichierRefuse("Le fichier n'a aucune ligne après l'en-tête.")
    return result


# Planning and applying: each row through the one-by-one pages' forms ---------------------------


def _messages(form) -> str:
    errors = []
    for name, messages in form.errors.items():
        label = form.fields[name].label if name in form.fields else ""
        errors += [f"{label} : {m}" if label else m for m in messages]
    return " ; ".join(errors)


def _date(text: str) -> str:
    """The date as the forms read it: JJ/MM/AAAA, or the ISO date an XLSX cell gives."""
    return text[:10] if len(text) >= 10 and text[4] == "-" else text


def _compte(values: dict, ligne: Ligne) -> User:
    """The existing account with this address, or a new one through the access page's form."""
    user = User.objects.filter(email__iexact=ligne.email).first()
    if user is not None:
        if not user.is_active:
            raise ValidationError(
                "le compte de cette adresse est désactivé : réactivez-le sur la page « Accès »"
            )
        ligne.issue = RETROUVE
        return user
    form = UserForm(
        data={
            "email": ligne.email,
            "first_name": values.get("Prénom", ""),
            "last_name": values.get("Nom", ""),
            "is_active": True,
        }
    )
    if not form.is_valid():
        raise ValidationError(_messages(form))
    form.instance.set_unusable_password()
    ligne.issue = CREE
    return form.save()


def _role(user: User, kind: str, values: dict, **perimeter) -> Role:
    data = {"kind": kind, "fonction": values.get("Fonction", ""), **perimeter}
    form = RoleForm(data=data, instance=Role(user=user))
    if not form.is_valid():
        raise ValidationError(_messages(form))
    return form.save()


def _beneficiaires(codes: list[str]) -> list[Beneficiaire]:
    found = {
        m.commune_id: m.beneficiaire
        for m in MembreBeneficiaire.objects.filter(
            commune_id__in=codes, actif=True, beneficiaire__statut__in=Beneficiaire.STATUTS_ACTIFS
        ).select_related("beneficiaire")
    }
    missing = [code for code in codes if code not in found]
    if missing:
        raise ValidationError(f"aucun bénéficiaire PVD actif ne comprend : {', '.join(missing)}")
    return list({b.pk: b for b in found.values()}.values())


def _chef_de_projet(values: dict, ligne: Ligne, by: User) -> None:
    codes = values.get("Communes", "").replace(",", " ").replace(";", " ").split()
    if not codes:
        raise ValidationError("indiquez dans « Communes » une commune de chaque bénéficiaire")
    beneficiaires = _beneficiaires([c.upper() for c in codes])
    if Occupation.objects.filter(
        email__iexact=ligne.email,
        date_fin__isnull=True,
        poste__beneficiaires__in=beneficiaires,
    ).exists():
        ligne.issue = DEJA
        return
    siren = values.get("SIREN employeur", "")
    poste = (
        Poste.objects.filter(
            beneficiaires__in=beneficiaires,
            employeur_siren=siren,
            etat__in=[Poste.Etat.A_CREER, *Poste.ETATS_A_POURVOIR],
        )
        .order_by("pk")
        .first()
    )
    if poste is None:
        form = PosteForm(
            data={
                "beneficiaires": [b.pk for b in beneficiaires],
                "intitule": "Chef de projet PVD",
                "employeur_siren": siren,
                "type_contrat": Poste.TypeContrat.CONTRAT_DE_PROJET,
                "etp": "1",
                "date_creation": _date(values.get("Création du poste", "")),
            },
            user=by,
        )
        if not form.is_valid():
            raise ValidationError(_messages(form))
        poste = form.save()
    user = _compte(values, ligne)
    occupation_form = OccupationForm(
        data={
            "prenom": values.get("Prénom", ""),
            "nom": values.get("Nom", ""),
            "email": ligne.email,
            "date_debut": _date(values.get("Prise de poste", "")),
        },
        poste=poste,
    )
    if not occupation_form.is_valid():
        raise ValidationError(_messages(occupation_form))
    occupation = occupation_form.save(by=by)
    if occupation is None:
        raise ValidationError(_messages(occupation_form))
    role = _role(
        user,
        Role.Kind.CHEF_PROJET,
        {"Fonction": values.get("Fonction") or poste.intitule},
        beneficiaire_codes=" ".join(codes),
    )
    role.organisation = poste.employeur_nom[:150]
    role.save(update_fields=["organisation"])
    occupation.role = role
    occupation.save(update_fields=["role"])


def _prefecture(values: dict, ligne: Ligne) -> None:
    code = values.get("Département", "").upper()
    if not code:
        raise ValidationError("indiquez le département de la préfecture")
    user = User.objects.filter(email__iexact=ligne.email).first()
    if user and user.roles.filter(kind=Role.Kind.PREFECTURE, departements=code).exists():
        ligne.issue = DEJA
        return
    _role(_compte(values, ligne), Role.Kind.PREFECTURE, values, departements=[code])


def _elu(values: dict, ligne: Ligne) -> None:
    codes = values.get("Communes", "").split()
    if len(codes) != 1:
        raise ValidationError("un élu représente une commune : indiquez son code INSEE")
    code = codes[0].upper()
    _beneficiaires([code])  # an élu of the programme: the commune of a beneficiary
    user = User.objects.filter(email__iexact=ligne.email).first()
    if user and user.roles.filter(kind=Role.Kind.ELU, communes=code).exists():
        ligne.issue = DEJA
        return
    _role(_compte(values, ligne), Role.Kind.ELU, values, commune_codes=code)


def _ligne(numero: int, values: dict, by: User, deploiement: Deploiement | None) -> Ligne:
    ligne = Ligne(numero, values.get("Adresse électronique", "").lower())
    kind = KINDS.get(normalize(values.get("Type", "")))
    try:
        with transaction.atomic():
            if kind is None:
                raise ValidationError(
                    f"type « {values.get('Type', '')} » inconnu : chef de projet, préfecture ou élu"
                )
            if not ligne.email:
                raise ValidationError("l'adresse électronique est obligatoire")
            if kind == Role.Kind.CHEF_PROJET:
                _chef_de_projet(values, ligne, by)
            elif kind == Role.Kind.PREFECTURE:
                _prefecture(values, ligne)
            else:
                _elu(values, ligne)
            if ligne.issue in (CREE, RETROUVE):
                user = User.objects.get(email__iexact=ligne.email)
                Invitation.objects.get_or_create(user=user, defaults={"deploiement": deploiement})
    except ValidationError as error:
        ligne.issue, ligne.detail = REFUSE, " ; ".join(error.messages)
    return ligne


def deployer(
    rows, by: User | None, *, simuler: bool, deploiement: Deploiement | None = None
) -> Rapport:
    """Run every row in one transaction: rolled back for a simulation or a refused file."""
    rapport = Rapport()
    with transaction.atomic():
        seen: dict[tuple[str, str], int] = {}
        for numero, values in rows:
            email = values.get("Adresse électronique", "").lower()
            key = (normalize(values.get("Type", "")), email)
            if key in seen:
                detail = f"même personne et même type que la ligne {seen[key]}"
                ligne = Ligne(numero, email, REFUSE, detail)
            else:
                seen[key] = numero
                ligne = _ligne(numero, values, by, deploiement)
            rapport.lignes.append(ligne)
        if simuler or rapport.refuse:
            transaction.set_rollback(True)
    return rapport


APPLICATION_REFUSEE = (
    "Le tableau est refusé : la situation a changé depuis la simulation et une ligne ne passe "
    "plus. Rien n'a été enregistré ; corrigez le tableau et déposez-le à nouveau."
)
FAILED = "Le déploiement a échoué ({detail}). Rien n'a été enregistré."


def stale_reason(simulation: Deploiement, application: Deploiement | None = None) -> str:
    """Why a simulation cannot be applied, or ''; ``application`` is the row applying it."""
    if (
        simulation.mode != Deploiement.Mode.SIMULATION
        or simulation.statut != Deploiement.Statut.PRET
        or simulation.refuse
    ):
        return "Seule une simulation terminée, sans ligne refusée, peut être appliquée."
    others = Deploiement.objects.exclude(pk=application.pk if application else None)
    if others.filter(simulation=simulation).exists():
        return DEJA_APPLIQUE
    return ""


DEJA_APPLIQUE = "Ce tableau est déjà appliqué, ou en cours d'application."


def work(job: Deploiement) -> Result:
    """The job: simulate the stored spreadsheet, or apply the confirmed simulation's."""
    simulation = job.mode == Deploiement.Mode.SIMULATION
    source = job if simulation else job.simulation
    if job.requested_by is None or not policy.may_roll_out(job.requested_by):
        raise JobRefused("Seule l'équipe nationale déploie le programme à partir d'un tableau.")
    if not simulation:
        reason = stale_reason(source, job)
        if reason:
            raise JobRefused(reason)
    with source.source.open("rb") as stored:
        try:
            rows = lire(stored)
        except FichierRefuse as error:
            rapport = Rapport(erreur=" ".join(error.messages))
        else:
            rapport = deployer(
                rows, job.requested_by, simuler=simulation, deploiement=None if simulation else job
            )
    text = rapport.render()
    if not simulation:
        if rapport.refuse:
            raise JobRefused(f"{APPLICATION_REFUSEE}\n\n{text}")
        queue_invitations()  # the rows are committed: the first batch goes now
    title = (
        "Simulation : rien n'a été enregistré. Voici ce que l'application ferait."
        if simulation
        else "Tableau appliqué. Les invitations partent par lots."
    )
    text = f"{title}\n\n{text}"
    return ContentFile(text.encode()), {"rapport": text, "refuse": rapport.refuse}


def run(pk: int) -> bool:
    return Deploiement.run(pk, work, failed=FAILED, related=["simulation", "requested_by"])


# Invitations --------------------------------------------------------------------------------


def queue_invitations() -> None:
    from .tasks import envoyer_invitations as task

    try:
        task.delay()
    except Exception:  # the beat sends them within a minute
        logger.exception("Could not queue the invitations sweep")


def lien(user: User) -> str:
    if user.has_usable_password():
        path = reverse("account_login")
    else:
        path = reverse(
            "account_reset_password_from_key",
            kwargs={
                "uidb36": user_pk_to_url_str(user),
                "key": default_token_generator.make_token(user),
            },
        )
    return settings.PVD_BASE_URL.rstrip("/") + path


def envoyer(invitation: Invitation) -> None:
    user = invitation.user
    context = {
        "user": user,
        "roles": [str(role) for role in user.roles.all()],
        "link": lien(user),
        "new_account": not user.has_usable_password(),
        "contact": settings.CONTACT_EMAIL,
    }
    send_mail(
        subject="Votre accès au portail Petites villes de demain",
        message=render_to_string("portail/email/invitation.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[user.email],
    )


def envoyer_invitations(limit: int | None = None) -> int:
    """Send at most ``limit`` due invitations, each claimed first: never one twice."""
    limit = settings.INVITATIONS_PAR_MINUTE if limit is None else limit
    due = list(
        Invitation.objects.a_envoyer(settings.INVITATIONS_TENTATIVES)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    sent = 0
    for pk in due:
        claimed = Invitation.objects.filter(pk=pk, envoyee_le__isnull=True).update(
            envoyee_le=timezone.now(), envois=F("envois") + 1
        )
        if not claimed:
            continue  # another sweep took it
        invitation = Invitation.objects.select_related("user").get(pk=pk)
        try:
            envoyer(invitation)
        except Exception as error:  # SMTP down, refused address…: retried by the next sweeps
            logger.exception("Invitation %s could not be sent", pk)
            Invitation.objects.filter(pk=pk).update(
                envoyee_le=None,
                envois=F("envois") - 1,
                tentatives=F("tentatives") + 1,
                erreur=f"{type(error).__name__} : {error}"[:300],
            )
            continue
        sent += 1
    return sent


def renvoyer(invitation_pk: int) -> bool:
    """Staff resend: the invitation is due again (the sweep claims it like any other)."""
    changed = Invitation.objects.filter(pk=invitation_pk).update(
        envoyee_le=None, tentatives=0, erreur=""
    )
    if changed:
        transaction.on_commit(queue_invitations)
    return bool(changed)
