# bids-stroke BIDS App.
#   docker build -t bidsstroke/bids-stroke:0.1.0 .
#   docker run --rm -u "$(id -u):$(id -g)" -v BIDS:/data:ro -v OUT:/out bidsstroke/bids-stroke:0.1.0 /data /out participant
# The base is pinned by tag; its multi-arch digest when pinned was
#   python:3.11.7-slim-bookworm@sha256:d11b9bd5e49ea7401753d78f4d3b56f3aec952b85b49bcae88981f0452818e0b
# (append it to FROM to pin the base byte for byte where the registry is reachable).
FROM python:3.11.7-slim-bookworm

LABEL org.opencontainers.image.title="bids-stroke" \
      org.opencontainers.image.description="BIDS App: stroke outcome prognosis from acute DWI (Moulton et al. 2022)" \
      org.opencontainers.image.source="https://github.com/bids-stroke/bids-stroke" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# libgomp1: OpenMP runtime of ANTs and TensorFlow
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1=12.2.0-14+deb12u1 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/bids-stroke
# the pinned dependencies of pyproject.toml first, in a layer that a change of the code reuses
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
      > /tmp/requirements.txt \
 && pip install --no-cache-dir -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt
COPY version README.md run.py ./
COPY bids_stroke ./bids_stroke
RUN pip install --no-cache-dir --no-deps . \
 && chmod a+rx run.py

# TemplateFlow templates fetched now and read offline at run time. A build machine that
# cannot reach TemplateFlow builds with --build-arg TEMPLATEFLOW_TEMPLATES= (empty): the
# image then uses the ICBM 2009c symmetric template shipped with the package, and the
# outputs are named MNI152NLin2009cSym (see the README, "Templates").
ARG TEMPLATEFLOW_TEMPLATES=MNI152NLin2009cAsym
ENV TEMPLATEFLOW_HOME=/opt/templateflow \
    TEMPLATEFLOW_AUTOUPDATE=0
RUN mkdir -p /opt/templateflow \
 && for name in $TEMPLATEFLOW_TEMPLATES; do \
      python -c "import sys; from templateflow import api; \
[api.get(sys.argv[1], resolution=r, suffix=s, desc=d, extension='.nii.gz') \
 for r in (1, 2) for s, d in (('T2w', None), ('T1w', None), ('mask', 'brain'))]" "$name" \
      || { echo "cannot fetch $name from TemplateFlow; without access, build with --build-arg TEMPLATEFLOW_TEMPLATES=" >&2; exit 1; }; \
    done \
 && chmod -R a+rX /opt/templateflow

# Unprivileged user. HOME (matplotlib, Keras and nipype write caches there) is writable by
# any user id, so that `docker run -u "$(id -u):$(id -g)"` writes outputs owned by the caller.
RUN useradd --create-home --uid 1000 --shell /bin/bash bids \
 && chmod 1777 /home/bids
ENV HOME=/home/bids \
    MPLCONFIGDIR=/home/bids/.config/matplotlib \
    KERAS_BACKEND=tensorflow \
    TF_ENABLE_ONEDNN_OPTS=1 \
    OMP_NUM_THREADS=1 \
    BIDS_STROKE_CONTAINER=docker
USER 1000:1000
WORKDIR /home/bids

ENTRYPOINT ["python", "/opt/bids-stroke/run.py"]
