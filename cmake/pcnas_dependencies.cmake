# Opt-in layers on top of pcnas::pcnas. Each one exists only when what it needs
# was found; a consumer asks for the one it wants and gets a clear message if it
# is missing. Used both from the source tree and from the installed package.
find_package(Eigen3 3.3 QUIET NO_MODULE)
find_package(OpenMP QUIET COMPONENTS CXX)
find_package(ZLIB QUIET)
find_package(nlohmann_json 3 QUIET)

if(TARGET Eigen3::Eigen AND NOT TARGET pcnas::eigen)
  add_library(pcnas_eigen INTERFACE IMPORTED GLOBAL)
  target_link_libraries(pcnas_eigen INTERFACE pcnas::pcnas Eigen3::Eigen)
  if(TARGET OpenMP::OpenMP_CXX)
    target_link_libraries(pcnas_eigen INTERFACE OpenMP::OpenMP_CXX)
  endif()
  add_library(pcnas::eigen ALIAS pcnas_eigen)
endif()

# Readers for IDX (.gz) data sets and JSON input/output.
if(TARGET ZLIB::ZLIB AND TARGET nlohmann_json::nlohmann_json AND NOT TARGET pcnas::io)
  add_library(pcnas_io INTERFACE IMPORTED GLOBAL)
  target_link_libraries(pcnas_io INTERFACE pcnas::pcnas ZLIB::ZLIB nlohmann_json::nlohmann_json)
  add_library(pcnas::io ALIAS pcnas_io)
endif()

# The LibTorch backend (pcnas::torch). Torch is not looked for here: its package is slow to find
# and loud, so a consumer asks for it (find_package(pcnas COMPONENTS torch), or its own
# find_package(Torch) before add_subdirectory), and the source tree looks for it when
# PCNAS_WITH_TORCH is on. Whoever found it, its `torch` target is what this layer needs.
if(TARGET torch AND NOT TARGET pcnas::torch)
  add_library(pcnas_torch INTERFACE IMPORTED GLOBAL)
  target_link_libraries(pcnas_torch INTERFACE pcnas::pcnas ${TORCH_LIBRARIES})
  add_library(pcnas::torch ALIAS pcnas_torch)
endif()

# ---------------------------------------------------------------------------------------------
# The Thrust backend (pcnas::thrust: OpenMP device system on the host) and its CUDA build
# (pcnas::cuda: nvcc, cuBLAS). Thrust comes from the CUDA toolkit's CCCL when there is one,
# else from Debian's libthrust-dev (/usr/include/thrust, with libcub-dev and libcu++-dev).
# ---------------------------------------------------------------------------------------------
if(NOT TARGET pcnas::thrust AND NOT DEFINED PCNAS_THRUST_INCLUDE_DIR)
  find_package(CUDAToolkit QUIET)
  set(_pcnas_cccl_hints)
  if(CUDAToolkit_INCLUDE_DIRS)
    foreach(_dir IN LISTS CUDAToolkit_INCLUDE_DIRS)
      list(APPEND _pcnas_cccl_hints ${_dir}/cccl ${_dir})
    endforeach()
  endif()
  list(APPEND _pcnas_cccl_hints /usr/local/cuda/include/cccl /usr/local/cuda/include)
  # CCCL first: it holds a Thrust, CUB and libcu++ that match each other.
  find_path(PCNAS_THRUST_INCLUDE_DIR NAMES thrust/version.h HINTS ${_pcnas_cccl_hints}
            DOC "Directory holding thrust/, cub/ and cuda/std (CUDA toolkit CCCL or Debian libthrust-dev)")
  unset(_pcnas_cccl_hints)
endif()

if(PCNAS_THRUST_INCLUDE_DIR AND TARGET OpenMP::OpenMP_CXX AND NOT TARGET pcnas::thrust)
  add_library(pcnas_thrust INTERFACE IMPORTED GLOBAL)
  target_include_directories(pcnas_thrust SYSTEM INTERFACE ${PCNAS_THRUST_INCLUDE_DIR})
  target_compile_definitions(pcnas_thrust INTERFACE THRUST_DEVICE_SYSTEM=THRUST_DEVICE_SYSTEM_OMP)
  target_link_libraries(pcnas_thrust INTERFACE pcnas::pcnas OpenMP::OpenMP_CXX)
  add_library(pcnas::thrust ALIAS pcnas_thrust)
  message(STATUS "pcnas: Thrust backend on the OpenMP device system (pcnas::thrust), Thrust from ${PCNAS_THRUST_INCLUDE_DIR}")
elseif(NOT TARGET pcnas::thrust)
  if(NOT PCNAS_THRUST_INCLUDE_DIR)
    message(STATUS "pcnas: no Thrust found (neither the CUDA toolkit's CCCL nor Debian's libthrust-dev): "
                   "pcnas::thrust and pcnas::cuda are not available")
  else()
    message(STATUS "pcnas: OpenMP not found: pcnas::thrust (OpenMP device system) is not available")
  endif()
endif()

# pcnas::cuda: for targets whose sources are .cu files compiled by nvcc (the project must have
# enabled the CUDA language). The CUDA toolkit brings its own CCCL, so no include dir is added.
if(NOT TARGET pcnas::cuda)
  find_package(CUDAToolkit QUIET)
  if(TARGET CUDA::cublas AND TARGET CUDA::cudart)
    add_library(pcnas_cuda INTERFACE IMPORTED GLOBAL)
    target_link_libraries(pcnas_cuda INTERFACE pcnas::pcnas CUDA::cublas CUDA::cudart)
    add_library(pcnas::cuda ALIAS pcnas_cuda)
  endif()
endif()
