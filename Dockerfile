# partnerfleet service image: one image, every process (api, and later projections, relay, consumers).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY domain ./domain
COPY handlers ./handlers
COPY projections ./projections
COPY infra ./infra
RUN pip install --no-cache-dir . && useradd --system partnerfleet
USER partnerfleet
ENV HOST=0.0.0.0 PORT=8000
EXPOSE 8000
ENTRYPOINT ["partnerfleet"]
CMD ["serve"]
