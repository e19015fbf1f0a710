# CUDA backend compile-latency benchmark (JSON lines on stdout; needs libnvrtc, not a GPU).
add_executable(cuda_compile_bench ${CMAKE_SOURCE_DIR}/bench/cuda_compile_bench.c)
target_link_libraries(cuda_compile_bench PRIVATE attnc_core)
target_compile_definitions(cuda_compile_bench PRIVATE ATTNC_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
