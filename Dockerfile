# syntax=docker/dockerfile:1
# The enforcer daemon: `enforcer serve` as an unprivileged user.
#   docker build -t enforcer .
#   docker run -v ./config:/etc/enforcer:ro -v enforcer-state:/var/lib/enforcer \
#       -e ENFORCER_WEBHOOK__SECRETS='["whsec_..."]' -p 8470:8470 enforcer
# Config:  /etc/enforcer/enforcer.yaml (ENFORCER_CONFIG), inventory beside it.
# State:   /var/lib/enforcer (SQLite database, pinned known_hosts; or use PostgreSQL).
# See docs/install.md.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- build: a virtualenv with the enforcer and its dependencies (wheels only) ----
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/enforcer
COPY pyproject.toml README.md ./
COPY enforcer ./enforcer
COPY lab ./lab
RUN /opt/enforcer/bin/pip install --only-binary=:all: --no-binary=enforcer . \
    && /opt/enforcer/bin/enforcer --help >/dev/null

# ---- runtime: the virtualenv, the device profiles, nothing else ----
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="enforcer" \
      org.opencontainers.image.description="Network enforcement agent for cable operators" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/enforcer/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ENFORCER_CONFIG=/etc/enforcer/enforcer.yaml \
    ENFORCER_STATE_DIR=/var/lib/enforcer \
    ENFORCER_HTTP__LISTEN=0.0.0.0:8470 \
    ENFORCER_LOG__JSON=true
RUN groupadd --system --gid 10001 enforcer \
    && useradd --system --uid 10001 --gid enforcer --home-dir /var/lib/enforcer \
       --no-create-home --shell /usr/sbin/nologin enforcer \
    && install -d -o enforcer -g enforcer -m 0750 /var/lib/enforcer \
    && install -d -m 0755 /etc/enforcer /usr/share/enforcer
COPY --from=build /opt/enforcer /opt/enforcer
COPY device_profiles /usr/share/enforcer/device_profiles
COPY examples/production.yaml /etc/enforcer/enforcer.yaml
WORKDIR /var/lib/enforcer
USER 10001:10001
VOLUME ["/etc/enforcer", "/var/lib/enforcer"]
EXPOSE 8470
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request as u; sys.exit(0 if u.urlopen('http://127.0.0.1:8470/readyz', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["enforcer"]
CMD ["serve"]
