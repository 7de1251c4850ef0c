FROM python:3.11-slim

# Debian's ffmpeg (with libopus) converts voice notes; the imageio-ffmpeg wheel is only the fallback.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/*

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

STOPSIGNAL SIGTERM
ENTRYPOINT ["parley"]
CMD ["run"]
