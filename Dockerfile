# The enhancement worker. Runs as an unprivileged user.
#   docker build -t enhancement-worker:0.1.0 .
# With network access at build time the official MetricGAN+ weights
# (speechbrain/metricgan-plus-voicebank) are fetched and used; without it, or with
# --build-arg FETCH_OFFICIAL_WEIGHTS=0, the checkpoint shipped in the package is used.
FROM python:3.11-slim-bookworm

RUN apt-get update \
 && apt-get install -y --no-install-recommends libsndfile1 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 worker

WORKDIR /app
# The runtime lock only: no test runner, linter or evaluation package reaches the image.
COPY requirements-runtime.lock pyproject.toml README.md ./
RUN pip install --no-cache-dir -r requirements-runtime.lock
COPY enhancement ./enhancement
COPY exporter ./exporter
COPY worker ./worker
COPY ops ./ops
COPY samples ./samples
RUN pip install --no-cache-dir --no-deps .

ARG FETCH_OFFICIAL_WEIGHTS=1
RUN mkdir -p /opt/models \
 && if [ "$FETCH_OFFICIAL_WEIGHTS" = "1" ] && python -c "from huggingface_hub import hf_hub_download as get; [get('speechbrain/metricgan-plus-voicebank', f, local_dir='/opt/models/metricgan-plus-voicebank') for f in ('hyperparams.yaml', 'enhance_model.ckpt')]"; then \
      echo "using the official MetricGAN+ weights"; \
    else \
      echo "hub unreachable or disabled: using the shipped checkpoint"; rm -rf /opt/models/metricgan-plus-voicebank; \
    fi
COPY scripts/docker-entrypoint /usr/local/bin/docker-entrypoint

USER 10001
EXPOSE 8080
ENTRYPOINT ["docker-entrypoint"]
CMD ["enhancement-worker", "serve", "--host", "0.0.0.0", "--port", "8080"]
