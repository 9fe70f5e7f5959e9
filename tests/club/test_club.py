"""The Club Petites villes de demain: search across towns, who to call, towns like mine."""

import csv
import io
from decimal import Decimal
from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command
from django.urls import reverse

from actions.models import Axe, FicheAction, Financeur, LigneFinancement, ensure_axes
from club import search
from club.models import MESSAGES_PAR_JOUR, MessageClub
from club.views import RechercheView
from communes.models import Beneficiaire
from pvd import policy
from pvd.models import Role, User
from tests.conftest import count_queries
from tests.factories import user_with_role

pytestmark = pytest.mark.django_db

SCRIPT = "<img src=x onerror=alert(1)>"


def fiche(beneficiaire, reference: str, titre: str, axe: int = 4, **fields) -> FicheAction:
    ensure_axes(beneficiaire)
    return FicheAction.objects.create(
        beneficiaire=beneficiaire,
        axe=beneficiaire.axes.get(numero=axe),
        reference=reference,
        titre=titre,
        **fields,
    )


@pytest.fixture
def cdp_le_blanc(le_blanc):
    user = user_with_role("cdp-le-blanc@test.pvd.fr", Role.Kind.CHEF_PROJET)
    user.roles.get().beneficiaires.set([le_blanc])
    return user


@pytest.fixture
def plans(ussel_la_courtine, le_blanc, cdp_le_blanc):
    partagee = fiche(
        le_blanc,
        "4.5",
        "Rénovations des façades de la Grande Rue",
        description=f"Aide au ravalement {SCRIPT} des façades commerçantes.",
        maturite=FicheAction.Maturite.LIVREE,
    )
    secrete = fiche(
        le_blanc,
        "4.6",
        "Rénovation des façades du faubourg",
        description="Négociation en cours, à ne pas diffuser.",
        partage_club=False,
    )
    LigneFinancement.objects.create(
        fiche=secrete, financeur=Financeur.objects.get(nom="Anah"), montant=Decimal("1000")
    )
    ussel = fiche(ussel_la_courtine, "4.3", "Campagne de renovation des devantures")
    return {"partagee": partagee, "secrete": secrete, "ussel": ussel}


def club(client, **params):
    return client.get(reverse("club:recherche"), params)


def titles(response) -> list[str]:
    return [f.titre for f in response.context["object_list"]]


# Search -------------------------------------------------------------------------------------


def test_french_search_ignores_accents_and_plurals(client_for, cdp_ussel, plans):
    response = club(client_for(cdp_ussel), q="rénovation")
    assert set(titles(response)) == {
        "Rénovations des façades de la Grande Rue",
        "Campagne de renovation des devantures",
    }
    html = response.content.decode()
    assert "<mark>Rénovations</mark>" in html
    assert "Le Blanc" in html


def test_a_typo_is_corrected_by_the_lexicon_of_the_fiches_words(client_for, cdp_ussel, plans):
    response = club(client_for(cdp_ussel), q="rénovaton")
    assert "Rénovations des façades de la Grande Rue" in titles(response)
    assert "les mots les plus proches" in response.content.decode()
    # A town's name, misspelt: its words are in the lexicon too.
    assert "Rénovations des façades de la Grande Rue" in titles(
        club(client_for(cdp_ussel), q="Le Blancc")
    )


def test_the_lexicon_follows_the_fiches_written(client_for, cdp_ussel, plans, le_blanc):
    client = client_for(cdp_ussel)
    assert titles(club(client, q="belvedere")) == []
    fiche(le_blanc, "4.9", "Aménagement du belvédère")
    assert titles(club(client, q="belvedre")) == ["Aménagement du belvédère"]
    FicheAction.objects.filter(reference="4.9").update(titre="Passerelle piétonne")
    assert titles(club(client, q="paserelle")) == ["Passerelle piétonne"]


def test_plain_words_never_found_together_find_either(client_for, cdp_ussel, plans):
    found = titles(club(client_for(cdp_ussel), q="façades devantures"))
    assert set(found) == {
        "Rénovations des façades de la Grande Rue",
        "Campagne de renovation des devantures",
    }


def test_a_correction_from_a_fiche_not_shared_is_never_shown(client_for, cdp_ussel, plans):
    """« faubourg » is a word of Le Blanc's private fiche only: its correction finds nothing
    Ussel may read, so the page says nothing of it."""
    response = club(client_for(cdp_ussel), q="faubourh")
    assert titles(response) == []
    html = response.content.decode()
    assert "faubourg" not in html and "les plus proches" not in html


def test_town_and_funders_are_searched(client_for, cdp_ussel, plans):
    assert titles(club(client_for(cdp_ussel), q="Le Blanc façades")) == [
        "Rénovations des façades de la Grande Rue"
    ]
    LigneFinancement.objects.create(
        fiche=plans["partagee"],
        financeur=Financeur.objects.get(nom="Banque des Territoires"),
        montant=Decimal("500"),
    )
    assert titles(club(client_for(cdp_ussel), q="banque des territoires")) == [
        "Rénovations des façades de la Grande Rue"
    ]


def test_the_index_follows_every_write(client_for, cdp_ussel, plans, le_blanc):
    """The generated column and its triggers: a save, a bulk update, a renamed axis or town."""
    client = client_for(cdp_ussel)
    FicheAction.objects.filter(pk=plans["partagee"].pk).update(titre="Halle de marché couverte")
    assert titles(club(client, q="halle")) == ["Halle de marché couverte"]
    Axe.objects.filter(beneficiaire=le_blanc, numero=4).update(nom="Patrimoine remarquable")
    assert titles(club(client, q="patrimoine remarquable")) == ["Halle de marché couverte"]
    Beneficiaire.objects.filter(pk=le_blanc.pk).update(nom="Ville-Blanche")
    assert titles(club(client, q="ville-blanche halle")) == ["Halle de marché couverte"]
    # Financing lines written in bulk (the Excel import), then deleted.
    fonds_vert = Financeur.objects.get(nom="Fonds vert")
    LigneFinancement.objects.bulk_create(
        [LigneFinancement(fiche=plans["partagee"], financeur=fonds_vert, montant=Decimal("1"))]
    )
    assert titles(club(client, q="fonds vert")) == ["Halle de marché couverte"]
    LigneFinancement.objects.filter(financeur=fonds_vert).delete()
    assert titles(club(client, q="fonds vert")) == []


@pytest.mark.parametrize("q", ['"façades', "-", "OR OR", "!(&|", "a' OR 1=1 --", "x:* " * 100])
def test_malformed_queries_never_error(client_for, cdp_ussel, plans, q):
    response = club(client_for(cdp_ussel), q=q)
    assert response.status_code == 200


def test_markup_in_a_description_is_shown_as_text(client_for, cdp_ussel, plans):
    html = club(client_for(cdp_ussel), q="ravalement").content.decode()
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<mark>ravalement</mark>" in html


def test_surligner_escapes_then_marks():
    marked = f"<b>{search.START}x<i>{search.STOP} & {search.STOP}"
    assert str(search.surligner(marked)) == "&lt;b&gt;<mark>x&lt;i&gt;</mark> &amp; "


def test_facets_narrow_the_results(client_for, cdp_ussel, plans):
    client = client_for(cdp_ussel)
    assert titles(club(client, q="façades", departement="36", livree="oui")) == [
        "Rénovations des façades de la Grande Rue"
    ]
    assert titles(club(client, departement="19")) == ["Campagne de renovation des devantures"]
    assert titles(club(client, livree="non", departement="36")) == []
    assert titles(club(client, population="5000-10000", departement="36")) == [
        "Rénovations des façades de la Grande Rue"
    ]
    response = club(client, maturite="nimporte")
    assert (
        response.status_code == 200 and "Sélectionnez un choix valide" in response.content.decode()
    )


def test_the_kept_filter_options_follow_a_funder_saved_and_are_escaped(
    client_for, cdp_ussel, plans
):
    """The régions, départements and funders' options are read once per process and kept
    under a version in the cache: the next page reads none of them; a funder saved renews
    them, its name escaped."""
    client = client_for(cdp_ussel)
    club(client)
    kept = count_queries(lambda: club(client))
    html = club(client).content.decode()
    assert '<option value="36">Indre (36)</option>' in html
    funder = Financeur.objects.create(nom="<b>Fonds</b> & Cie")
    assert count_queries(lambda: club(client)) == kept + 1  # the lists, read again once
    html = club(client).content.decode()
    assert f'<option value="{funder.pk}">&lt;b&gt;Fonds&lt;/b&gt; &amp; Cie</option>' in html
    assert "<b>Fonds</b>" not in html
    funder.nom = "Fonds renommé"
    funder.save()
    html = club(client, financeur=funder.pk).content.decode()
    assert f'<option value="{funder.pk}" selected>Fonds renommé</option>' in html
    funder.delete()
    assert "Fonds renommé" not in club(client).content.decode()


def test_the_filter_form_points_to_its_help_and_errors(client_for, cdp_ussel, plans):
    html = club(client_for(cdp_ussel), departement="zz").content.decode()
    assert 'id="id_q_helptext"' in html and 'aria-describedby="id_q_helptext"' in html
    assert 'aria-describedby="id_departement_error" aria-invalid="true"' in html
    assert '<div id="id_departement_error">' in html


# The read rule ------------------------------------------------------------------------------


def test_a_fiche_not_shared_never_appears_outside_its_perimeter(client_for, cdp_ussel, plans):
    client = client_for(cdp_ussel)
    anah = Financeur.objects.get(nom="Anah")
    assert "Rénovation des façades du faubourg" not in titles(club(client, q="façades"))
    assert club(client, q="faubourg").context["page_obj"].paginator.count == 0
    assert club(client, financeur=anah.pk).context["page_obj"].paginator.count == 0
    assert club(client).context["page_obj"].paginator.count == 2
    export = client.get(reverse("club:export"), {"q": "façades", "format": "csv"})
    text = b"".join(export.streaming_content).decode("utf-8-sig")
    assert "faubourg" not in text and "Grande Rue" in text
    assert client.get(reverse("club:fiche", args=[plans["secrete"].pk])).status_code == 404
    assert client.get(reverse("club:fiche", args=[plans["partagee"].pk])).status_code == 200


def test_its_own_perimeter_still_reads_a_fiche_not_shared(client_for, prefecture_36, plans):
    response = club(client_for(prefecture_36), q="faubourg")
    assert titles(response) == ["Rénovation des façades du faubourg"]
    assert "non partagée avec le Club" in response.content.decode()


def test_without_a_role_the_club_is_403(client_for, sans_role, plans):
    client = client_for(sans_role)
    for name, args in [
        ("club:recherche", []),
        ("club:annuaire", []),
        ("club:export", []),
        ("club:fiche", [plans["partagee"].pk]),
    ]:
        assert client.get(reverse(name, args=args)).status_code == 403


def test_the_chef_de_projet_and_the_prefecture_decide_sharing(
    client_for, prefecture_36, cdp_ussel, elu_ussel, plans
):
    url = reverse("club:partage", args=[plans["partagee"].pk])
    assert client_for(cdp_ussel).post(url, {"partage_club": ""}).status_code == 404
    plans["partagee"].refresh_from_db()
    assert plans["partagee"].partage_club
    client_for(prefecture_36).post(url, {"partage_club": ""})
    plans["partagee"].refresh_from_db()
    assert not plans["partagee"].partage_club
    ussel_url = reverse("club:partage", args=[plans["ussel"].pk])
    assert client_for(elu_ussel).post(ussel_url, {"partage_club": ""}).status_code == 403
    plans["ussel"].refresh_from_db()
    assert plans["ussel"].partage_club


def test_the_export_in_excel(client_for, cdp_ussel, plans):
    response = client_for(cdp_ussel).get(reverse("club:export"), {"format": "xlsx"})
    assert response.status_code == 200
    assert response["Content-Disposition"].endswith('.xlsx"')


# Speed ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params", [{"q": "façades"}, {}, {"q": "facdes"}, {"q": "façades", "departement": "36"}]
)
def test_the_number_of_queries_does_not_grow_with_the_results(
    client_for, cdp_ussel, plans, le_blanc, monkeypatch, params
):
    """Two fiches, then 17 beyond a cap of 5 (the page ranks and counts 5): the same queries."""
    monkeypatch.setattr(search, "PLAFOND", 5)
    client = client_for(cdp_ussel)
    club(client)  # the session and the perimeter, once
    small = count_queries(lambda: club(client, **params))
    assert not club(client, **params).context["plafond_atteint"]
    for i in range(15):
        created = fiche(le_blanc, f"9.{i}", f"Rénovation des façades, tranche {i}")
        LigneFinancement.objects.create(
            fiche=created, financeur=Financeur.objects.get(nom="Région"), montant=Decimal("10")
        )
    large = count_queries(lambda: club(client, **params))
    assert club(client, **params).context["plafond_atteint"]
    assert large == small


def test_beyond_the_cap_the_page_says_more_than_and_pages_the_cap(
    client_for, cdp_ussel, plans, le_blanc, monkeypatch
):
    monkeypatch.setattr(search, "PLAFOND", 4)
    for i in range(6):
        fiche(le_blanc, f"9.{i}", f"Rénovation des façades, tranche {i}")
    client = client_for(cdp_ussel)
    response = club(client, q="façades")
    paginator = response.context["page_obj"].paginator
    assert paginator.count == 4 and len(titles(response)) == 4
    html = " ".join(response.content.decode().split())
    assert "Plus de 4 fiches action" in html
    assert "Les 4 premières trouvées sont classées ici par pertinence" in html
    # Without words, the newest first; the export holds them all.
    assert titles(club(client))[0] == "Rénovation des façades, tranche 5"
    assert "Les 4 plus récentes sont listées ici" in club(client).content.decode()
    export = client.get(reverse("club:export"), {"q": "façades", "format": "csv"})
    text = b"".join(export.streaming_content).decode("utf-8-sig")
    assert text.count("tranche") == 6


def test_pages_of_a_capped_search_neither_repeat_nor_skip(
    client_for, cdp_ussel, plans, le_blanc, monkeypatch
):
    monkeypatch.setattr(search, "PLAFOND", 7)
    monkeypatch.setattr(RechercheView, "paginate_by", 3)
    for i in range(9):
        fiche(le_blanc, f"9.{i}", f"Rénovation des façades, tranche {i}")
    client = client_for(cdp_ussel)
    pages = [titles(club(client, q="façades", page=n)) for n in (1, 2, 3)]
    assert [len(page) for page in pages] == [3, 3, 1]
    seen = [titre for page in pages for titre in page]
    assert len(set(seen)) == 7
    assert titles(club(client, q="façades", page=99)) == pages[2]  # the last page


def test_the_prepared_search_follows_the_readers_perimeter_and_facets(
    client_for, cdp_ussel, cdp_le_blanc, plans, le_blanc, ussel_la_courtine
):
    """The candidates' query is compiled once per process for a perimeter and the facets
    chosen, their values slots: a second reader of the same perimeter and another value of a
    facet compile nothing more; a perimeter changed reads with its own at once."""
    client = client_for(cdp_ussel)
    assert titles(club(client, q="faubourg")) == []
    compiled = len(search.PREPAREES)
    twin = user_with_role("cdp-ussel-bis@test.pvd.fr", Role.Kind.CHEF_PROJET)
    twin.roles.get().beneficiaires.set([ussel_la_courtine])
    assert policy.perimeter_key(twin) == policy.perimeter_key(cdp_ussel)
    assert titles(club(client_for(twin), q="faubourg")) == []
    assert len(search.PREPAREES) == compiled
    assert titles(club(client, q="façades", departement="36")) == [
        "Rénovations des façades de la Grande Rue"
    ]
    assert len(search.PREPAREES) == compiled + 1
    assert titles(club(client, q="devantures", departement="19")) == [
        "Campagne de renovation des devantures"
    ]
    assert titles(club(client, q="façades", departement="19")) == []
    assert len(search.PREPAREES) == compiled + 1
    # Le Blanc joins Ussel's chef de projet's perimeter: its private fiche, at once.
    cdp_ussel.roles.get().beneficiaires.add(le_blanc)
    response = club(client_for(User.objects.get(pk=cdp_ussel.pk)), q="faubourg")
    assert titles(response) == ["Rénovation des façades du faubourg"]
    assert titles(club(client_for(twin), q="faubourg")) == []


# The SQLite fallback ----------------------------------------------------------------------------


def test_without_postgresql_every_word_is_searched_with_icontains(
    client_for, cdp_ussel, plans, monkeypatch
):
    monkeypatch.setattr(search, "full_text", lambda: False)
    client = client_for(cdp_ussel)
    assert titles(club(client, q="façades grande")) == ["Rénovations des façades de la Grande Rue"]
    assert titles(club(client, q="faubourg")) == []
    html = club(client, q="ravalement").content.decode()
    assert "<img src=x" not in html and "&lt;img src=x" in html
    assert titles(club(client)) == [  # the visible fiches, newest first
        "Campagne de renovation des devantures",
        "Rénovations des façades de la Grande Rue",
    ]


# Who to call ------------------------------------------------------------------------------------


def test_a_result_names_its_chef_de_projet_without_their_address(
    client_for, cdp_ussel, cdp_le_blanc, plans
):
    html = club(client_for(cdp_ussel), q="Grande Rue").content.decode()
    assert cdp_le_blanc.get_full_name() in html
    contact = reverse("club:contact", args=[cdp_le_blanc.pk])
    assert f'{contact}?fiche={plans["partagee"].pk}"' in html  # never « 1 234 »
    assert cdp_le_blanc.email not in html


def test_contacter_sends_an_email_through_the_portal(client_for, cdp_ussel, cdp_le_blanc, plans):
    url = reverse("club:contact", args=[cdp_le_blanc.pk]) + f"?fiche={plans['partagee'].pk}"
    client = client_for(cdp_ussel)
    page = client.get(url).content.decode()
    assert cdp_le_blanc.email not in page
    response = client.post(url, {"objet": "Vos façades\r\nBcc: x@y.z", "texte": "Bonjour !"})
    assert response.status_code in (200, 302)
    if response.status_code == 200:  # a multi-line subject is refused by the field's bound
        assert MessageClub.objects.count() == 0
        response = client.post(url, {"objet": "Vos façades", "texte": "Bonjour !"})
    assert response.status_code == 302
    [email] = mail.outbox
    assert email.to == [cdp_le_blanc.email]
    assert email.reply_to == [cdp_ussel.email]
    assert "Ussel – La Courtine" in email.body and "Grande Rue" in email.body
    assert email.subject == "[Club PVD] Vos façades"
    assert MessageClub.objects.get().fiche == plans["partagee"]


def test_messages_are_limited_per_day(client_for, cdp_ussel, cdp_le_blanc):
    MessageClub.objects.bulk_create(
        MessageClub(expediteur=cdp_ussel, destinataire=cdp_le_blanc, objet="x", texte="x")
        for _ in range(MESSAGES_PAR_JOUR)
    )
    url = reverse("club:contact", args=[cdp_le_blanc.pk])
    response = client_for(cdp_ussel).post(url, {"objet": "Encore", "texte": "Bonjour"})
    assert response.status_code == 200
    assert "réessayez demain" in response.content.decode()
    assert MessageClub.objects.count() == MESSAGES_PAR_JOUR
    assert mail.outbox == []


def test_who_opts_out_leaves_the_annuaire(client_for, cdp_ussel, cdp_le_blanc, national):
    client = client_for(national)
    assert cdp_le_blanc.get_full_name() in client.get(reverse("club:annuaire")).content.decode()
    client_for(cdp_le_blanc).post(reverse("club:profil"), {})
    cdp_le_blanc.refresh_from_db()
    assert cdp_le_blanc.annuaire_club is False
    client = client_for(national)
    assert cdp_le_blanc.get_full_name() not in client.get(reverse("club:annuaire")).content.decode()
    assert client.get(reverse("club:contact", args=[cdp_le_blanc.pk])).status_code == 404
    # Not a chef de projet: not listed unless they opt in.
    assert client.get(reverse("club:contact", args=[national.pk])).status_code == 404
    client_for(national).post(reverse("club:profil"), {"annuaire": "on"})
    assert client.get(reverse("club:contact", args=[national.pk])).status_code == 200


def test_the_annuaire_filters_by_departement_and_theme(client_for, national, cdp_le_blanc, plans):
    client = client_for(national)
    name = cdp_le_blanc.get_full_name()
    annuaire = reverse("club:annuaire")
    assert name in client.get(annuaire, {"departement": "36"}).content.decode()
    assert name not in client.get(annuaire, {"departement": "19"}).content.decode()
    theme = "Formes urbaines, espaces publics et patrimoine"
    assert name in client.get(annuaire, {"theme": theme}).content.decode()
    assert name not in client.get(annuaire, {"theme": "Habitat"}).content.decode()
    # Two fiches in that theme: listed once.
    page = client.get(annuaire, {"theme": theme, "population": "5000-10000"})
    assert page.context["page_obj"].paginator.count == 1


# Towns like mine --------------------------------------------------------------------------------


def test_towns_like_mine_list_what_they_delivered(client_for, cdp_ussel, ussel_la_courtine, plans):
    response = client_for(cdp_ussel).get(reverse("club:similaires", args=[ussel_la_courtine.pk]))
    villes = list(response.context["villes"])
    assert len(villes) <= 10
    le_blanc = next(v for v in villes if v.nom == "Le Blanc")
    assert [f.titre for f in le_blanc.fiches_livrees] == [
        "Rénovations des façades de la Grande Rue"
    ]
    assert le_blanc.themes_communs == 1
    assert le_blanc.population == 6389  # not multiplied by its fiches


def test_towns_like_another_town_is_404(client_for, cdp_ussel, le_blanc):
    url = reverse("club:similaires", args=[le_blanc.pk])
    assert client_for(cdp_ussel).get(url).status_code == 404


# The demo ---------------------------------------------------------------------------------------


def test_demo_ussel_finds_le_blanc_facades_but_not_its_private_fiche(empty_base, settings, client):
    settings.DEBUG = True
    call_command("seed_demo", stdout=StringIO())
    client.force_login(User.objects.get(email="cdp-ussel@demo.pvd.fr"))
    response = club(client, q="renovation facades")
    found = {(f.ville, f.titre) for f in response.context["object_list"]}
    assert ("Le Blanc", "Rénovation des façades de la Grande Rue") in found
    assert not any("faubourg" in titre for _, titre in found)
    assert "<mark>" in response.content.decode()
    assert "Julien Brenne" in response.content.decode()
    export = client.get(reverse("club:export"), {"q": "renovation facades"})
    rows = list(
        csv.reader(
            io.StringIO(b"".join(export.streaming_content).decode("utf-8-sig")), delimiter=";"
        )
    )
    assert not any("faubourg" in cell for row in rows for cell in row)
