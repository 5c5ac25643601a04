# siyu in a container, built from its wheel: `docker build -t siyu .`
# The first stage turns this checkout and every dependency into wheels; the second
# installs them offline, runs as an unprivileged user, and checks /healthz.
FROM python:3.11-slim AS wheels
WORKDIR /src
COPY . .
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN useradd --system --uid 10001 --create-home --home-dir /var/lib/siyu siyu
COPY --from=wheels /wheels /wheels
RUN pip install --no-index --find-links=/wheels siyu && rm -rf /wheels
USER siyu
WORKDIR /var/lib/siyu
# The configuration is mounted at /etc/siyu/siyu.toml (docs/deploy/siyu.toml reads role,
# port and secrets from the environment); compose.yaml sets them per service.
ENV SIYU_CONFIG=/etc/siyu/siyu.toml \
    SIYU_HOST=0.0.0.0 \
    SIYU_PORT=8080 \
    SIYU_ROLE=all
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; url = 'http://127.0.0.1:' + os.environ.get('SIYU_PORT', '8080') + '/healthz'; sys.exit(0 if urllib.request.urlopen(url, timeout=4).status == 200 else 1)"]
# SIGTERM (docker stop) finishes in-flight work and exits 0.
STOPSIGNAL SIGTERM
CMD ["siyu", "serve"]
