"""French full-text search of the fiches for the Club (club/search.py), PostgreSQL only.

- ``french_unaccent``: the French stemmer after unaccent (« rénovation » finds
  « renovation » and « Rénovations »); a fresh cluster's default configuration is English.
- ``club_contexte`` (axis and town) and ``financeurs_texte`` (the funders' names) are copied
  onto the fiche by triggers, since a generated column reads only its own row; the triggers on
  the financing lines, axes, beneficiaries and funders keeps them current whatever writes
  (forms, the Excel import's bulk writes, the admin).
- ``recherche``: a stored generated tsvector weighted A title, B axis and town, C description,
  D funders, with its GIN index; trigram GIN indexes on titles and town names for typos.

Django's model does not declare these columns: they exist on PostgreSQL only, and SQLite
(``make run``) searches with ``icontains`` instead.
"""

from django.db import migrations

FORWARD = r"""
CREATE EXTENSION IF NOT EXISTS unaccent;
CREATE EXTENSION IF NOT EXISTS pg_trgm;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_ts_config WHERE cfgname = 'french_unaccent') THEN
        CREATE TEXT SEARCH CONFIGURATION french_unaccent (COPY = french);
        ALTER TEXT SEARCH CONFIGURATION french_unaccent
            ALTER MAPPING FOR hword, hword_part, word WITH unaccent, french_stem;
    END IF;
END
$$;

ALTER TABLE actions_ficheaction
    ADD COLUMN club_contexte text NOT NULL DEFAULT '',
    ADD COLUMN financeurs_texte text NOT NULL DEFAULT '';

CREATE FUNCTION actions_fiche_club_texts() RETURNS trigger AS $$
BEGIN
    NEW.club_contexte := coalesce(
        (SELECT a.nom FROM actions_axe a WHERE a.id = NEW.axe_id), '')
        || ' ' || coalesce(
        (SELECT b.nom FROM communes_beneficiaire b WHERE b.id = NEW.beneficiaire_id), '');
    NEW.financeurs_texte := coalesce(
        (SELECT string_agg(DISTINCT f.nom, ' ')
           FROM actions_lignefinancement l JOIN actions_financeur f ON f.id = l.financeur_id
          WHERE l.fiche_id = NEW.id), '');
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER actions_fiche_club_texts BEFORE INSERT OR UPDATE ON actions_ficheaction
    FOR EACH ROW EXECUTE FUNCTION actions_fiche_club_texts();

-- A change elsewhere touches the fiches concerned: their BEFORE UPDATE trigger recomputes.
-- Statement-level, over the transition tables: a bulk write of lines (the Excel import)
-- touches each fiche once, not once per line.
CREATE FUNCTION actions_lignes_touch_fiches() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE actions_ficheaction SET club_contexte = club_contexte
         WHERE id IN (SELECT fiche_id FROM nouvelles);
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE actions_ficheaction SET club_contexte = club_contexte
         WHERE id IN (SELECT fiche_id FROM anciennes);
    ELSE
        UPDATE actions_ficheaction SET club_contexte = club_contexte
         WHERE id IN (SELECT n.fiche_id FROM nouvelles n JOIN anciennes o ON o.id = n.id
                       WHERE n.fiche_id <> o.fiche_id OR n.financeur_id <> o.financeur_id
                      UNION
                      SELECT o.fiche_id FROM nouvelles n JOIN anciennes o ON o.id = n.id
                       WHERE n.fiche_id <> o.fiche_id OR n.financeur_id <> o.financeur_id);
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER actions_lignes_inserted AFTER INSERT ON actions_lignefinancement
    REFERENCING NEW TABLE AS nouvelles
    FOR EACH STATEMENT EXECUTE FUNCTION actions_lignes_touch_fiches();
CREATE TRIGGER actions_lignes_deleted AFTER DELETE ON actions_lignefinancement
    REFERENCING OLD TABLE AS anciennes
    FOR EACH STATEMENT EXECUTE FUNCTION actions_lignes_touch_fiches();
CREATE TRIGGER actions_lignes_updated AFTER UPDATE ON actions_lignefinancement
    REFERENCING OLD TABLE AS anciennes NEW TABLE AS nouvelles
    FOR EACH STATEMENT EXECUTE FUNCTION actions_lignes_touch_fiches();

CREATE FUNCTION actions_axe_touch_fiches() RETURNS trigger AS $$
BEGIN
    UPDATE actions_ficheaction SET club_contexte = club_contexte WHERE axe_id = NEW.id;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER actions_axe_touch_fiches AFTER UPDATE OF nom ON actions_axe
    FOR EACH ROW WHEN (OLD.nom IS DISTINCT FROM NEW.nom)
    EXECUTE FUNCTION actions_axe_touch_fiches();

CREATE FUNCTION actions_beneficiaire_touch_fiches() RETURNS trigger AS $$
BEGIN
    UPDATE actions_ficheaction SET club_contexte = club_contexte WHERE beneficiaire_id = NEW.id;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER actions_beneficiaire_touch_fiches AFTER UPDATE OF nom ON communes_beneficiaire
    FOR EACH ROW WHEN (OLD.nom IS DISTINCT FROM NEW.nom)
    EXECUTE FUNCTION actions_beneficiaire_touch_fiches();

CREATE FUNCTION actions_financeur_touch_fiches() RETURNS trigger AS $$
BEGIN
    UPDATE actions_ficheaction SET club_contexte = club_contexte
     WHERE id IN (SELECT fiche_id FROM actions_lignefinancement WHERE financeur_id = NEW.id);
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER actions_financeur_touch_fiches AFTER UPDATE OF nom ON actions_financeur
    FOR EACH ROW WHEN (OLD.nom IS DISTINCT FROM NEW.nom)
    EXECUTE FUNCTION actions_financeur_touch_fiches();

UPDATE actions_ficheaction SET club_contexte = club_contexte;

ALTER TABLE actions_ficheaction ADD COLUMN recherche tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('french_unaccent'::regconfig, coalesce(titre, '')), 'A')
    || setweight(to_tsvector('french_unaccent'::regconfig, club_contexte), 'B')
    || setweight(to_tsvector('french_unaccent'::regconfig, coalesce(description, '')), 'C')
    || setweight(to_tsvector('french_unaccent'::regconfig, financeurs_texte), 'D')
) STORED;

CREATE INDEX actions_fiche_recherche_gin ON actions_ficheaction USING gin (recherche);
CREATE INDEX actions_fiche_titre_trgm ON actions_ficheaction USING gin (titre gin_trgm_ops);
CREATE INDEX communes_beneficiaire_nom_trgm ON communes_beneficiaire
    USING gin (nom gin_trgm_ops);
"""

BACKWARD = r"""
DROP INDEX IF EXISTS communes_beneficiaire_nom_trgm;
DROP INDEX IF EXISTS actions_fiche_titre_trgm;
DROP INDEX IF EXISTS actions_fiche_recherche_gin;
DROP TRIGGER IF EXISTS actions_financeur_touch_fiches ON actions_financeur;
DROP TRIGGER IF EXISTS actions_beneficiaire_touch_fiches ON communes_beneficiaire;
DROP TRIGGER IF EXISTS actions_axe_touch_fiches ON actions_axe;
DROP TRIGGER IF EXISTS actions_lignes_inserted ON actions_lignefinancement;
DROP TRIGGER IF EXISTS actions_lignes_deleted ON actions_lignefinancement;
DROP TRIGGER IF EXISTS actions_lignes_updated ON actions_lignefinancement;
DROP TRIGGER IF EXISTS actions_fiche_club_texts ON actions_ficheaction;
DROP FUNCTION IF EXISTS actions_financeur_touch_fiches();
DROP FUNCTION IF EXISTS actions_beneficiaire_touch_fiches();
DROP FUNCTION IF EXISTS actions_axe_touch_fiches();
DROP FUNCTION IF EXISTS actions_lignes_touch_fiches();
DROP FUNCTION IF EXISTS actions_fiche_club_texts();
ALTER TABLE actions_ficheaction DROP COLUMN IF EXISTS recherche;
ALTER TABLE actions_ficheaction DROP COLUMN IF EXISTS club_contexte;
ALTER TABLE actions_ficheaction DROP COLUMN IF EXISTS financeurs_texte;
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
    dependencies = [
        ("actions", "0009_fiche_partage_club"),
        ("communes", "0007_past_dates_within_bounds"),
    ]

    operations = [migrations.RunPython(forward, backward)]
