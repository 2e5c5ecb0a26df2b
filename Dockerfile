# guardstream worker image.
#
#   docker build -t guardstream .
#   docker run --rm guardstream --help
#
# The same image runs every guardstream command (worker, topics create, simulate, ...):
# ENTRYPOINT is the CLI, CMD the default subcommand. docker-compose.yml wires it to Kafka
# and Redis.

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore

# A fixed, unprivileged uid so volume permissions are predictable across rebuilds.
RUN groupadd --system --gid 10001 guardstream \
    && useradd --system --uid 10001 --gid guardstream --home-dir /home/guardstream \
       --create-home --shell /usr/sbin/nologin guardstream \
    && install -d -o guardstream -g guardstream /var/lib/guardstream

WORKDIR /src

# Dependencies first, from pyproject.toml alone: editing the code does not reinstall them.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# Only the packages that ship (no tests/, bench/, .venv): smaller context, fewer rebuilds.
COPY schemas/ schemas/
COPY topics/ topics/
COPY workers/ workers/
RUN pip install --no-cache-dir . \
    && rm -rf /src/build /src/*.egg-info

# Worker defaults for a container; every one can be overridden with -e / compose environment.
# The example policies (configs/breakers.yaml ...); mount your own over /etc/guardstream.
COPY configs/ /etc/guardstream/
ENV GUARDSTREAM_MODE=production \
    GUARDSTREAM_POLICY_DIR=/etc/guardstream \
    GUARDSTREAM_WEB_HOST=0.0.0.0 \
    GUARDSTREAM_DATA_DIR=/var/lib/guardstream

USER guardstream
WORKDIR /home/guardstream

# Health and Prometheus metrics (/health, /metrics).
EXPOSE 6066

# slim has no curl: python's urllib exits non-zero on refusal, timeout or any non-2xx (/health
# answers 503 while the consumer is down). Follows GUARDSTREAM_WEB_PORT when that is set.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('GUARDSTREAM_WEB_PORT', '6066'), timeout=4)"]

ENTRYPOINT ["guardstream"]
CMD ["worker"]
