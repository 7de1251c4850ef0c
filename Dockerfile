FROM python:3.11-slim

# No Debian ffmpeg: the imageio-ffmpeg wheel's static binary (libopus, libmp3lame) converts the audio, and
# it is the faster one (README, Configuration). Install ffmpeg here only to pin your own build on PATH.

WORKDIR /app
COPY pyproject.toml README.md ./
COPY parley ./parley
COPY bot ./bot
COPY storage ./storage
RUN pip install --no-cache-dir .

RUN useradd --create-home --uid 10001 parley \
    && mkdir -p /data && chown parley:parley /data
USER parley
VOLUME ["/data"]
ENV PARLEY_DB=/data/parley.db \
    PYTHONUNBUFFERED=1

# 8080: the webhook server (webhook mode only); 9090: /healthz, /readyz, /metrics (PARLEY_METRICS_LISTEN).
EXPOSE 8080 9090
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9090/healthz', timeout=4)"

STOPSIGNAL SIGTERM
ENTRYPOINT ["parley"]
CMD ["run"]
