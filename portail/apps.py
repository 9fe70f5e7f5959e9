from django.apps import AppConfig


class PortailConfig(AppConfig):
    """The site shell: home, access management, journal, public pages, header and footer,
    demo seeding. It may import every app; no app imports it."""

    name = "portail"
    verbose_name = "Portail PVD (pages du site)"
