# Kefu 客服 — the image docs/deploy.md's compose file builds.  How it was checked: docs/deploy.md.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY intents ./intents
COPY handlers ./handlers
COPY knowledge ./knowledge
RUN pip install . \
    && useradd --create-home --uid 10001 kefu

# The search index and embedding cache (knowledge.cache_dir: ~/.cache/kefu): mount a volume
# there so a restart reads it instead of embedding every phrasing again.
USER kefu
EXPOSE 8080
# Listens on every interface of the container; ./config.yaml (mounted at /app/config.yaml) is read if present.
CMD ["kefu", "serve", "--host", "0.0.0.0"]
