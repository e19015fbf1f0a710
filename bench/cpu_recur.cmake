# Recurrence kernels on the CPU (bench/cpu_recur_bench.c): not a test; run it by hand, e.g.
#   build/cpu_recur_bench --out bench/results/cpu-recur-DATE.jsonl
# Compiled for the building machine (-march=native) so its FMA-peak loop uses the
# widest vectors there.
if(ATTNC_HAVE_LLVM)
  add_executable(cpu_recur_bench ${CMAKE_SOURCE_DIR}/bench/cpu_recur_bench.c)
  target_link_libraries(cpu_recur_bench PRIVATE attnc_llvm)
  target_compile_options(cpu_recur_bench PRIVATE -O3 -march=native)
endif()
