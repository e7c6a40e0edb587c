# The grading image: the pinned course stack and the harness, run as a non-root user.
#
#   adgrade image build                                  (default base: CUDA runtime with cuDNN)
#   adgrade image build --base-image adgrade-base:bookworm --wheelhouse
#
# The docker back end runs every submission in a fresh container of this image, with
# the network off, a read-only root file system and a size-capped /workspace.
# Nothing from rubrics/ or reference/ enters the image: hidden tests and the solution
# stay on the grading host (see .dockerignore).
ARG BASE_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04
FROM ${BASE_IMAGE}

ARG DEBIAN_FRONTEND=noninteractive
ARG ADGRADE_UID=10001

# Python with venv support, unless the base image already has it.
RUN if ! python3 -c "import venv, ensurepip" >/dev/null 2>&1; then \
        apt-get update \
        && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && python3 -m venv /opt/adgrade

ENV PATH=/opt/adgrade/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MPLBACKEND=Agg \
    TF_CPP_MIN_LOG_LEVEL=2

# docker/wheels/ is empty in the repository; `adgrade image build --wheelhouse` fills it with
# wheels built on the host, for hosts whose builds cannot reach a package index.
# The pinned course stack goes in first, in a layer of its own, so that a change to the
# harness rebuilds only the last layer.
COPY docker/wheels/ /tmp/wheels/
COPY pyproject.toml /tmp/adgrade-src/
RUN python -c "import tomllib; print('\\n'.join(tomllib.load(open('/tmp/adgrade-src/pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && if ls /tmp/wheels/*.whl >/dev/null 2>&1; then index="--no-index --find-links /tmp/wheels"; else index=""; fi \
    && pip install --no-cache-dir $index -r /tmp/requirements.txt "setuptools>=77" \
    && python -c "import papermill, ipykernel, tensorflow, xgboost, sklearn, pandas"

COPY README.md /tmp/adgrade-src/
COPY harness/ /tmp/adgrade-src/harness/
RUN pip install --no-cache-dir --no-deps --no-build-isolation /tmp/adgrade-src \
    && rm -rf /tmp/wheels /tmp/adgrade-src /tmp/requirements.txt \
    && python -c "import harness.execution.runner"

RUN useradd --uid "${ADGRADE_UID}" --user-group --create-home --home-dir /home/grader --shell /usr/sbin/nologin grader \
    && mkdir -p /workspace /input \
    && chown grader:grader /workspace

LABEL org.opencontainers.image.title="adgrade grading image" \
      org.opencontainers.image.licenses="Apache-2.0" \
      io.adgrade.image="grader"

# Numeric, so that the docker back end can give the tmpfs workspace to this user.
USER ${ADGRADE_UID}:${ADGRADE_UID}
WORKDIR /workspace
CMD ["python", "-m", "harness.execution.runner", "--help"]
