# syntax=docker/dockerfile:1
# One image for all three jobs; the command picks one:
#   docker run IMAGE serve-api --run-id X -c /app/conf/env/prod.yaml
#   docker run IMAGE batch-inference --run-id X -d gs://bucket/data.csv
#   docker run IMAGE train -r /app/recipes/model.yaml -d gs://bucket/train.csv
# In Kubernetes, mount a ConfigMap over /app/conf to change settings without a rebuild.
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS build
# ml-extras,cloud-extras (recommended) | cloud-extras,torch-extras (deep learning) | all
ARG EXTRAS=ml-extras,cloud-extras
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY pyproject.toml README.md ./
COPY scripts/constraints.txt scripts/constraints.txt
COPY hydra_plugins/ hydra_plugins/
COPY mmp/ mmp/
# torch only ever as the CPU build: its index serves 2.13.0+cpu, which the constraint pin admits.
RUN pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu \
        -c scripts/constraints.txt ".[${EXTRAS}]"

FROM python:${PYTHON_VERSION}-slim AS runtime
RUN groupadd --gid 10001 mmp && useradd --create-home --uid 10001 --gid 10001 --shell /usr/sbin/nologin mmp
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    BENTOML_DO_NOT_TRACK=true \
    BENTOML_HOME=/home/mmp/bentoml \
    MMP_SERVING_HOST=0.0.0.0 \
    MMP_CONF_DIR=/app/conf \
    MMP_RECIPES_DIR=/app/recipes
WORKDIR /app
COPY --chown=10001:10001 conf/ conf/
COPY --chown=10001:10001 recipes/ recipes/
COPY --chown=10001:10001 data/ data/
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]
ENTRYPOINT ["mmp"]
CMD ["serve-api", "-c", "/app/conf/env/prod.yaml"]
