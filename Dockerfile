# bids-stroke BIDS App: docker run --rm -v BIDS:/data:ro -v OUT:/out IMAGE /data /out participant
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
COPY pyproject.toml version README.md run.py ./
COPY bids_stroke ./bids_stroke
# the project's pinned dependencies (pyproject.toml) come with it
RUN pip install --no-cache-dir . \
 && chmod a+rx run.py

# Templates fetched now, read offline at run time
ENV TEMPLATEFLOW_HOME=/opt/templateflow \
    TEMPLATEFLOW_AUTOUPDATE=0
RUN python -c "from templateflow import api; \
[api.get('MNI152NLin2009cAsym', resolution=r, suffix=s, desc=d, extension='.nii.gz') \
 for r in (1, 2) for s, d in (('T2w', None), ('T1w', None), ('mask', 'brain'))]" \
 && chmod -R a+rX /opt/templateflow

# unprivileged user with a writable HOME (matplotlib, Keras and nipype write caches there)
RUN useradd --create-home --uid 1000 --shell /bin/bash bids
ENV HOME=/home/bids \
    MPLCONFIGDIR=/home/bids/.config/matplotlib \
    KERAS_BACKEND=tensorflow \
    OMP_NUM_THREADS=1 \
    BIDS_STROKE_CONTAINER=docker
USER 1000:1000
WORKDIR /home/bids

ENTRYPOINT ["python", "/opt/bids-stroke/run.py"]
