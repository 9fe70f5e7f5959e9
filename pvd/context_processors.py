from django.conf import settings


def portal(request) -> dict:
    return {
        "SITE_CONFIG": {
            "site_title": "Petites villes de demain",
            "site_tagline": "Le portail du programme, pour l'État et les collectivités",
            "contact_email": settings.CONTACT_EMAIL,
            "hosting": settings.HOSTING_NOTICE,
        },
        "DEMO_MODE": settings.DEBUG,
    }
