# bench/gpu's ctypes bindings (attnc_ctypes.py) checked here without a GPU or torch: the
# C API's struct layouts, strided views and error codes on the cpu target against numpy
# (gpu_bench.py --selftest). Needs libattnc.so (not in sanitizer builds) and LLVM.
if(ATTNC_PYTHON AND TARGET attnc_shared AND ATTNC_HAVE_LLVM)
  add_test(NAME bench.gpu_bench_selftest
           COMMAND ${ATTNC_PYTHON} ${CMAKE_SOURCE_DIR}/bench/gpu/gpu_bench.py --selftest --lib $<TARGET_FILE:attnc_shared>)
  set_tests_properties(bench.gpu_bench_selftest PROPERTIES LABELS "api;python" TIMEOUT 600
                       ENVIRONMENT "ATTNC_CACHE_DIR=${CMAKE_BINARY_DIR}/bench-selftest-cache")
endif()
