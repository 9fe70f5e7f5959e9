"""French spelling the pages, PDFs and e-mails share."""

VOYELLES = "AEIOUYÂÀÉÈÊËÎÏÔÛÙ"


def de(nom: str) -> str:
    """« de » before a place name, elided or contracted: « de La Courtine », « d'Ussel »,
    « d'Issoudun », « du Blanc », « des Sables-d'Olonne »."""
    if nom.startswith("Le "):
        return f"du {nom[3:]}"
    if nom.startswith("Les "):
        return f"des {nom[4:]}"
    if nom[:1].upper() in VOYELLES:
        return f"d'{nom}"
    return f"de {nom}"


# Durations, largest units first: « 1 jour », « 2 heures », « 1 heure 30 minutes ».
UNITES = (
    (86400, "jour", "jours"),
    (3600, "heure", "heures"),
    (60, "minute", "minutes"),
    (1, "seconde", "secondes"),
)


def duree(delta) -> str:
    """A duration in words, at most its two largest units (« 1 jour 2 heures »)."""
    seconds = max(int(delta.total_seconds()), 0)
    parts = []
    for size, one, many in UNITES:
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {one if count == 1 else many}")
        if len(parts) == 2 or (parts and count == 0):
            break
    return " ".join(parts) or "moins d'une seconde"
