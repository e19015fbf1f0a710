# CUDA backend tests (codegen/cuda, runtime/nvrtc, runtime/cuda_driver, runtime/kernel_cache).
# The unit tests themselves are tests/unit/test_cuda_*.c (registered by tests/CMakeLists.txt);
# this file adds what they need: the host C compiler for the simulator builds, labels,
# timeouts, and the skip code of the tests that need a GPU.
if(TARGET test_cuda_sim)
  target_compile_definitions(test_cuda_sim PRIVATE ATTNC_C_COMPILER="${CMAKE_C_COMPILER}")
  set_tests_properties(unit.test_cuda_sim PROPERTIES LABELS "cuda;sim" TIMEOUT 900)
endif()
if(TARGET test_cuda_recur)
  # recurrence kernels (chunkwise, step, hand-off) in the simulator: lengths up to 1000
  target_compile_definitions(test_cuda_recur PRIVATE ATTNC_C_COMPILER="${CMAKE_C_COMPILER}")
  set_tests_properties(unit.test_cuda_recur PROPERTIES LABELS "cuda;sim" TIMEOUT 1200)
endif()
if(TARGET test_cuda_nvrtc)
  # CI has the CUDA toolkit but no GPU: NVRTC must work; a missing libnvrtc fails loudly.
  set_tests_properties(unit.test_cuda_nvrtc PROPERTIES LABELS "cuda;nvrtc" TIMEOUT 1800)
endif()
foreach(t test_cuda_fragments test_cuda_cache test_cuda_host)
  if(TARGET ${t})
    set_tests_properties(unit.${t} PROPERTIES LABELS "cuda")
  endif()
endforeach()
if(TARGET test_cuda_gpu)
  # Launches kernels: skipped (exit 77, with the reason printed) where there is no GPU.
  set_tests_properties(unit.test_cuda_gpu PROPERTIES LABELS "cuda;gpu" SKIP_RETURN_CODE 77 TIMEOUT 1800)
endif()

# A host-memory stand-in for libcuda.so.1 so the launch path of cuda_run runs without a GPU.
add_library(attnc_fake_libcuda SHARED ${CMAKE_SOURCE_DIR}/tests/cuda/fake_libcuda.c)
target_include_directories(attnc_fake_libcuda PRIVATE ${CMAKE_SOURCE_DIR} ${CMAKE_SOURCE_DIR}/include)
set_target_properties(attnc_fake_libcuda PROPERTIES C_VISIBILITY_PRESET hidden)
if(TARGET test_cuda_launch)
  add_dependencies(test_cuda_launch attnc_fake_libcuda)
  target_compile_definitions(test_cuda_launch PRIVATE FAKE_LIBCUDA="$<TARGET_FILE:attnc_fake_libcuda>")
  set_tests_properties(unit.test_cuda_launch PROPERTIES LABELS "cuda" TIMEOUT 600)
endif()
if(TARGET test_cuda_device)
  # The C API on device pointers and streams from several threads: needs a GPU (exit 77 without).
  set_tests_properties(unit.test_cuda_device PROPERTIES LABELS "cuda;gpu" SKIP_RETURN_CODE 77 TIMEOUT 600)
endif()
