# The enhancement worker. Runs as an unprivileged user.
#
# Which weights the image holds is a build argument, never the network's mood, and the tag
# says which (docker-compose.yml tags it enhancement-worker:0.1.0-$MODEL_SOURCE):
#   docker build -t enhancement-worker:0.1.0-shipped .                              # default
#   docker build --build-arg MODEL_SOURCE=official -t enhancement-worker:0.1.0-official .
# shipped: the checkpoint in the package. official: speechbrain/metricgan-plus-voicebank,
# fetched now; the build fails if it cannot be. The running worker reports the choice and
# the checkpoint's hash in enhancement_build_info{checkpoint,checkpoint_sha256} and /readyz.
# checkov:skip=CKV_DOCKER_2:one image runs the worker, the receiver and loadgen on different ports; compose and Kubernetes probe each

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

ARG MODEL_SOURCE=shipped
LABEL org.opencontainers.image.title="enhancement-worker" enhancement.model-source="$MODEL_SOURCE"
RUN case "$MODEL_SOURCE" in \
      shipped) echo "MODEL_SOURCE=shipped: the worker uses the checkpoint in the package" ;; \
      official) python -c "from huggingface_hub import hf_hub_download as get; [get('speechbrain/metricgan-plus-voicebank', f, local_dir='/opt/models/metricgan-plus-voicebank') for f in ('hyperparams.yaml', 'enhance_model.ckpt')]" \
                && echo "MODEL_SOURCE=official: the worker uses speechbrain/metricgan-plus-voicebank" \
                || { echo "MODEL_SOURCE=official but the weights could not be fetched; build with MODEL_SOURCE=shipped" >&2; exit 1; } ;; \
      *) echo "MODEL_SOURCE must be shipped or official, not '$MODEL_SOURCE'" >&2; exit 1 ;; \
    esac
ENV ENHANCEMENT_IMAGE_MODEL_SOURCE=$MODEL_SOURCE
COPY scripts/docker-entrypoint /usr/local/bin/docker-entrypoint

USER 10001
EXPOSE 8080
ENTRYPOINT ["docker-entrypoint"]
CMD ["enhancement-worker", "serve", "--host", "0.0.0.0", "--port", "8080"]
