# The one image every Stretto component runs from: `stretto operator`, `stretto extender`,
# `stretto node-daemon`; it also carries the CUDA shim and the mock NVML for GPU-less nodes.
FROM python:3.11-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends gcc make libc6-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN make -C gpu_interceptor/native && pip wheel --no-deps -w /wheels .

FROM python:3.11-slim
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
COPY --from=build /src/gpu_interceptor/native/build/ /opt/stretto/lib/
USER 65532:65532
ENTRYPOINT ["stretto"]
