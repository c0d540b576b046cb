# The tailhub hub, installed from this checkout (tailhub is not on a package index).
#
#   docker build -t tailhub .
#   docker run -d --name tailhub -p 8080:8080 -v tailhub-data:/var/lib/tailhub \
#       -e AUTH_TOKEN="$(openssl rand -hex 32)" tailhub
#
# Everything is configured by environment variable (docs/operations.md). Without AUTH_TOKEN
# the hub generates a token into the data volume: `docker exec tailhub tailhub token show`.
FROM python:3.11-slim

RUN useradd --system --uid 10001 --home-dir /var/lib/tailhub --shell /usr/sbin/nologin tailhub \
 && install -d -o tailhub -g tailhub -m 0700 /var/lib/tailhub

COPY . /src
RUN pip install --no-cache-dir /src && rm -rf /src

ENV TAILHUB_DATA_DIR=/var/lib/tailhub \
    HOST=0.0.0.0 \
    PORT=8080 \
    PYTHONUNBUFFERED=1
VOLUME ["/var/lib/tailhub"]
EXPOSE 8080
USER tailhub
WORKDIR /var/lib/tailhub

# /healthz needs no token. The interval is longer than a request could take on a busy hub.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8080'), timeout=4)"]

# The hub is PID 1: it handles SIGTERM itself (docker stop), closing connections with 1001
# and making history durable before it exits.
ENTRYPOINT ["tailhub"]
CMD ["serve"]
