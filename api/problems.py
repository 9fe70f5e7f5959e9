"""Errors as RFC 7807 « problem details » (application/problem+json), in French."""

from http import HTTPStatus

from rest_framework.views import exception_handler

CONTENT_TYPE = "application/problem+json"
TITRES = {
    400: "Requête invalide",
    401: "Authentification requise",
    403: "Accès refusé",
    404: "Ressource introuvable",
    405: "Méthode non autorisée",
    406: "Format non disponible",
    429: "Trop de requêtes",
}


def problem_handler(exc, context):
    response = exception_handler(exc, context)
    if response is None:
        return None  # an unexpected error: Django's 500
    status = response.status_code
    titre = TITRES.get(status, HTTPStatus(status).phrase)
    data = response.data
    problem = {"type": "about:blank", "title": titre, "status": status}
    if isinstance(data, dict) and set(data) == {"detail"}:
        problem["detail"] = str(data["detail"])
    else:
        problem["detail"] = "Certains paramètres sont invalides."
        problem["erreurs"] = data
    request = context.get("request")
    if request is not None:
        problem["instance"] = request.path
    response.data = problem
    response.content_type = CONTENT_TYPE
    return response
