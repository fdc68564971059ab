# The forecaster daemon. Alone it keeps its SQLite database in /data (mount a volume there);
# docker-compose.yml runs it against PostgreSQL instead.

# Build stage: a virtual environment holding the package and its runtime dependencies, nothing
# else. No torch: only the notebook reference (the `reference` extra, for tests and benchmarks)
# imports it.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY forecaster ./forecaster
COPY migrations ./migrations
# Not editable, no extras. Then out with what only installing needs (pip, setuptools), the test
# suites some packages ship inside themselves, and the symbol tables of the shared libraries
# (polars', curl_cffi's and llvmlite's hold 90 MB of them): about 200 MB the daemon never reads.
# Libraries that auditwheel repaired (a RUNPATH into a vendored *.libs folder, set by patchelf)
# are left whole: strip breaks them (numpy's OpenBLAS: "ELF load command ... not page-aligned").
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends binutils >/dev/null
RUN pip install . \
    && pip uninstall --yes --quiet pip setuptools \
    && find /opt/venv -depth -type d -name tests -path '*/site-packages/*' -exec rm -rf {} + \
    && find /opt/venv -type f -name '*.so*' -not -path '*.libs/*' | while read -r library; do \
        readelf --dynamic "$library" | grep -q 'PATH.*\.libs' || strip --strip-unneeded "$library"; \
    done

# Runtime stage: the slim base, the virtual environment, a user without privileges.
FROM python:3.11-slim
RUN useradd --create-home --uid 10001 forecaster \
    && mkdir /data /reports \
    && chown forecaster:forecaster /data /reports
COPY --from=build /opt/venv /opt/venv
# numba, matplotlib and yfinance write caches; site-packages and $HOME are not the place.
# The heartbeat file lets `forecaster status --process` (a worker's health check) see this process.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    FORECASTER_DATABASE_URL=sqlite:////data/forecaster.db \
    FORECASTER_REPORT_DIR=/reports \
    FORECASTER_HEARTBEAT_FILE=/tmp/forecaster.heartbeat \
    NUMBA_CACHE_DIR=/tmp/numba-cache \
    MPLCONFIGDIR=/tmp/matplotlib \
    XDG_CACHE_HOME=/tmp/cache
USER forecaster
WORKDIR /home/forecaster
# No VOLUME instruction: it would leave an anonymous volume behind every container, compose's
# workers included. Mount one yourself: `-v forecaster-data:/data -v forecaster-reports:/reports`.
# Unhealthy when the last run failed or a scheduled forecast is overdue. The start period
# covers the first catch-up (history fetch, numba compilation, first fits).
HEALTHCHECK --interval=60s --timeout=30s --start-period=5m --retries=3 CMD ["forecaster", "status"]
# A CMD, not an ENTRYPOINT: `docker compose run daemon forecaster report` replaces it.
CMD ["forecaster", "run"]
