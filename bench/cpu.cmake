# The CPU backend benchmark (bench/cpu_bench.c): not a test; run it by hand, e.g.
#   build/cpu_bench --ggml /path/to/ggml/build/src --out bench/results/cpu-DATE.jsonl
# Compiled for the building machine (-march=native) so its FMA-peak loop uses the
# widest vectors there.
if(ATTNC_HAVE_LLVM)
  add_executable(cpu_bench ${CMAKE_SOURCE_DIR}/bench/cpu_bench.c)
  target_link_libraries(cpu_bench PRIVATE attnc_llvm ${CMAKE_DL_LIBS})
  target_compile_options(cpu_bench PRIVATE -O3 -march=native)
  target_compile_definitions(cpu_bench PRIVATE ATTNC_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
endif()
