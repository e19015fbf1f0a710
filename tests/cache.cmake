# The cpu target's compile-once engine and on-disk kernel cache (issue 7). The unit tests
# themselves are globbed by tests/CMakeLists.txt; here they get their labels, the CLI they
# drive, and the exit code (77) with which they report "skipped" in a build without LLVM.
#   unit.test_cache_procs  8 processes compiling one kernel into a fresh cache at once, a
#                          warm round, damaged entries rebuilt, `attnc cache ls|rm`
#   unit.test_api_threads  the context's threads option and 4 threads launching one handle
target_compile_definitions(test_cache_procs PRIVATE ATTNC_CLI="$<TARGET_FILE:attnc>")
add_dependencies(test_cache_procs attnc)
set_tests_properties(unit.test_cache_procs unit.test_api_threads PROPERTIES SKIP_RETURN_CODE 77 LABELS "api;cache")
