# syntax=docker/dockerfile:1
# The one AstraGo image: core (`server --role api`), batch (`server --role controllers`) and the GPU
# exporter (`gpu-exporter`) are the same program with different arguments (see charts/astrago).
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# A wheel, then a virtual environment holding it and its dependencies only (no compilers in the final image).
RUN python -m venv /opt/astrago \
 && /opt/astrago/bin/pip install --upgrade pip \
 && /opt/astrago/bin/pip install asyncmy . \
 && /opt/astrago/bin/python -m compileall -q /opt/astrago/lib

FROM python:3.11-slim
LABEL org.opencontainers.image.title="astrago" \
      org.opencontainers.image.description="AstraGo GPU platform: API, UI, scheduler, controllers, GPU exporter" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 astrago \
 && useradd --system --uid 10001 --gid astrago --home-dir /var/lib/astrago --create-home astrago
COPY --from=build /opt/astrago /opt/astrago
ENV PATH=/opt/astrago/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    ASTRAGO_DATA_DIR=/var/lib/astrago \
    ASTRAGO_HOST=0.0.0.0
USER 10001:10001
WORKDIR /var/lib/astrago
EXPOSE 8080 9835
ENTRYPOINT ["astrago"]
CMD ["server", "--host", "0.0.0.0", "--port", "8080"]
