# syntax=docker/dockerfile:1
# ROCmForge images. One image serves as router or worker by its command:
#   docker run IMAGE router --workers-dns rocmforge-worker:50061
#   docker run --device /dev/kfd --device /dev/dri IMAGE worker --model /models/m.gguf --device gpu
# Targets:
#   rocm (default)  HIP build for AMD GPUs on the official ROCm dev image (pinned)
#   cpu             CPU-only build on Debian, same commands as CI; bundles the tiny model
#     docker build --target cpu -t rocmforge:cpu .
#     docker build --build-arg GPU_TARGETS="gfx942" -t rocmforge:rocm .

ARG ROCM_VERSION=6.3
ARG UBUNTU_VERSION=24.04

# ---------------------------------------------------------------- CPU builder
FROM debian:bookworm AS cpu-build
WORKDIR /src
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN scripts/install-deps.sh --minimal && rm -rf /var/lib/apt/lists/*
COPY . .
RUN JOBS=$(nproc) scripts/build.sh /build -DCMAKE_BUILD_TYPE=Release \
      -DROCMFORGE_BUILD_TESTS=OFF -DROCMFORGE_BUILD_BENCH=OFF -- rocmforge \
 && strip /build/cli/rocmforge

# ---------------------------------------------------------------- CPU runtime
FROM debian:bookworm-slim AS cpu
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libgrpc++1.51 libprotobuf32 libabsl20220623 libprometheus-cpp-core1.0 \
      libprometheus-cpp-pull1.0 libpcre2-8-0 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin rocmforge
COPY --from=cpu-build /build/cli/rocmforge /usr/local/bin/rocmforge
COPY models/tiny-llama-spm-f16.gguf /opt/rocmforge/models/tiny-llama-spm-f16.gguf
USER 10001:10001
EXPOSE 50051 50061 9090 9091
ENTRYPOINT ["/usr/local/bin/rocmforge"]
CMD ["serve", "--model", "/opt/rocmforge/models/tiny-llama-spm-f16.gguf", "--host", "0.0.0.0"]

# ---------------------------------------------------------------- ROCm builder
FROM rocm/dev-ubuntu-${UBUNTU_VERSION}:${ROCM_VERSION}-complete AS rocm-build
ARG GPU_TARGETS="gfx90a;gfx942;gfx1100"
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      cmake ninja-build pkg-config libgrpc++-dev protobuf-compiler-grpc protobuf-compiler \
      libprotobuf-dev libabsl-dev prometheus-cpp-dev libpcre2-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN JOBS=$(nproc) scripts/build.sh /build -DCMAKE_BUILD_TYPE=Release -DROCMFORGE_GPU=hip \
      -DCMAKE_CXX_COMPILER=/opt/rocm/bin/hipcc -DCMAKE_PREFIX_PATH=/opt/rocm \
      -DGPU_TARGETS="${GPU_TARGETS}" -DROCMFORGE_BUILD_TESTS=OFF -DROCMFORGE_BUILD_BENCH=OFF -- rocmforge \
 && strip /build/cli/rocmforge
# Gather the shared libraries the binary needs (HIP runtime, rocRAND, gRPC...),
# leaving out the C runtime that the runtime image already has.
RUN mkdir -p /rt/lib \
 && ldd /build/cli/rocmforge | awk '/=> \// {print $3}' \
    | grep -vE '/(libc|libm|libpthread|libdl|librt|ld-linux[^/]*)\.so' \
    | xargs -I{} cp -L {} /rt/lib/

# ---------------------------------------------------------------- ROCm runtime
FROM ubuntu:${UBUNTU_VERSION} AS rocm
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libnuma1 libelf1t64 libdrm2 libdrm-amdgpu1 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin rocmforge
COPY --from=rocm-build /rt/lib/ /opt/rocmforge/lib/
COPY --from=rocm-build /build/cli/rocmforge /usr/local/bin/rocmforge
ENV LD_LIBRARY_PATH=/opt/rocmforge/lib
USER 10001:10001
EXPOSE 50051 50061 9090 9091
ENTRYPOINT ["/usr/local/bin/rocmforge"]
CMD ["--help"]
