# The C API's users: examples/host/jit_host.c (JIT through the API on cpu, and cuda where
# there is one, each checked against the ref target) on a few example specs; the README's
# "Three ways in" commands run verbatim, its snippets compared with the files other tests
# build; and `attnc cache ls|clear`. Unit tests of the API are tests/unit/test_api.c.
add_executable(jit_host ${CMAKE_SOURCE_DIR}/examples/host/jit_host.c)
target_link_libraries(jit_host PRIVATE attnc::attnc)

# jit_host keeps the default kernel cache (as a user's program does); the tests point it at
# a scratch directory of the build (ATTNC_CACHE_DIR), emptied first, not at ~/.cache.
set(API_TEST_CACHE ${CMAKE_BINARY_DIR}/api-test-cache)
add_test(NAME api.cache_reset COMMAND ${CMAKE_COMMAND} -E rm -rf ${API_TEST_CACHE})
set_tests_properties(api.cache_reset PROPERTIES LABELS "api" FIXTURES_SETUP api_test_cache)

# cpu must work wherever the build has LLVM; cuda runs where a GPU is and is reported
# as skipped (with the reason) elsewhere.
set(JIT_REQUIRE)
if(ATTNC_HAVE_LLVM)
  set(JIT_REQUIRE --require cpu)
endif()
set(JIT_CASES
  "phi2|examples/phi2.attn|phi2|--seq|33"
  "mistral_7b|examples/mistral_7b.attn|mistral_7b|--batch|2|--seq|40"
  "packed_docs|examples/doc_mask.attn|packed_docs|--seq|30"
  "gpt_neox_20b|examples/gpt_neox_20b.attn|gpt_neox_20b|--seq|20"
  "llama3_8b_decode|examples/llama3_8b.attn|llama3_8b_decode|--seq|50|--seq-q|1")
foreach(case ${JIT_CASES})
  string(REPLACE "|" ";" args "${case}")
  list(POP_FRONT args name spec)
  add_test(NAME api.jit_host.${name} COMMAND jit_host ${CMAKE_SOURCE_DIR}/${spec} ${args} ${JIT_REQUIRE})
  set_tests_properties(api.jit_host.${name} PROPERTIES LABELS "api" PASS_REGULAR_EXPRESSION "\nPASS\n"
                       ENVIRONMENT "ATTNC_CACHE_DIR=${API_TEST_CACHE}" FIXTURES_REQUIRED api_test_cache)
endforeach()

if(ATTNC_PYTHON)
  add_test(NAME api.readme COMMAND ${ATTNC_PYTHON} ${CMAKE_SOURCE_DIR}/tests/api/readme_check.py
           --root ${CMAKE_SOURCE_DIR} --attnc $<TARGET_FILE:attnc> --have-llvm "${ATTNC_HAVE_LLVM}")
  add_test(NAME api.cache_cli COMMAND ${ATTNC_PYTHON} ${CMAKE_SOURCE_DIR}/tests/api/cache_cli.py
           --attnc $<TARGET_FILE:attnc>)
else()
  file(WRITE ${CMAKE_BINARY_DIR}/api_no_python.cmake
       "message(FATAL_ERROR \"the api.readme and api.cache_cli tests need Python 3; none was found when configuring\")\n")
  add_test(NAME api.readme COMMAND ${CMAKE_COMMAND} -P ${CMAKE_BINARY_DIR}/api_no_python.cmake)
  add_test(NAME api.cache_cli COMMAND ${CMAKE_COMMAND} -P ${CMAKE_BINARY_DIR}/api_no_python.cmake)
endif()
set_tests_properties(api.readme api.cache_cli PROPERTIES LABELS "api")
