# The forecaster daemon. Alone it keeps its SQLite database in the /data volume;
# docker-compose.yml runs it against PostgreSQL instead.

# Build stage: a virtual environment holding the package and its dependencies, nothing else.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# torch first, from the CPU wheel index: from the default index, pip would pull the
# multi-GB CUDA build. `pip install .` below then finds the torch==2.13.0 of pyproject.toml satisfied.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
WORKDIR /src
COPY pyproject.toml README.md ./
COPY forecaster ./forecaster
COPY migrations ./migrations
# Every other dependency comes from pyproject.toml; no dev extras, not editable.
RUN pip install .

# Runtime stage: the slim base, the virtual environment, a user without privileges.
FROM python:3.11-slim
RUN useradd --create-home --uid 10001 forecaster \
    && mkdir /data /reports \
    && chown forecaster:forecaster /data /reports
COPY --from=build /opt/venv /opt/venv
# numba, matplotlib and yfinance write caches; site-packages and $HOME are not the place.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    FORECASTER_DATABASE_URL=sqlite:////data/forecaster.db \
    FORECASTER_REPORT_DIR=/reports \
    NUMBA_CACHE_DIR=/tmp/numba-cache \
    MPLCONFIGDIR=/tmp/matplotlib \
    XDG_CACHE_HOME=/tmp/cache
USER forecaster
WORKDIR /home/forecaster
VOLUME ["/data", "/reports"]
# Unhealthy when the last run failed or a scheduled forecast is overdue. The start period
# covers the first catch-up (history fetch, numba compilation, first fits).
HEALTHCHECK --interval=60s --timeout=30s --start-period=5m --retries=3 CMD ["forecaster", "status"]
# A CMD, not an ENTRYPOINT: `docker compose run daemon forecaster report` replaces it.
CMD ["forecaster", "run"]
