"""The invitation (.ics) sent with a convocation: iCalendar text written per RFC 5545.

Lines end in CRLF and are folded at 75 octets (never inside a UTF-8 character); text values
escape backslashes, semicolons, commas and line breaks; times are in UTC.
"""

from datetime import UTC, datetime

from django.conf import settings
from django.utils import timezone

PRODID = "-//ANCT//Portail Petites villes de demain//FR"


def escape(text: str) -> str:
    """A TEXT value (RFC 5545 §3.3.11)."""
    text = str(text).replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    return text.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n")


def fold(line: str) -> str:
    """A content line folded at 75 octets: each continuation starts with one space."""
    parts, current = [], b""
    limit = 75
    for char in line:
        encoded = char.encode("utf-8")
        if len(current) + len(encoded) > limit:
            parts.append(current.decode("utf-8"))
            current, limit = b"", 74  # the leading space counts in the next line
        current += encoded
    parts.append(current.decode("utf-8"))
    return "\r\n ".join(parts)


def utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def debut_fin(reunion) -> tuple[datetime, datetime]:
    """The meeting's start and end, aware, in the portal's time zone."""
    tz = timezone.get_default_timezone()
    debut = datetime.combine(reunion.date, reunion.heure_debut, tzinfo=tz)
    fin = datetime.combine(reunion.date, reunion.heure_fin, tzinfo=tz)
    return debut, fin


def invitation(reunion, organisateur: str, description: str, sequence: int = 0) -> str:
    """One VEVENT with METHOD:REQUEST; the UID is the meeting's, so a new convocation
    updates the event in the members' calendars (``sequence``)."""
    debut, fin = debut_fin(reunion)
    domain = settings.PVD_BASE_URL.split("//")[-1].split("/")[0].split(":")[0] or "localhost"
    lieu = reunion.lieu or reunion.lien_visio
    lines = [
        "BEGIN:VCALENDAR",
        f"PRODID:{PRODID}",
        "VERSION:2.0",
        "CALSCALE:GREGORIAN",
        "METHOD:REQUEST",
        "BEGIN:VEVENT",
        f"UID:reunion-{reunion.pk}@{domain}",
        f"SEQUENCE:{sequence}",
        f"DTSTAMP:{utc(timezone.now())}",
        f"DTSTART:{utc(debut)}",
        f"DTEND:{utc(fin)}",
        f"SUMMARY:{escape(reunion.instance.nom)}",
        f"LOCATION:{escape(lieu)}",
        f"DESCRIPTION:{escape(description)}",
        f"ORGANIZER;CN={escape_param(settings.DEFAULT_FROM_EMAIL)}:mailto:{organisateur}",
    ]
    if reunion.lien_visio:
        lines.append(f"URL:{reunion.lien_visio}")
    lines += ["STATUS:CONFIRMED", "END:VEVENT", "END:VCALENDAR"]
    return "".join(fold(line) + "\r\n" for line in lines)


def escape_param(text: str) -> str:
    """A parameter value: quoted, without the characters a quoted value may not hold."""
    cleaned = "".join(c for c in str(text) if c not in '"\r\n' and ord(c) >= 32)
    return f'"{cleaned}"'
