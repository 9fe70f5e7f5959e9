#!/usr/bin/env python
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pvd.settings")
    # The command line runs with the settings `make run` uses: DEBUG (hence the development
    # secret of pvd/settings.py) when nothing is configured. DEBUG=false set explicitly, as in
    # production and docker-compose.yml, still requires a SECRET_KEY.
    os.environ.setdefault("DEBUG", "true")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
