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
