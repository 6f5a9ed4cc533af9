#!/usr/bin/env bash
# Sourced by the GPU-machine scripts (run_model_device.sh, tools/device_train.sh): configures and builds core,
# kernels, music (without OpenCV there) and the `aviary` CLI — plus the given extra targets — against the CUDA
# LibTorch of the installed PyTorch, with GoogleTest, nlohmann-json and CLI11 from third_party/debs
# (tools/fetch-device-debs.sh). Expects ROOT, BUILD, OUT and the functions step/record; sets AVIARY.
# Usage: device_build TARGET...
device_build() {
    local DEBS="$ROOT/third_party/debs"
    {
        date -u
        nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv || true
        python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cxx11abi",
torch._C._GLIBCXX_USE_CXX11_ABI)' || true
    } 2>&1 | tee "$OUT/versions.log"
    if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then export PATH="/usr/local/cuda/bin:$PATH"; fi
    local TORCH_CMAKE TORCH_ABI
    TORCH_CMAKE="$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')"
    TORCH_ABI="$(python3 -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')"
    local EXTRA=("-Dnlohmann_json_DIR=$DEBS/usr/share/cmake/nlohmann_json" "-DCLI11_DIR=$DEBS/usr/share/cmake/CLI11")
    if [ "$TORCH_ABI" = "0" ]; then
        step "GoogleTest with the old C++ ABI"
        (cmake -S "$DEBS/usr/src/googletest" -B "$BUILD/gtest" -DCMAKE_BUILD_TYPE=Release -DBUILD_GMOCK=OFF \
            -DINSTALL_GTEST=ON -DCMAKE_INSTALL_PREFIX="$BUILD/gtest-prefix" -DCMAKE_INSTALL_LIBDIR=lib \
            -DCMAKE_CXX_FLAGS=-D_GLIBCXX_USE_CXX11_ABI=0 -DCMAKE_POSITION_INDEPENDENT_CODE=ON &&
            cmake --build "$BUILD/gtest" -j16 && cmake --install "$BUILD/gtest") >> "$OUT/build.log" 2>&1
        EXTRA+=("-DGTest_DIR=$BUILD/gtest-prefix/lib/cmake/GTest")
    else
        EXTRA+=("-DGTest_DIR=$DEBS/usr/lib/x86_64-linux-gnu/cmake/GTest")
    fi
    step "configure + build (aviary $*, -j16)"
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DAVIARY_BUILD_APPS=ON -DAVIARY_BUILD_STUDIO=OFF \
        -DAVIARY_BUILD_VISION=OFF -DAVIARY_BUILD_AUDIO=OFF -DAVIARY_BUILD_MUSIC=ON -DAVIARY_BUILD_BENCH=ON \
        -DAVIARY_BUILD_TESTS=ON -DAVIARY_CUDA=ON -DAVIARY_USE_CCACHE=OFF -DCMAKE_CUDA_ARCHITECTURES=90 \
        -DTORCH_CUDA_ARCH_LIST=9.0 -DCMAKE_CUDA_COMPILER="$(command -v nvcc)" \
        -DCMAKE_PREFIX_PATH="$TORCH_CMAKE;$DEBS/usr" "${EXTRA[@]}" -DOpenCV_DIR=OpenCV_DIR-NOTFOUND \
        -DAVIARY_NCCL_INCLUDE_DIR=AVIARY_NCCL_INCLUDE_DIR-NOTFOUND \
        -DAVIARY_GLOO_INCLUDE_DIR=AVIARY_GLOO_INCLUDE_DIR-NOTFOUND >> "$OUT/build.log" 2>&1 ||
        { record build "configure FAILED"; tail -40 "$OUT/build.log"; return 1; }
    grep "LibTorch with CUDA" "$OUT/build.log" | tail -1
    # Keep going on errors so that every target that can be built is built; each is checked by the caller.
    cmake --build "$BUILD" -j16 --target aviary "$@" -- -k >> "$OUT/build.log" 2>&1
    grep -E "error|Error" "$OUT/build.log" | head -30
    AVIARY="$BUILD/apps/cli/aviary"
    if [ -x "$AVIARY" ]; then record "build aviary" ok; else record "build aviary" FAILED; fi
    step "build done"
}
