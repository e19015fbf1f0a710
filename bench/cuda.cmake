# CUDA backend compile-latency benchmark (JSON lines on stdout; needs libnvrtc, not a GPU).
add_executable(cuda_compile_bench ${CMAKE_SOURCE_DIR}/bench/cuda_compile_bench.c)
target_link_libraries(cuda_compile_bench PRIVATE attnc_core)
target_compile_definitions(cuda_compile_bench PRIVATE ATTNC_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
# Recurrence kernels on a GPU: decode GB/s against a device copy, chunkwise prefill tokens/s
# (JSON lines; prints why and exits 0 where there is no GPU).
add_executable(cuda_recur_bench ${CMAKE_SOURCE_DIR}/bench/cuda_recur_bench.c)
target_link_libraries(cuda_recur_bench PRIVATE attnc_core)
