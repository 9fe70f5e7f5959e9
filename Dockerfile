# Production image: gunicorn (web), Celery worker and beat share it.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
# The image is production: its manage.py commands must not fall back to DEBUG (see manage.py).
ENV DEBUG=false
# WeasyPrint needs Pango and HarfBuzz.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 \
       libharfbuzz-subset0 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
RUN pip install -e .
COPY . .
RUN DEBUG=false SECRET_KEY=collectstatic-only python manage.py collectstatic --no-input -v0 \
    && useradd --create-home pvd && mkdir -p /app/media /app/beat && chown pvd /app/media /app/beat
USER pvd
EXPOSE 8000
CMD ["gunicorn", "--config", "gunicorn.conf.py"]
