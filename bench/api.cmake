# Start-up cost of a host program JIT-compiling 10 example kernels on the cpu target through
# the C API, cold (empty kernel cache) and warm (a fresh process on the filled cache):
# bench/api_start_bench.c. Not a test; run it by hand, e.g.
#   build/api_start_bench --warm 5 --out bench/results/api-start-DATE.jsonl --note "..."
if(ATTNC_HAVE_LLVM)
  add_executable(api_start_bench ${CMAKE_SOURCE_DIR}/bench/api_start_bench.c)
  target_link_libraries(api_start_bench PRIVATE attnc::attnc)
  target_compile_definitions(api_start_bench PRIVATE ATTNC_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
endif()
