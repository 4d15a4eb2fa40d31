# emotionsite: docker build -t emotionsite . && docker run -p 8000:8000 -v emotionsite-data:/data -e SECRET_KEY=... emotionsite
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# libgomp1: Paddle's OpenMP runtime; procps: pgrep for the health check; nginx: the buffering proxy in front
# of gunicorn (deploy/nginx.conf), so that slow clients cannot take gunicorn's threads.
RUN apt-get update \
    && apt-get install --yes --no-install-recommends libgomp1 procps nginx \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.txt requirements-no-deps.txt ./
RUN pip install -r requirements.txt \
    && pip install --no-deps -r requirements-no-deps.txt

COPY . .
RUN DEBUG=0 SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput --verbosity 0 \
    && useradd --create-home --uid 1000 emotionsite \
    && mkdir -p /data \
    && chown emotionsite /data

USER emotionsite
# The database, captures and model versions live on the volume; SECRET_KEY must be given at run time.
ENV DEBUG=0 \
    EMOTIONSITE_DATA_DIR=/data \
    EMOTIONSITE_MEDIA_DIR=/data/media \
    EMOTIONSITE_MODEL_DIR=/data/models \
    ALLOWED_HOSTS=localhost,127.0.0.1
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 CMD ["/app/docker-entrypoint.sh", "healthcheck"]
ENTRYPOINT ["/app/docker-entrypoint.sh"]
CMD ["web"]
