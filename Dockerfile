# evhub as a container: the hub and its dashboard, run as a user without privileges.
#   docker build -t evhub .
#   docker run -d --name evhub -p 8300:8300 -p 9000:9000 -v evhub-config:/config evhub
# The README's "Running it for real" has the compose file and the systemd unit too.

# The dashboard: TypeScript and Lit, built by Vite into static files.
FROM node:20.19.5-bookworm-slim AS frontend
WORKDIR /src/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY frontend/ ./
RUN npm run build

# evhub and its dependencies in a virtual environment, copied whole into the runtime stage.
FROM python:3.11.13-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/evhub
WORKDIR /src
COPY pyproject.toml README.md ./
COPY hub/ hub/
COPY integrations/ integrations/
RUN /opt/evhub/bin/pip install .
# The hub serves the dashboard from frontend/dist beside its packages (hub.http.static.DIST).
COPY --from=frontend /src/frontend/dist /src/frontend/dist
RUN dist="$(/opt/evhub/bin/python -c 'from hub.http.static import DIST; print(DIST)')" \
    && mkdir -p "$dist" \
    && cp -R /src/frontend/dist/. "$dist/"

FROM python:3.11.13-slim-bookworm
LABEL org.opencontainers.image.title="evhub" \
      org.opencontainers.image.description="Self-hosted monitoring hub for EV charging infrastructure" \
      org.opencontainers.image.licenses="Apache-2.0"
# A fixed uid, so a host directory mounted as /config can be given to it (chown 10001).
RUN groupadd --system --gid 10001 evhub \
    && useradd --system --uid 10001 --gid evhub --home-dir /config --no-create-home \
        --shell /usr/sbin/nologin evhub \
    && mkdir /config \
    && chown evhub:evhub /config \
    && chmod 700 /config
COPY --from=build /opt/evhub /opt/evhub
COPY deploy/configuration.yaml /usr/share/evhub/configuration.yaml
COPY deploy/healthcheck.py /usr/share/evhub/healthcheck.py
COPY deploy/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV PATH="/opt/evhub/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    EVHUB_CONFIG_DIR=/config \
    EVHUB_HTTP_PORT=8300 \
    EVHUB_OCPP_PORT=9000
USER 10001:10001
WORKDIR /config
# configuration.yaml, secrets.yaml, .storage/ and the SQLite databases.
VOLUME ["/config"]
# The web page and API; the OCPP central system.
EXPOSE 8300 9000
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python", "/usr/share/evhub/healthcheck.py"]
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
CMD ["evhub", "run", "--config", "/config"]
