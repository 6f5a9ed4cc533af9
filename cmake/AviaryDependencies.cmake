# Finds the system packages Aviary builds against (Debian packages; see tools/install-deps.sh).
# Torch comes from Debian's libtorch-dev (CPU) or, on a GPU machine, from the CUDA LibTorch
# shipped with PyTorch (pass -DCMAKE_PREFIX_PATH=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')).
find_package(Torch REQUIRED)
find_package(Threads REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
find_package(fmt QUIET)

# Torch's CMake config adds its flags to TORCH_CXX_FLAGS (e.g. the C++11 ABI define); use them everywhere.
separate_arguments(_aviary_torch_flags UNIX_COMMAND "${TORCH_CXX_FLAGS}")
add_compile_options($<$<COMPILE_LANGUAGE:CXX>:${_aviary_torch_flags}>)

# Does this LibTorch have CUDA? (Debian's does not.)
set(AVIARY_TORCH_HAS_CUDA OFF)
if(TARGET torch_cuda OR TORCH_CUDA_LIBRARIES)
  set(AVIARY_TORCH_HAS_CUDA ON)
endif()

# CUDA kernels: compiled whenever nvcc is found (AUTO) or required (ON).
set(AVIARY_WITH_CUDA OFF)
if(NOT AVIARY_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES 90)
    endif()
    enable_language(CUDA)
    set(AVIARY_WITH_CUDA ON)
  elseif(AVIARY_CUDA STREQUAL "ON")
    message(FATAL_ERROR "AVIARY_CUDA=ON but no CUDA compiler (nvcc) was found")
  endif()
endif()
message(STATUS "Aviary: CUDA kernels ${AVIARY_WITH_CUDA}; LibTorch with CUDA ${AVIARY_TORCH_HAS_CUDA}")
