# Sluice: one image for every role (`serve`, `serve --role collector`, `serve --role worker`).
# Build: docker build -t sluice .   Run: docker compose up (compose.yaml), or see docs/deploy.md.

# --- build: the wheel (with its two C extensions) and a virtual environment of it -------------
FROM python:3.11-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/* \
 && pip install --no-cache-dir uv
WORKDIR /src
COPY pyproject.toml uv.lock setup.py MANIFEST.in README.md LICENSE NOTICE ./
COPY src ./src
# The locked dependencies, then the wheel built here: the C extensions compile in this stage,
# so the runtime image needs no compiler (without gcc they are skipped and Sluice still runs).
RUN uv export --frozen --no-dev --no-hashes --no-emit-project -o /tmp/requirements.txt \
 && uv build --wheel --out-dir /tmp/wheels \
 && uv venv /opt/sluice \
 && uv pip install --python /opt/sluice/bin/python -r /tmp/requirements.txt /tmp/wheels/*.whl

# --- runtime: the environment, a non-root user, the data volume --------------------------------
FROM python:3.11-slim
RUN useradd --system --uid 10001 --user-group --home-dir /data --no-create-home sluice \
 && mkdir /data && chown sluice:sluice /data
COPY --from=build /opt/sluice /opt/sluice
ENV PATH=/opt/sluice/bin:$PATH \
    SLUICE_HOST=0.0.0.0 \
    SLUICE_PORT=8088 \
    SLUICE_DATA_DIR=/data \
    PYTHONUNBUFFERED=1
USER sluice
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8088
# /readyz: the store reachable, migrations current, the worker holding its leases, disk space.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 CMD ["sluice", "ready"]
ENTRYPOINT ["sluice"]
CMD ["serve"]
