# syntax=docker/dockerfile:1
# One image for all three jobs; the command picks one:
#   docker run IMAGE serve-api --run-id X -c /app/conf/env/prod.yaml
#   docker run IMAGE batch-inference --run-id X -d gs://bucket/data.csv
#   docker run IMAGE train -r /app/recipes/model.yaml -d gs://bucket/train.csv
# In Kubernetes, mount a ConfigMap over /app/conf to change settings without a rebuild.
# The base image, pinned by the digest of its multi-architecture index (linux/amd64 and arm64) so
# every build starts from the same bytes. Moving it to a newer release: docs/deploy.md.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d

FROM ${PYTHON_IMAGE} AS build
# ml-extras,cloud-extras,sql-extras,forecast-extras,causal-extras (recommended, the locked set every image holds) | cloud-extras,torch-extras or all
# (deep learning: adds torch) | ...,spark-extras (batch-inference --engine spark: adds pyspark, and Java in the runtime stage)
ARG EXTRAS=ml-extras,cloud-extras,sql-extras,forecast-extras,causal-extras
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY requirements/ requirements/
COPY scripts/constraints.txt scripts/constraints.txt
# Every dependency of mmp[ml-extras,cloud-extras,sql-extras,forecast-extras,causal-extras] and the build backend, at the locked version and
# checked against its hash (scripts/lock.sh writes the lock from pyproject.toml). Then torch, only
# ever the CPU build: its index serves 2.13.0+cpu, which the constraint pin admits; the lock has no
# torch, so that step resolves, held to the locked versions, and checks no hashes.
RUN pip install --no-cache-dir --require-hashes --no-deps -r requirements/image.txt \
    && case ",${EXTRAS}," in *,torch-extras,*|*,all,*) \
        pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu \
            -c scripts/constraints.txt -c requirements/image-pins.txt torch ;; \
    esac \
    && case ",${EXTRAS}," in *,spark-extras,*) \
        pip install --no-cache-dir -c scripts/constraints.txt -c requirements/image-pins.txt "pyspark>=4.0" ;; \
    esac
COPY pyproject.toml README.md ./
COPY hydra_plugins/ hydra_plugins/
COPY mmp/ mmp/
# mmp itself, built with the locked setuptools and resolving nothing; pip check fails on a gap in the lock.
RUN pip install --no-cache-dir --no-deps --no-build-isolation . && pip check

FROM ${PYTHON_IMAGE} AS runtime
ARG EXTRAS=ml-extras,cloud-extras,sql-extras,forecast-extras,causal-extras
# --engine spark (EXTRAS=...,spark-extras) runs pyspark's JVM: Debian's Java 17 runtime, only then.
# hadolint ignore=DL3008
RUN case ",${EXTRAS}," in *,spark-extras,*) \
        mkdir -p /usr/share/man/man1 && apt-get update \
        && apt-get install -y --no-install-recommends openjdk-17-jre-headless \
        && rm -rf /var/lib/apt/lists/* ;; \
    esac
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
# Recipe checks read each model class's parameters from a cache (mmp.config.facts_cache, in
# ~/.cache/mmp) that the first compile fills: filled here, a pod's first `mmp compile` imports no
# scikit-learn either.
RUN for recipe in recipes/*.yaml; do mmp compile "recipe=$(basename "$recipe" .yaml)" > /dev/null; done
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]
ENTRYPOINT ["mmp"]
CMD ["serve-api", "-c", "/app/conf/env/prod.yaml"]
