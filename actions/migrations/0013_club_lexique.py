"""The Club's lexicon for typos (club/search.py ``corriger``), PostgreSQL only.

Trigram similarity over the 82,500 titles cost a recheck of every title sharing a few
trigrams with the query (8,000 rows for « rehabiliation », 120 ms, and none found: the titles
are accented, the query is not). The words of the titles, axes and towns, lower case and
unaccented, go to ``actions_club_mot`` (a few thousand rows); a word the index does not know
is replaced by its nearest neighbour there (GiST trigram index, ``<->``), then the full-text
index searches. Statement-level triggers over the transition tables add the words of the
fiches written (one ``INSERT … ON CONFLICT DO NOTHING`` per statement, whatever the number of
rows: the Excel import). Words are never removed: a word left by a renamed fiche only
suggests a search that finds nothing, and the page shows no correction then.

The trigram indexes of migration 0010 (titles, 24 MB; town names) served that search only.

The full-text GIN index keeps its pending list (« fastupdate ») small: 256 kB instead of the
4 MB default. Every search reads that list from end to end; after the bench data's bulk
insert it held 460 pages and cost 15 ms a search until a vacuum flushed it. A writer now
flushes it every 256 kB, in batches still.
"""

from django.db import migrations

FORWARD = r"""
CREATE TABLE actions_club_mot (mot text PRIMARY KEY);
CREATE INDEX actions_club_mot_trgm ON actions_club_mot USING gist (mot gist_trgm_ops);

CREATE FUNCTION actions_club_mots(texte text) RETURNS SETOF text AS $$
    SELECT DISTINCT mot
      FROM regexp_split_to_table(lower(unaccent(coalesce(texte, ''))), '[^a-z0-9]+') AS mot
     WHERE length(mot) BETWEEN 3 AND 40
$$ LANGUAGE sql STABLE;

CREATE FUNCTION actions_fiches_mots_inseres() RETURNS trigger AS $$
BEGIN
    INSERT INTO actions_club_mot (mot)
    SELECT DISTINCT actions_club_mots(n.titre || ' ' || n.club_contexte) FROM nouvelles n
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE FUNCTION actions_fiches_mots_modifies() RETURNS trigger AS $$
BEGIN
    INSERT INTO actions_club_mot (mot)
    SELECT DISTINCT actions_club_mots(n.titre || ' ' || n.club_contexte)
      FROM nouvelles n JOIN anciennes o ON o.id = n.id
     WHERE n.titre IS DISTINCT FROM o.titre OR n.club_contexte IS DISTINCT FROM o.club_contexte
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER actions_fiches_mots_inseres AFTER INSERT ON actions_ficheaction
    REFERENCING NEW TABLE AS nouvelles
    FOR EACH STATEMENT EXECUTE FUNCTION actions_fiches_mots_inseres();
CREATE TRIGGER actions_fiches_mots_modifies AFTER UPDATE ON actions_ficheaction
    REFERENCING OLD TABLE AS anciennes NEW TABLE AS nouvelles
    FOR EACH STATEMENT EXECUTE FUNCTION actions_fiches_mots_modifies();

INSERT INTO actions_club_mot (mot)
SELECT DISTINCT actions_club_mots(titre || ' ' || club_contexte) FROM actions_ficheaction
ON CONFLICT DO NOTHING;

DROP INDEX IF EXISTS actions_fiche_titre_trgm;
DROP INDEX IF EXISTS communes_beneficiaire_nom_trgm;

ALTER INDEX actions_fiche_recherche_gin SET (gin_pending_list_limit = 256);
SELECT gin_clean_pending_list('actions_fiche_recherche_gin'::regclass);
"""

BACKWARD = r"""
ALTER INDEX actions_fiche_recherche_gin RESET (gin_pending_list_limit);
CREATE INDEX IF NOT EXISTS actions_fiche_titre_trgm ON actions_ficheaction
    USING gin (titre gin_trgm_ops);
CREATE INDEX IF NOT EXISTS communes_beneficiaire_nom_trgm ON communes_beneficiaire
    USING gin (nom gin_trgm_ops);
DROP TRIGGER IF EXISTS actions_fiches_mots_inseres ON actions_ficheaction;
DROP TRIGGER IF EXISTS actions_fiches_mots_modifies ON actions_ficheaction;
DROP FUNCTION IF EXISTS actions_fiches_mots_inseres();
DROP FUNCTION IF EXISTS actions_fiches_mots_modifies();
DROP FUNCTION IF EXISTS actions_club_mots(text);
DROP TABLE IF EXISTS actions_club_mot;
"""


def forward(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(FORWARD)  # no parameters: several statements in one go


def backward(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("actions", "0012_financeur_siret_luhn")]

    operations = [migrations.RunPython(forward, backward)]
