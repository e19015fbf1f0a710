# The parser+checker fuzzer (clang + libFuzzer). tools/test.sh builds it in its own build
# directory with -DATTNC_FUZZ=ON and runs it for a bounded time.
if(ATTNC_FUZZ)
  add_executable(fuzz_check ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_check.c)
  target_link_libraries(fuzz_check PRIVATE attnc_core)
  target_link_options(fuzz_check PRIVATE -fsanitize=fuzzer)
endif()
